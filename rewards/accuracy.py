"""Accuracy of an extracted answer against the ground truth, per Video-R1 ``problem_type``.

Every function returns a finite float in [0, 1] for any input strings; unparseable answers score 0.
"""

from __future__ import annotations

import math

from egoforge.rewards.answers import option_letter
from egoforge.rewards.text_metrics import mean_rouge_f, word_error_rate

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")


def parse_number(text: str) -> float | None:
    """``"1,234.5"`` -> 1234.5; None when the text is not a finite number."""
    try:
        value = float(text.strip().replace(",", ""))
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def multiple_choice(answer: str, truth: str) -> float:
    """1 when the option letters agree ("B", "(B)", "B. red cup" all read as B)."""
    return 1.0 if option_letter(answer) == option_letter(truth) and truth.strip() else 0.0


def _has_decimal(text: str) -> bool:
    return "." in text or "," in text


def numerical(answer: str, truth: str) -> float:
    """1 when both round to the same value at 2 decimals and both do (or don't) carry a decimal separator."""
    if _has_decimal(answer) != _has_decimal(truth):
        return 0.0
    a, t = parse_number(answer), parse_number(truth)
    if a is None or t is None:
        return 0.0
    return 1.0 if round(a, 2) == round(t, 2) else 0.0


def ocr(answer: str, truth: str) -> float:
    """1 - word error rate, clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - word_error_rate(truth, answer)))


def free_form(answer: str, truth: str) -> float:
    """Mean ROUGE-1/2/L F-measure."""
    return min(1.0, max(0.0, mean_rouge_f(truth, answer)))


def regression(answer: str, truth: str) -> float:
    """1 - min(1, |answer - truth| / |truth|).

    A zero truth is guarded by 1e-9 in the denominator only: the reference code also adds 1e-9 to the numerator,
    which scores an exact answer of 0 as 0; here an exact answer always scores 1.
    """
    a, t = parse_number(answer), parse_number(truth)
    if a is None or t is None:
        return 0.0
    relative = abs(a - t) / max(abs(t), 1e-9)
    if not math.isfinite(relative):
        return 0.0
    return 1.0 - min(1.0, max(0.0, relative))


_BY_TYPE = {
    "multiple choice": multiple_choice,
    "numerical": numerical,
    "OCR": ocr,
    "free-form": free_form,
    "regression": regression,
}


def accuracy(answer: str, truth: str, problem_type: str) -> float:
    """Dispatch on ``problem_type``; an unknown type scores 0 (as in the reference code)."""
    scorer = _BY_TYPE.get(problem_type)
    return scorer(answer, truth) if scorer is not None else 0.0
