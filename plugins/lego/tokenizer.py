"""A small CLIP tokenizer built offline, for LDMs whose text encoder is built from a config (tests, tiny recipe).

It is a real ``CLIPTokenizer`` (byte-level BPE with CLIP's ``</w>`` word ends, 77-token context,
``<|startoftext|>`` / ``<|endoftext|>``): every byte is in the vocabulary, and each word of a built-in list of
everyday egocentric-action words gets merges that make it one token. Unknown words fall back to pieces.
"""

from __future__ import annotations

_WORD_TEXT = (
    "a an the this that of to in on at into onto from with by and or up down left right top bottom front back "
    "person camera wearer hand hands finger right left arm table counter shelf floor sink stove fridge drawer "
    "cabinet door lid tap plate cup mug bowl box bottle jar pan pot knife fork spoon spatula board towel bag "
    "phone book paper pen brush cloth sponge food bread onion tomato carrot apple water meat egg rice dough "
    "red green blue yellow white black orange brown grey small big other "
    "pick picks put puts take takes hold holds open opens close closes turn turns push pushes pull pulls wash "
    "washes cut cuts stir stirs pour pours move moves place places lift lifts lower lowers slide slides draw "
    "draws reach reaches grip grips grab grabs drop drops rotate rotates press presses fold folds wipe wipes "
    "mix mixes scoop scoops peel peels throw throws carry carries insert inserts remove removes adjust adjusts "
    "how does properly displayed video frame is are it its their them his her firmly carefully then while "
    "ends higher lower further view across over under near next toward towards"
)
WORDS = tuple(_WORD_TEXT.split())

START, END = "<|startoftext|>", "<|endoftext|>"


def _byte_alphabet() -> list[str]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return list(bytes_to_unicode().values())


def build_clip_tokenizer(words: tuple[str, ...] | list[str] = WORDS, max_length: int = 77):
    """A ``CLIPTokenizer`` whose vocabulary holds every byte and, as single tokens, ``words``."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    vocab: dict[str, int] = {}
    for symbol in alphabet + [c + "</w>" for c in alphabet]:
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    seen = set()
    for word in dict.fromkeys(w.lower() for w in words):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            if (left, right) not in seen:
                seen.add((left, right))
                merges.append((left, right))
                vocab.setdefault(left + right, len(vocab))
            left = left + right
    vocab[START] = len(vocab)
    vocab[END] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
