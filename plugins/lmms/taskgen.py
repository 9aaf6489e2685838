"""Write a run's lmms-eval task folder: one YAML per task plus the prepared docs, for ``--include_path``.

Each benchmark module in ``egoforge.lmms.tasks`` turns the user's local copy of a benchmark into a
:class:`BenchmarkPlan`: prepared docs (validated, media paths resolved under the data root) and task configs that
``include:`` either egoforge's template or lmms-eval's stock task file. This module only serializes plans.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from egoforge.data.atomic import atomic_dir, atomic_write_text


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function module.attr`` reference in a task YAML (lmms-eval imports it when it loads the task)."""

    target: str


@dataclass(frozen=True)
class TaskOptions:
    """Protocol settings shared by every benchmark's tasks in one run."""

    # Ego3S's evaluation preprocessing: 2 fps, at most 16 frames (the official evaluation code; docs/evaluation.md)
    video_fps: float = 2.0
    max_frames: int = 16
    max_new_tokens: int | None = None  # None: each task's own value
    judge: bool = False  # use the benchmark's GPT judge (network, API key) instead of the local metric
    strict_json: bool = False  # EgoCross: exactly the official parser, no bare-letter fallback
    true_fps: bool = False  # EgoCross: true per-domain frame rates instead of the official 0.5 fps (a deviation)


@dataclass
class TaskSpec:
    name: str
    config: dict[str, Any]
    n_docs: int = 0


@dataclass
class BenchmarkPlan:
    """What lmms-eval runs for one benchmark and how its score is read back from lmms-eval's results."""

    benchmark: str
    tasks: list[TaskSpec]
    metric: str  # the lmms-eval metric reported as this benchmark's score
    combine: str = "single"  # "single" task, "micro" (weighted by docs) or "mean" (unweighted) over tasks
    group: str | None = None  # an lmms-eval group over the tasks, so users can run them by one name
    extra_metrics: tuple[str, ...] = ()  # further metrics of the task(s) copied into results.json
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"benchmark": self.benchmark, "tasks": {t.name: t.n_docs for t in self.tasks}, "metric": self.metric,
                "combine": self.combine, "group": self.group, "extra_metrics": list(self.extra_metrics),
                "notes": self.notes}


class _TaskDumper(yaml.SafeDumper):
    pass


_TaskDumper.add_representer(FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", ref.target))


class _StockLoader(yaml.SafeLoader):
    pass


_StockLoader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))


def dump_task_yaml(name: str, config: dict[str, Any], header: str = "") -> str:
    """The YAML text of task ``name`` (``!function`` references kept as tags)."""
    body = yaml.dump({"task": name, **config}, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True, width=119)
    return header + body


def stock_task_file(relative: str) -> Path:
    """A task file shipped inside the installed lmms-eval (``lmms_eval/tasks/<relative>``)."""
    import importlib.util

    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or not spec.origin:
        raise RuntimeError("lmms-eval is not installed: pip install 'egoforge[eval]' (lmms-eval==0.7.3)")
    path = Path(spec.origin).parent / "tasks" / relative
    if not path.is_file():
        raise FileNotFoundError(f"lmms-eval has no task file {relative} (looked at {path})")
    return path


def read_task_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A task YAML with its ``include:`` chain merged as lmms-eval merges it (shallow, the including file wins)."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        # A SafeLoader that also accepts lmms-eval's ``!function`` tag: no arbitrary objects are constructed.
        config = yaml.load(handle, Loader=_StockLoader) or {}
    includes = config.pop("include", None)
    if not includes:
        return config
    merged: dict[str, Any] = {}
    for include in [includes] if isinstance(includes, str) else includes:
        target = Path(include) if Path(include).is_absolute() else path.parent / include
        merged.update(read_task_yaml(target))
    merged.update(config)
    return merged


def write_task_dir(out_dir: str | os.PathLike, plans_builder) -> tuple[Path, list[BenchmarkPlan]]:
    """Build plans with ``plans_builder(tmp_dir) -> list[BenchmarkPlan]`` and write their YAML into ``out_dir``.

    The folder is replaced as a whole: a re-run never mixes old and new docs. Docs are referenced relative to each
    YAML (lmms-eval resolves ``data_files`` against the YAML's folder), so the swap keeps them valid.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        plans = plans_builder(tmp)
        for plan in plans:
            folder = tmp / plan.benchmark
            for task in plan.tasks:
                header = f"# egoforge: {plan.benchmark} ({task.n_docs} docs); generated, do not edit\n"
                atomic_write_text(folder / f"{task.name}.yaml", dump_task_yaml(task.name, task.config, header))
            if plan.group:
                group = {"group": plan.group, "task": [t.name for t in plan.tasks],
                         "aggregate_metric_list": [{"metric": plan.metric, "aggregation": "mean",
                                                    "weight_by_size": plan.combine == "micro"}],
                         "metadata": {"version": 1.0}}
                atomic_write_text(folder / f"_{plan.group}_group.yaml", yaml.safe_dump(group, sort_keys=False))
        atomic_write_text(tmp / "plan.json", json.dumps([p.summary() for p in plans], indent=2) + "\n")
    return out_dir, plans
