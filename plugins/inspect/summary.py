"""The report's accuracy summary: the EgoCross scorer for a testbed, the same rules per domain for other formats."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from egoforge.data.egocross import DATASET_TO_DOMAIN, DOMAINS
from egoforge.eval.egocross_score import EgoCrossResults, Tally, score_egocross
from egoforge.inspect.samples import Sample

CHART_FILE = "summary.png"


@dataclass
class Summary:
    results: EgoCrossResults
    scorer: str  # which rules produced the numbers, shown in the report
    rows: dict[str, dict] = field(default_factory=dict)  # table rows: this run first, then published references
    columns: list[str] = field(default_factory=list)
    chart: str | None = None  # file name of the PNG beside the report
    unmatched_predictions: int = 0


def result_row(results: EgoCrossResults) -> dict[str, float]:
    """One table row: accuracy per domain that has questions, then micro and macro (rounded like results.json)."""
    row = {d: round(t.accuracy, 2) for d, t in results.per_domain.items() if t.total}
    return row | {"micro": round(results.micro, 2), "macro": round(results.macro, 2)}


def score_testbed(items: list, answers: dict[str, str], predictions: dict[str, dict]) -> EgoCrossResults:
    """The official scorer over the well-formed items (malformed ones are shown as row issues instead)."""
    usable = [it for it in items if isinstance(it, dict) and "id" in it and it.get("dataset") in DATASET_TO_DOMAIN]
    return score_egocross(usable, answers, predictions)


def score_samples(samples: list[Sample]) -> EgoCrossResults:
    """Per-domain accuracy with the scorer's rules: a missing prediction is wrong, a missing answer is skipped."""
    per_domain: dict[str, Tally] = defaultdict(Tally)
    per_category: dict[str, Tally] = defaultdict(Tally)
    per_type: dict[str, Tally] = defaultdict(Tally)
    results = EgoCrossResults()
    for sample in samples:
        if not sample.answer:
            results.missing_answers.append(sample.id)
            continue
        if sample.prediction is None:
            results.missing_predictions.append(sample.id)
            status = "missing"
        else:
            status = sample.prediction.get("parse_status", "given")
        hit = sample.verdict == "correct"
        for tally in (per_domain[sample.domain or "(none)"], per_category[sample.category or "?"],
                      per_type[sample.question_type or "?"]):
            tally.total += 1
            tally.correct += int(hit)
        results.parse_status[status] += 1
    # EgoCross domains keep the paper's column order; any other domain follows alphabetically.
    order = [d for d in DOMAINS if d in per_domain] + sorted(d for d in per_domain if d not in DOMAINS)
    results.per_domain = {d: per_domain[d] for d in order}
    results.per_category = dict(per_category)
    results.per_question_type = dict(per_type)
    return results


def build_summary(results: EgoCrossResults, scorer: str, label: str, references: dict[str, dict] | None,
                  out_dir: str | os.PathLike, chart_title: str) -> Summary:
    """Table rows and the PNG chart (egoforge.eval.report.bar_chart) written beside the report."""
    from egoforge.eval.report import bar_chart

    rows = {label: result_row(results)}
    for name, row in (references or {}).items():
        rows.setdefault(name, row)
    domains = [d for d, t in results.per_domain.items() if t.total]
    columns = [*domains, "micro", "macro"]
    summary = Summary(results, scorer, rows, columns)
    if domains:
        bar_chart(rows, columns, Path(out_dir) / CHART_FILE, chart_title)
        summary.chart = CHART_FILE
    return summary
