"""Read benchmark scores back from lmms-eval's ``*_results.json`` and lay them out beside the papers' rows.

Pure functions: lmms-eval's results and the run's plan (``tasks/plan.json``) in, numbers out. lmms-eval reports
fractions under ``"<metric>,<filter>"`` keys; egoforge reports percentages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from egoforge.eval.published import EGO3S_ROWS, EGO3S_SUITE_ROWS, EGOCROSS_ROWS

# Benchmark -> table column(s), in Ego3S's order (papers.md §2.5) then EgoCross (§1.4).
COLUMNS = {"egoplan2": "EgoPlan2", "qaego4d": "QAEgo4D", "egotextvqa": "EgoTextVQA", "egoschema": "EgoSchema",
           "egothink": "EgoThink"}
EGOCROSS_COLUMNS = ("EgoCross micro", "EgoCross macro")
EGO3S_MODEL = "Qwen2.5-VL-7B"
EGOCROSS_MODEL = "Qwen3-VL-4B"


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
            "extra": {m: v for m, v in combined.items() if m != plan["metric"]},
            "tasks": per_task,
            "notes": list(plan.get("notes", [])),
        }
    return collected


def suite_row(collected: Mapping[str, Mapping]) -> dict[str, float]:
    """The user's row of the suite table."""
    row = {COLUMNS[b]: r["score"] for b, r in collected.items() if b in COLUMNS}
    if "egocross" in collected:
        row["EgoCross micro"] = collected["egocross"]["score"]
        row["EgoCross macro"] = collected["egocross"]["extra"].get("macro", math.nan)
    return row


def suite_columns(benchmarks: list[str], with_published: bool = True) -> list[str]:
    """Table columns: the benchmarks run, plus every published column when published rows are shown."""
    run = [COLUMNS[b] for b in COLUMNS if b in benchmarks]
    crossed = list(EGOCROSS_COLUMNS) if "egocross" in benchmarks else []
    if not with_published:
        return run + crossed
    return list(COLUMNS.values()) + list(EGOCROSS_COLUMNS)


def published_rows() -> dict[str, dict[str, float]]:
    """Ego3S's baseline, ablation and full rows, and EgoCross's rows, named with their base models."""
    rows = {}
    for name in EGO3S_SUITE_ROWS:
        rows[f"Ego3S: {name} ({EGO3S_MODEL})"] = {c: v for c, v in EGO3S_ROWS[name].items() if c != "Time(h)"}
    for name, values in EGOCROSS_ROWS.items():
        rows[f"EgoCross: {name} ({EGOCROSS_MODEL})"] = {"EgoCross micro": values["micro"],
                                                         "EgoCross macro": values["macro"]}
    return rows


def suite_table_rows(label: str, collected: Mapping[str, Mapping], with_published: bool = True) -> dict:
    rows = {label: suite_row(collected)}
    if with_published:
        rows.update(published_rows())
    return rows
