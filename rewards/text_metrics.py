"""Text similarity for the OCR and free-form rewards: word error rate and ROUGE-1/2/L F-measures.

Both are bit-parallel over Python integers, so their cost grows with ``len(a) * len(b) / 64`` machine words
instead of ``len(a) * len(b)`` interpreter steps: ROUGE-L or WER of two 20k-token strings takes milliseconds, not
minutes. Inputs are also capped (``MAX_CHARS`` characters, ``MAX_TOKENS`` tokens per side) so a pathological
response cannot stall a reward worker; the cap is far above any real answer (768 new tokens in the recipes).

Tokenisation follows the reference implementations the Video-R1 / Ego3S code calls: ``str.split()`` words for
WER, and for ROUGE lower-cased ``[a-z0-9]+`` runs with the original Porter stemmer on tokens longer than three
characters (``rouge_score``'s default tokenizer with ``use_stemmer=True``, i.e. NLTK's ``PorterStemmer()`` in its
default ``NLTK_EXTENSIONS`` mode: "dying" -> "die", "news" -> "news", where the original algorithm gives "dy", "new").
The stemmer is required: without ``nltk`` the free-form reward raises instead of silently scoring unstemmed.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

MAX_CHARS = 200_000
MAX_TOKENS = 8192
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")


def _symbol_masks(tokens: list[str]) -> dict[str, int]:
    """Bit i of ``masks[t]`` is set when ``tokens[i] == t`` (the pattern's match vectors)."""
    masks: dict[str, int] = {}
    for i, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << i)
    return masks


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between token sequences (unit costs), Myers/Hyyrö bit-vector algorithm.

    >>> edit_distance("the cat sat".split(), "the hat sat down".split())
    2
    """
    if not a:
        return len(b)
    if not b:
        return len(a)
    m = len(a)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    masks = _symbol_masks(a)
    pv, mv, score = mask, 0, m
    for token in b:
        eq = masks.get(token, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        # D[0][j] = j: the top row's horizontal delta is +1, shifted in as the low bit.
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (Allison-Dix / Hyyrö bit-vector algorithm).

    >>> lcs_length("a b c d".split(), "b d e".split())
    2
    """
    if not a or not b:
        return 0
    m = len(a)
    mask = (1 << m) - 1
    masks = _symbol_masks(a)
    v = mask
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & mask
    return m - v.bit_count()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edit distance divided by the reference length (at least 1), on whitespace-split words."""
    ref = reference[:MAX_CHARS].split()[:MAX_TOKENS]
    hyp = hypothesis[:MAX_CHARS].split()[:MAX_TOKENS]
    return edit_distance(ref, hyp) / max(1, len(ref))


@lru_cache(maxsize=1)
def _stemmer():
    try:
        from nltk.stem.porter import PorterStemmer
    except ImportError:
        raise ImportError("the free-form (ROUGE) reward stems words with nltk's Porter stemmer, as rouge_score does; "
                          "install nltk (`pip install nltk`) or score unstemmed explicitly with stem=False") from None
    return PorterStemmer()  # rouge_score's DefaultTokenizer: the default (NLTK_EXTENSIONS) mode


@lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    return _stemmer().stem(token) if len(token) > 3 else token


def rouge_tokens(text: str, stem: bool = True) -> list[str]:
    tokens = _ROUGE_TOKEN.findall(text[:MAX_CHARS].lower())[:MAX_TOKENS]
    return [_stem(t) for t in tokens] if stem else tokens


def _f_measure(overlap: int, n_ref: int, n_hyp: int) -> float:
    if overlap == 0 or n_ref == 0 or n_hyp == 0:
        return 0.0
    precision, recall = overlap / n_hyp, overlap / n_ref
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n))))


def rouge_f(reference: str, hypothesis: str, stem: bool = True) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of ``hypothesis`` against ``reference``."""
    ref, hyp = rouge_tokens(reference, stem), rouge_tokens(hypothesis, stem)
    scores = {}
    for n in (1, 2):
        ref_ngrams, hyp_ngrams = _ngrams(ref, n), _ngrams(hyp, n)
        overlap = sum((ref_ngrams & hyp_ngrams).values())
        scores[f"rouge{n}"] = _f_measure(overlap, sum(ref_ngrams.values()), sum(hyp_ngrams.values()))
    scores["rougeL"] = _f_measure(lcs_length(ref, hyp), len(ref), len(hyp))
    return scores


def mean_rouge_f(reference: str, hypothesis: str, stem: bool = True) -> float:
    """Mean of the ROUGE-1/2/L F-measures (the free-form reward of Video-R1 and Ego3S)."""
    scores = rouge_f(reference, hypothesis, stem)
    return (scores["rouge1"] + scores["rouge2"] + scores["rougeL"]) / 3
