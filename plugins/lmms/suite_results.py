"""Read benchmark scores back from lmms-eval's ``*_results.json`` and lay them out beside the papers' rows.

Pure functions: lmms-eval's results and the run's plan (``tasks/plan.json``) in, numbers out. lmms-eval reports
fractions under ``"<metric>,<filter>"`` keys; egoforge reports percentages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from egoforge.eval.published import EGO3S_ROWS, EGO3S_SUITE_ROWS, EGOCROSS_ROWS

# Benchmark -> table column(s), in Ego3S's results-table order, then EgoCross.
COLUMNS = {"egoplan2": "EgoPlan2", "qaego4d": "QAEgo4D", "egotextvqa": "EgoTextVQA", "egoschema": "EgoSchema",
           "egothink": "EgoThink"}
EGOCROSS_COLUMNS = ("EgoCross micro", "EgoCross macro")
EGO3S_MODEL = "Qwen2.5-VL-7B"
EGOCROSS_MODEL = "Qwen3-VL-4B"
# Local stand-ins for a benchmark whose published metric is an LLM judge: they get their own column, named after
# the stand-in, so a locally computed number never sits in the column of a judged published number.
LOCAL_SUBSTITUTES = {"local_answer_match": "local answer match"}
JUDGED_METRICS = ("judge_accuracy", "judge_rating")


class MissingMetricError(KeyError):
    pass


def metric_value(task_results: Mapping, metric: str, task: str = "?") -> float:
    """The value of ``metric`` in one task's lmms-eval results (any filter; ``none`` first)."""
    for key in (f"{metric},none", *sorted(k for k in task_results if k.startswith(f"{metric},"))):
        value = task_results.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    raise MissingMetricError(f"task {task!r} has no numeric metric {metric!r} (keys: {', '.join(task_results)})")


def combine(values: list[float], counts: list[int], how: str) -> float:
    """One number from per-task values: ``single``/``mean`` (unweighted) or ``micro`` (weighted by docs)."""
    if not values:
        return math.nan
    if how == "micro":
        total = sum(counts)
        return sum(v * n for v, n in zip(values, counts)) / total if total else math.nan
    if how in ("single", "mean"):
        return sum(values) / len(values)
    raise ValueError(f"unknown combination {how!r}")


def collect(lmms_results: Mapping, plans: list[Mapping]) -> dict[str, dict]:
    """Per benchmark: score (%), metric, docs evaluated, per-task scores, extra metrics (%), notes."""
    results, samples = lmms_results.get("results", {}), lmms_results.get("n-samples", {})
    collected = {}
    for plan in plans:
        tasks = list(plan["tasks"])
        counts = [int(samples.get(t, {}).get("effective", plan["tasks"][t])) for t in tasks]
        per_task = {}
        for task, n in zip(tasks, counts):
            per_task[task] = {"n": n, plan["metric"]: 100 * metric_value(results[task], plan["metric"], task)}
            for extra in plan.get("extra_metrics", []):
                per_task[task][extra] = 100 * metric_value(results[task], extra, task)
        combined = {m: combine([per_task[t][m] for t in tasks], counts, plan["combine"])
                    for m in (plan["metric"], *plan.get("extra_metrics", []))}
        collected[plan["benchmark"]] = {
            "score": combined[plan["metric"]],
            "metric": plan["metric"],
            "combine": plan["combine"],
            "n": sum(counts),
            "metric_kind": metric_kind(plan["metric"]),
            "extra": {m: v for m, v in combined.items() if m != plan["metric"]},
            "tasks": per_task,
            "notes": list(plan.get("notes", [])),
        }
    return collected


def metric_kind(metric: str) -> str:
    """How a benchmark score was measured: a ``local substitute`` for a judged metric, an ``LLM judge``, or ``exact``
    (the benchmark's own rule-based metric, e.g. multiple-choice accuracy)."""
    if metric in LOCAL_SUBSTITUTES:
        return "local substitute"
    return "LLM judge" if metric in JUDGED_METRICS else "exact"


def column_of(benchmark: str, metric: str | None = None) -> str:
    """The table column of a benchmark measured with ``metric``: the published column unless a local substitute."""
    substitute = LOCAL_SUBSTITUTES.get(metric or "")
    return f"{COLUMNS[benchmark]} ({substitute})" if substitute else COLUMNS[benchmark]


def suite_row(collected: Mapping[str, Mapping]) -> dict[str, float]:
    """The user's row of the suite table."""
    row = {column_of(b, r["metric"]): r["score"] for b, r in collected.items() if b in COLUMNS}
    if "egocross" in collected:
        row["EgoCross micro"] = collected["egocross"]["score"]
        row["EgoCross macro"] = collected["egocross"]["extra"].get("macro", math.nan)
    return row


def suite_columns(benchmarks: list[str], with_published: bool = True,
                  metrics: Mapping[str, str] | None = None) -> list[str]:
    """Table columns: the benchmarks run, plus every published column when published rows are shown.

    ``metrics`` (benchmark -> the metric of its score) puts a local substitute in its own column, right after the
    published column it stands in for.
    """
    metrics = metrics or {}
    crossed = list(EGOCROSS_COLUMNS) if "egocross" in benchmarks else []
    if not with_published:
        return [column_of(b, metrics.get(b)) for b in COLUMNS if b in benchmarks] + crossed
    columns = []
    for benchmark, published in COLUMNS.items():
        columns.append(published)
        run = column_of(benchmark, metrics.get(benchmark))
        if benchmark in benchmarks and run != published:
            columns.append(run)
    return columns + list(EGOCROSS_COLUMNS)


def published_rows() -> dict[str, dict[str, float]]:
    """Ego3S's baseline, ablation and full rows, and EgoCross's rows, named with their base models."""
    rows = {}
    for name in EGO3S_SUITE_ROWS:
        rows[f"Ego3S: {name} ({EGO3S_MODEL})"] = {c: v for c, v in EGO3S_ROWS[name].items() if c != "Time(h)"}
    for name, values in EGOCROSS_ROWS.items():
        rows[f"EgoCross: {name} ({EGOCROSS_MODEL})"] = {"EgoCross micro": values["micro"],
                                                         "EgoCross macro": values["macro"]}
    return rows


def row_label(label: str, collected: Mapping[str, Mapping], judge_model: str | None = None) -> str:
    """The user's row name; when any score came from an LLM judge, it names the benchmarks and the judge model."""
    judged = [COLUMNS[b] for b, r in collected.items() if b in COLUMNS and r["metric"] in JUDGED_METRICS]
    if not judged:
        return label
    if not judge_model:
        raise ValueError(f"{', '.join(judged)} scored by an LLM judge: the judge model must be named")
    return f"{label} ({', '.join(judged)} judged by {judge_model})"


def suite_table_rows(label: str, collected: Mapping[str, Mapping], with_published: bool = True,
                     judge_model: str | None = None) -> dict:
    rows = {row_label(label, collected, judge_model): suite_row(collected)}
    if with_published:
        rows.update(published_rows())
    return rows
