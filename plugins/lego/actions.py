"""The stage-A query and the action text it is built from (as the official ``run_llava_in_loop.py`` does)."""

from __future__ import annotations

import re

# The query the paper asks the tuned VLLM about the source frame (vllm/scripts/inference.sh).
QUERY = "How does the person properly {action} that is displayed in the video frame?"

DATASETS = ("ego4d", "epickitchen")
# Frame folders of each dataset inside the EgoGen download.
FRAME_FOLDERS = {"ego4d": "ego4d.fho", "epickitchen": "epickitchen"}

_IRREGULAR = {"is": "be", "are": "be", "has": "have", "does": "do", "goes": "go", "puts": "put", "cuts": "cut"}
_ES_ENDINGS = ("ches", "shes", "sses", "xes", "zes", "oes")


def base_verb(verb: str) -> str:
    """Third-person present -> base form ("picks" -> "pick", "carries" -> "carry", "washes" -> "wash").

    The official code lemmatises with NLTK's WordNet (a download); Ego4D narrations only ever inflect the leading
    verb this way, so these rules give the same base form for them without data files.
    """
    word = verb.lower()
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(_ES_ENDINGS):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        return word[:-1]
    return word


def normalize_action(action: str, dataset: str) -> str:
    """The action phrase inserted into :data:`QUERY`.

    Ego4D narrations read "#C C picks up a knife": the "#C" tag and the camera-wearer "C" are dropped and the verb
    is put in its base form ("pick up a knife"). Epic-Kitchens labels ("open fridge") are used as they are.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown LEGO dataset {dataset!r}; choose one of {DATASETS}")
    text = " ".join(action.split())
    if dataset != "ego4d":
        return text
    text = re.sub(r"^#\s*C\b\s*", "", text)
    text = re.sub(r"^C\b\s*", "", text)
    verb, _, rest = text.partition(" ")
    verb = base_verb(verb)
    return f"{verb} {rest}".strip()


def query_for(action: str, dataset: str, template: str = QUERY) -> str:
    return template.format(action=normalize_action(action, dataset))
