"""Local answer scoring shared by egoforge's lmms-eval tasks: option letters, short answers, accuracy.

Pure functions, no model and no network. The open-answer metrics (``answer_match``, ``token_f1``) are local
stand-ins for benchmarks whose official metric is a GPT judge; they are reported under their own names so they are
never mistaken for the judged numbers.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

LETTERS = "ABCDE"

_THINK = re.compile(r"<think>[\s\S]*?</think>", re.IGNORECASE)
_JSON_BLOCK = re.compile(r"\{[\s\S]*?\}")
_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:best\s+|correct\s+|final\s+)?(?:answer|option)\s*(?:is)?\s*[:：]?\s*",
                            re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def strip_thinking(response: str) -> str:
    """Drop ``<think>..</think>`` blocks (Qwen3 templates) and surrounding whitespace."""
    return _THINK.sub("", response or "").strip()


def parse_option_letter(response: str, options: Sequence[str] | None = None, letters: str = "ABCD") -> str:
    """The option letter a free-form response chooses, or ``""`` when it names none.

    Accepts ``B``, ``(B)``, ``B.``, ``B) text``, ``Answer: B``, ``{"prediction": "B"}`` and, when ``options`` is
    given, a response that is exactly one option's text. Deterministic: an unparseable response is wrong, never a
    random guess.
    """
    text = strip_thinking(response)
    if not text:
        return ""
    block = _JSON_BLOCK.search(text)
    if block:
        try:
            value = json.loads(block.group(0))
        except (json.JSONDecodeError, ValueError):
            value = None
        if isinstance(value, dict):
            for key in ("prediction", "answer", "option"):
                if isinstance(value.get(key), str) and value[key].strip()[:1].upper() in letters:
                    return value[key].strip()[0].upper()
    body = _ANSWER_PREFIX.sub("", text)
    allowed = re.escape(letters)
    lead = re.match(rf"^[(\[]?([{allowed}])(?:[)\].:,]|\s|$)", body)
    if lead:
        return lead.group(1)
    if options:
        normalized = normalize_answer(text)
        hits = [letters[i] for i, opt in enumerate(options[: len(letters)]) if normalize_answer(opt) == normalized]
        if len(hits) == 1:
            return hits[0]
    marked = re.findall(rf"(?:^|[\s(\[])([{allowed}])(?=[)\].:]|\s*$)", text)
    return marked[0] if len(set(marked)) == 1 else ""


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (the SQuAD normalization)."""
    text = (text or "").lower()
    text = "".join(" " if ch in string.punctuation else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def extract_short_answer(response: str) -> str:
    """The answer part of a response: after an ``Answer:`` prefix if there is one, first non-empty line."""
    text = strip_thinking(response)
    match = re.search(r"answer\s*[:：]\s*", text, re.IGNORECASE)
    if match:
        text = text[match.end():]
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def answer_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized reference appears as whole words in the normalized prediction, else 0.0."""
    ref, pred = normalize_answer(reference), normalize_answer(prediction)
    if not ref or not pred:
        return 0.0
    return 1.0 if re.search(rf"(?:^| ){re.escape(ref)}(?: |$)", pred) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """Token-overlap F1 between normalized prediction and reference (SQuAD style)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def grouped_accuracy(records: Iterable[Mapping], group_key: str, correct_key: str = "correct") -> dict[str, float]:
    """Accuracy (fraction) per value of ``group_key``."""
    totals: dict[str, list[float]] = {}
    for record in records:
        totals.setdefault(str(record[group_key]), []).append(float(record[correct_key]))
    return {group: mean(values) for group, values in totals.items()}


def macro_accuracy(records: Iterable[Mapping], group_key: str, correct_key: str = "correct") -> float:
    """Unweighted mean of the per-group accuracies."""
    return mean(grouped_accuracy(records, group_key, correct_key).values())
