"""The stage-A query and the action text it is built from (as the official ``run_llava_in_loop.py`` does)."""

from __future__ import annotations

import re

# The query the paper asks the tuned VLLM about the source frame (vllm/scripts/inference.sh).
QUERY = "How does the person properly {action} that is displayed in the video frame?"

DATASETS = ("ego4d", "epickitchen")
# Frame folders of each dataset inside the EgoGen download.
FRAME_FOLDERS = {"ego4d": "ego4d.fho", "epickitchen": "epickitchen"}

# Ego4D narration markers: "#C" / "#c" the camera wearer, "#O" / "#o" another person, "#unsure" an uncertain word.
_CAMERA_WEARER = re.compile(r"^#\s*c(?:\s*c)?\b\s*", re.IGNORECASE)
_BARE_C = re.compile(r"^c\s+", re.IGNORECASE)
_OTHER_PERSON = re.compile(r"^#\s*o\b\s*", re.IGNORECASE)
# The subject of an "#O" narration: "man X", "a woman", "the person B", "lady Y", "X".
_OTHER_SUBJECT = re.compile(r"^(?:(?i:a|an|the)\s+)?(?:(?i:man|woman|person|lady|boy|girl|child|kid|guy|someone|"
                            r"people|friend|worker|player|customer|cook|chef)\b\s*)?(?:[A-Z]\b\s*)?")
_MARKERS = re.compile(r"#\s*unsure\b|#\s*summary\b", re.IGNORECASE)


def base_verb(verb: str) -> str:
    """A narration verb's base form ("picks" -> "pick", "carries" -> "carry", "squeezes" -> "squeeze",
    "focuses" -> "focus", "mixes" -> "mix", "picked" -> "pick"), as the official code's NLTK WordNet verb lemmas.

    WordNet needs a corpus download at run time; LemmInflect (a lemmatiser whose word lists ship inside its wheel,
    so it works offline) gives the same verb lemmas on the test corpus (tests/lego/test_lego_formats.py). An
    unknown word is returned lower-cased as it is.
    """
    from lemminflect import getLemma

    word = verb.lower()
    lemmas = getLemma(word, upos="VERB")
    return lemmas[0] if lemmas else word


def normalize_action(action: str, dataset: str) -> str:
    """The action phrase inserted into :data:`QUERY`.

    Ego4D narrations read "#C C picks up a knife" (also "#c c ...", "#C c ...", "C ...", with "#unsure" marking an
    uncertain word and stray spaces): the markers and the camera-wearer "C" are dropped and the verb is put in its
    base form ("pick up a knife"). Narrations of another person ("#O man X picks up a knife", "#o a woman cuts
    ...") lose the marker and their subject the same way. Epic-Kitchens labels ("open fridge") are used as they
    are, with spaces collapsed. A narration with no action left is a ``ValueError`` naming it.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown LEGO dataset {dataset!r}; choose one of {DATASETS}")
    text = " ".join(action.split())
    if dataset != "ego4d":
        return text
    text = " ".join(_MARKERS.sub(" ", text).split())
    if _OTHER_PERSON.match(text):
        text = _OTHER_SUBJECT.sub("", _OTHER_PERSON.sub("", text), count=1)
    else:
        text = _BARE_C.sub("", _CAMERA_WEARER.sub("", text), count=1)
    text = text.strip().rstrip(".").strip()
    if not text:
        raise ValueError(f"narration {action!r} holds no action after removing its markers")
    verb, _, rest = text.partition(" ")
    return f"{base_verb(verb)} {rest}".strip()


def query_for(action: str, dataset: str, template: str = QUERY) -> str:
    return template.format(action=normalize_action(action, dataset))
