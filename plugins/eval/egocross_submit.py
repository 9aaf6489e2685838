"""The Codabench submission of EgoCross: ``submission_template.json`` filled with one letter per question.

The challenge's template (SFT repository ``submission_template.json``) lists ``{id, question_id, dataset,
answer: ""}`` per question, ``id`` an integer as in the testbed and ``question_id`` a string the testbed does not
carry. The filled file keeps the template's rows, order and keys and only sets ``answer``; a template that belongs
to another testbed than the predictions is refused, naming the ids that do not match.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from egoforge.data.jsonio import DataFormatError, read_json
from egoforge.eval.egocross_score import submission_letter

TEMPLATE_FIELDS = ("id", "question_id", "dataset", "answer")


class SubmissionError(ValueError):
    """The template and the predictions do not describe the same questions."""


@dataclass
class Submission:
    rows: list[dict]
    answered: int = 0
    unparsed: list[str] = field(default_factory=list)  # ids whose prediction is not one letter: answer ""
    predicted_ids: set[str] = field(default_factory=set)  # template ids that have a prediction (the coverage)

    @property
    def coverage(self) -> str:
        """``"n of N"``: template questions with a prediction, of all of them."""
        return f"{len(self.predicted_ids)} of {len(self.rows)}"


def load_template(path: str | os.PathLike) -> list[dict]:
    """A Codabench template: a list of ``{id, question_id, dataset, answer}``; errors name file, row and field."""
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataFormatError(path, None, None, f"expected a JSON list of rows, got {type(rows).__name__}")
    seen: set[str] = set()
    for row, item in enumerate(rows):
        if not isinstance(item, dict):
            raise DataFormatError(path, row, None, "row is not an object")
        for name in TEMPLATE_FIELDS:
            if name not in item:
                raise DataFormatError(path, row, name, "missing")
        if not isinstance(item["question_id"], str):
            raise DataFormatError(path, row, "question_id", f"expected a string, got {item['question_id']!r}")
        if str(item["id"]) in seen:
            raise DataFormatError(path, row, "id", f"duplicate id {item['id']!r}")
        seen.add(str(item["id"]))
    return rows


def _named(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > limit else "")


def fill_template(template: list[dict], predictions: dict[str, dict], *, allow_missing: bool = False) -> Submission:
    """The template with ``answer`` set from ``predictions`` (keyed by testbed id).

    Refused: predictions for ids the template lacks, an id whose ``dataset`` differs between the two, and (unless
    ``allow_missing``, for ``--limit`` runs) template ids without a prediction. A prediction that is not a single
    option letter becomes ``""`` and is listed in ``unparsed``.
    """
    by_id = {str(row["id"]): row for row in template}
    extra = sorted(set(predictions) - set(by_id), key=_sort_key)
    if extra:
        raise SubmissionError(f"predictions for ids the template does not list: {_named(extra)}; the template "
                              "belongs to another testbed")
    clash = [f"{key} ({predictions[key].get('dataset')!r} vs {by_id[key]['dataset']!r})"
             for key in sorted(predictions, key=_sort_key)
             if predictions[key].get("dataset") not in (None, by_id[key]["dataset"])]
    if clash:
        raise SubmissionError(f"ids whose dataset differs between predictions and template: {_named(clash)}")
    missing = [key for key in by_id if key not in predictions]
    if missing and not allow_missing:
        raise SubmissionError(f"{len(missing)} template ids have no prediction: {_named(missing)} "
                              "(finish the run, or pass --allow-missing to submit them unanswered)")
    result = Submission(rows=[], predicted_ids=set(by_id) & set(predictions))
    for row in template:
        key = str(row["id"])
        letter = submission_letter(predictions.get(key, {}).get("prediction"))
        if key in predictions and not letter:
            result.unparsed.append(key)
        result.answered += bool(letter)
        result.rows.append({**row, "answer": letter})
    return result


def _sort_key(key: str) -> tuple:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)
