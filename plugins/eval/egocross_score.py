"""EgoCross CloseQA scoring: pure functions from (testbed items, answers, predictions) to accuracy tables."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from egoforge.data.egocross import DOMAINS, answer_for, domain_of
from egoforge.data.errors import InputError
from egoforge.eval.egocross_protocol import is_correct


@dataclass
class Tally:
    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    def as_dict(self) -> dict:
        return {"correct": self.correct, "total": self.total, "accuracy": round(self.accuracy, 2)}


@dataclass
class EgoCrossResults:
    per_domain: dict[str, Tally] = field(default_factory=dict)
    per_category: dict[str, Tally] = field(default_factory=dict)
    per_question_type: dict[str, Tally] = field(default_factory=dict)
    parse_status: Counter = field(default_factory=Counter)
    missing_predictions: list[str] = field(default_factory=list)
    missing_answers: list[str] = field(default_factory=list)

    @property
    def questions(self) -> int:
        """N: every scored question (the denominator; a question without a prediction counts as wrong)."""
        return sum(t.total for t in self.per_domain.values())

    @property
    def predicted(self) -> int:
        """n: the scored questions that have a prediction."""
        return self.questions - len(self.missing_predictions)

    @property
    def coverage(self) -> str:
        """``"n of N"``, printed beside every table of a run."""
        return f"{self.predicted} of {self.questions}"

    @property
    def micro(self) -> float:
        """Accuracy over all questions (the SFT repository's "Overall" since commit 7a539ab)."""
        correct = sum(t.correct for t in self.per_domain.values())
        total = sum(t.total for t in self.per_domain.values())
        return 100.0 * correct / total if total else 0.0

    @property
    def macro(self) -> float:
        """Mean of the per-domain accuracies (the seed README's 45.65 / 46.59)."""
        scored = [t.accuracy for t in self.per_domain.values() if t.total]
        return sum(scored) / len(scored) if scored else 0.0

    def as_dict(self) -> dict:
        return {
            "micro": round(self.micro, 2),
            "macro": round(self.macro, 2),
            "n_questions": self.questions,
            "coverage": {"predicted": self.predicted, "questions": self.questions,
                         "missing_counted_wrong": len(self.missing_predictions)},
            "per_domain": {d: t.as_dict() for d, t in self.per_domain.items()},
            "per_category": {c: t.as_dict() for c, t in sorted(self.per_category.items())},
            "per_question_type": {q: t.as_dict() for q, t in sorted(self.per_question_type.items())},
            "parse_status": dict(self.parse_status),
            "missing_predictions": self.missing_predictions,
            "missing_answers": self.missing_answers,
        }


def score_egocross(items: list[dict], answers: dict[str, str], predictions: dict[str, dict]) -> EgoCrossResults:
    """Score every testbed item; a missing prediction counts as wrong (and is listed), a missing answer is skipped.

    ``predictions`` maps item id to a record with at least ``prediction`` (a letter); ``parse_status`` is tallied
    when present.
    """
    results = EgoCrossResults(per_domain={d: Tally() for d in DOMAINS})
    per_category: dict[str, Tally] = defaultdict(Tally)
    per_type: dict[str, Tally] = defaultdict(Tally)
    for item in items:
        key = str(item["id"])
        truth = answer_for(item, answers)
        if truth is None:
            results.missing_answers.append(key)
            continue
        record = predictions.get(key)
        if record is None:
            results.missing_predictions.append(key)
            prediction, status = "", "missing"
        else:
            prediction, status = str(record.get("prediction") or ""), record.get("parse_status", "given")
        hit = is_correct(prediction, truth)
        for tally in (
            results.per_domain[domain_of(item["dataset"])],
            per_category[str(item.get("primary_category", "?"))],
            per_type[str(item.get("question_type", "?"))],
        ):
            tally.total += 1
            tally.correct += int(hit)
        results.parse_status[status] += 1
    results.per_category = dict(per_category)
    results.per_question_type = dict(per_type)
    return results


def _named(ids: list[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def check_coverage(items: list[dict], predictions: dict[str, dict], predictions_file: str | os.PathLike,
                   *, allow_partial: bool = False) -> None:
    """Refuse predictions that do not cover the testbed: the scores would be silently wrong.

    An :class:`InputError` naming the file and how many ids matched when no prediction matches a testbed id or some
    prediction has an id the testbed lacks (another testbed's file); and, unless ``allow_partial``, when some
    question has no prediction (an unfinished run). A partial run allowed through is scored over all N questions,
    the missing ones counted wrong, and every table prints its coverage "n of N".
    """
    ids = [str(item["id"]) for item in items]
    known = set(ids)
    matched = sum(key in predictions for key in ids)
    where = f"{matched} of the testbed's {len(ids)} ids have a prediction"
    if not matched:
        raise InputError(predictions_file, f"no prediction matches a testbed id ({where}; its ids: "
                         f"{_named(list(predictions))})", fix="is it the predictions file of this testbed?")
    extra = [key for key in predictions if key not in known]
    if extra:
        raise InputError(predictions_file, f"{len(extra)} predictions have ids the testbed lacks: {_named(extra)} "
                         f"({where})", fix="it belongs to another testbed")
    missing = [key for key in ids if key not in predictions]
    if missing and not allow_partial:
        raise InputError(predictions_file, f"partial run: {where}; without a prediction: {_named(missing)}",
                         fix="finish the run (it resumes), or pass --allow-partial to score the missing questions "
                         "as wrong with the coverage in every table")


def submission_letter(prediction: object) -> str:
    """The one-letter answer a submission carries: ``"B"`` for ``"B"`` / ``"b"``, ``""`` for anything else.

    No trimming or extraction: the official scorer's case-insensitive exact match counts ``" B"`` or ``"B: 3"``
    as wrong, so a submission must not turn them into a right answer.
    """
    text = prediction if isinstance(prediction, str) else ""
    return text.upper() if len(text) == 1 and text.upper() in "ABCD" else ""


def submission(items: list[dict], predictions: dict[str, dict]) -> list[dict]:
    """A submission-shaped file in testbed order: ``[{id, question_id, dataset, answer}]``.

    ``question_id`` comes from the item or its prediction record and is left out where neither has one (the
    published testbed has none): Codabench's ids are in ``submission_template.json``; build the file to upload
    with :func:`egoforge.eval.egocross_submit.fill_template`.
    """
    rows = []
    for item in items:
        record = predictions.get(str(item["id"]), {})
        row = {"id": item["id"]}
        question_id = item.get("question_id", record.get("question_id"))
        if question_id is not None:
            row["question_id"] = question_id
        rows.append(row | {"dataset": item["dataset"], "answer": submission_letter(record.get("prediction"))})
    return rows
