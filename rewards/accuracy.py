"""Accuracy of an extracted answer against the ground truth, per Video-R1 ``problem_type``.

The default rules are the official Ego3S ``accuracy_reward`` (``src/ego3s/src/grpo_roi.py``), value for value:

* multiple choice: the stripped ``<answer>`` texts must be equal (``"(A)"``, ``"a"``, ``"A. red"`` score 0 against
  ``A``: the official reward teaches the policy to answer with the bare letter);
* numerical: both or neither must contain ``.`` or ``,``; then ``float`` after dropping commas, equal at 2 decimals;
* OCR: 1 - word error rate, clipped to [0, 1];
* free-form: mean of the ROUGE-1/2/L F-measures with the Porter stemmer (``rouge_score``), clipped to [0, 1];
* regression: ``1 - clip((|a - t| + 1e-9) / (|t| + 1e-9), 0, 1)``. The 1e-9 in the numerator makes an exact answer
  of 0 to a truth of 0 score 0, and a NaN ratio (``"nan"``, ``inf - inf``) clips to 0 and scores 1;
* anything unparseable scores 0, as the official ``try/except`` does.

Two deviations are named options, off in every preset (``AnswerRules``): ``lenient_choice`` reads option letters
(``"(B)"``, ``"b"``, ``"B. red cup"`` -> B), and ``guarded_regression`` scores an exact answer 1 (0 included) and a
non-finite number 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from egoforge.rewards.answers import option_letter
from egoforge.rewards.text_metrics import mean_rouge_f, word_error_rate

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")


@dataclass(frozen=True)
class AnswerRules:
    """egoforge's deviations from the official answer checking; both off reproduces the official reward."""

    lenient_choice: bool = False  # multiple choice: compare option letters, not the exact answer text
    guarded_regression: bool = False  # regression: exact answer scores 1 (also for 0); non-finite numbers score 0


OFFICIAL_RULES = AnswerRules()


def parse_number(text: str) -> float | None:
    """``"1,234.5"`` -> 1234.5; None when the text is not a finite number (used to validate data).

    >>> parse_number(" 1,234.5 ")
    1234.5
    >>> parse_number("nan") is None
    True
    """
    value = official_number(text.strip())
    return value if value is not None and math.isfinite(value) else None


def official_number(text: str) -> float | None:
    """The official ``normalize_number``: ``float`` after dropping commas (``"nan"``, ``"inf"``, ``"1_0"`` parse).

    >>> official_number("1_0"), official_number("inf"), official_number("ten")
    (10.0, inf, None)
    """
    try:
        return float(text.replace(",", ""))
    except (ValueError, OverflowError):
        return None


def multiple_choice(answer: str, truth: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """Official: 1 when the stripped texts are equal. ``lenient_choice``: when the option letters agree.

    >>> multiple_choice(" A ", "A"), multiple_choice("(A)", "A"), multiple_choice("a", "A")
    (1.0, 0.0, 0.0)
    >>> multiple_choice("(A) red", "A", AnswerRules(lenient_choice=True))
    1.0
    """
    if rules.lenient_choice:
        return 1.0 if option_letter(answer) == option_letter(truth) and truth.strip() else 0.0
    return 1.0 if answer.strip() == truth.strip() else 0.0


def _has_decimal(text: str) -> bool:
    return "." in text or "," in text


def numerical(answer: str, truth: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """1 when both round to the same value at 2 decimals and both do (or don't) carry a decimal separator.

    >>> numerical("3.14159", "3.14"), numerical("1,000", "1000.0")
    (1.0, 1.0)
    >>> numerical("3", "3.0")  # one has a separator, the other not
    0.0
    """
    if _has_decimal(answer) != _has_decimal(truth):
        return 0.0
    a, t = official_number(answer), official_number(truth)
    if a is None or t is None:
        return 0.0
    return 1.0 if round(a, 2) == round(t, 2) else 0.0


def ocr(answer: str, truth: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """1 - word error rate, clipped to [0, 1].

    >>> round(ocr("the cup", "the red cup"), 4)  # one deletion in three words
    0.6667
    >>> ocr("a b c d e f", "x")  # more errors than words clips to 0
    0.0
    """
    return max(0.0, min(1.0, 1 - word_error_rate(truth, answer)))


def free_form(answer: str, truth: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """Mean ROUGE-1/2/L F-measure (stemmed), clipped to [0, 1].

    >>> free_form("the cups are red", "the cup is red") > free_form("green", "the cup is red") == 0.0
    True
    """
    return max(0.0, min(1.0, mean_rouge_f(truth, answer)))


def regression(answer: str, truth: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """Official: ``1 - clip((|a - t| + 1e-9) / (|t| + 1e-9), 0, 1)`` (see the module docstring for its quirks).

    ``guarded_regression``: ``1 - min(1, |a - t| / max(|t|, 1e-9))``, 0 for non-finite numbers.

    >>> round(regression("9", "10"), 6), regression("30", "10")
    (0.9, 0.0)
    >>> regression("0", "0"), regression("0", "0", AnswerRules(guarded_regression=True))  # the official quirk
    (0.0, 1.0)
    >>> regression("nan", "1"), regression("nan", "1", AnswerRules(guarded_regression=True))
    (1.0, 0.0)
    """
    a, t = official_number(answer), official_number(truth)
    if a is None or t is None:
        return 0.0
    if rules.guarded_regression:
        if not (math.isfinite(a) and math.isfinite(t)):
            return 0.0
        relative = abs(a - t) / max(abs(t), 1e-9)
        return 1.0 - min(1.0, relative) if math.isfinite(relative) else 0.0
    relative = (abs(a - t) + 1e-9) / (abs(t) + 1e-9)
    # min/max with a NaN second argument keep the first one, as in the official code: a NaN ratio becomes 0.
    return 1 - min(1.0, max(0.0, relative))


_BY_TYPE = {
    "multiple choice": multiple_choice,
    "numerical": numerical,
    "OCR": ocr,
    "free-form": free_form,
    "regression": regression,
}


def accuracy(answer: str, truth: str, problem_type: str, rules: AnswerRules = OFFICIAL_RULES) -> float:
    """Dispatch on ``problem_type``; an unknown type scores 0 (as in the reference code).

    >>> accuracy("B", "B", "multiple choice"), accuracy("B", "B", "multiple-choice")
    (1.0, 0.0)
    """
    scorer = _BY_TYPE.get(problem_type)
    return scorer(answer, truth, rules) if scorer is not None else 0.0
