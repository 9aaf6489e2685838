"""``egoforge evaluate suite``: the egocentric benchmarks through lmms-eval, one ``results.json``, the papers' rows.

Steps: (1) each benchmark's local copy is validated and turned into lmms-eval tasks (``OUT/tasks``, see
:mod:`egoforge.lmms.taskgen`); (2) one ``python -m lmms_eval`` run evaluates them all with one model load
(``OUT/lmms``, log in ``OUT/lmms_eval.log``) and fails loudly if any task has no results; (3) the scores are
collected into ``OUT/results.json`` and ``OUT/results.{md,csv,png}`` beside Ego3S's and EgoCross's published rows;
EgoCross also gets egoforge's full CloseQA report (per domain and category, submission file) in ``OUT/egocross``.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from egoforge.data.atomic import atomic_write_json, atomic_write_text
from egoforge.data.egocross import load_testbed
from egoforge.lmms import MODEL_NAME
from egoforge.lmms.judge import JudgeConfig
from egoforge.lmms.lmms_runner import LmmsRun, run_lmms_eval
from egoforge.lmms.suite_report import write_report
from egoforge.lmms.suite_results import collect, suite_columns, suite_table_rows
from egoforge.lmms.taskgen import BenchmarkPlan, TaskOptions, write_task_dir
from egoforge.lmms.tasks import BENCHMARKS, benchmark_module

DEFAULT_DATA_ROOT = Path("data") / "benchmarks"


class SuiteError(ValueError):
    """The suite cannot run as asked (missing data, bad option); the message says what to fix."""


@dataclass
class SuiteConfig:
    model: str
    out: Path
    data: dict[str, Path]
    benchmarks: tuple[str, ...] = BENCHMARKS
    backend: str = "transformers"
    lmms_model: str = MODEL_NAME
    model_args: dict[str, object] = field(default_factory=dict)
    batch_size: int = 1
    limit: int | None = None
    options: TaskOptions = field(default_factory=TaskOptions)
    label: str = "this model"
    published: bool = True
    echo: bool = True
    judge: JudgeConfig | None = None  # an OpenAI-compatible LLM judge for EgoTextVQA and EgoThink; None: local

    def __post_init__(self) -> None:
        if self.options.judge != (self.judge is not None):
            raise SuiteError("options.judge and the judge configuration disagree: set both or neither")


def parse_benchmarks(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise SuiteError(f"unknown benchmark(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(BENCHMARKS)}")
    return tuple(dict.fromkeys(names))


def data_dirs(benchmarks: tuple[str, ...], data_root: str | os.PathLike, overrides: dict[str, str]) -> dict:
    """Each benchmark's folder: ``overrides[name]`` or ``data_root/name``; all must exist."""
    unknown = sorted(set(overrides) - set(BENCHMARKS))
    if unknown:
        raise SuiteError(f"--data for unknown benchmark(s) {', '.join(unknown)}")
    dirs = {b: Path(overrides.get(b) or Path(data_root) / b).resolve() for b in benchmarks}
    missing = [f"{b}: {d}" for b, d in dirs.items() if not d.is_dir()]
    if missing:
        raise SuiteError("benchmark data not found (layouts: docs/evaluation.md): " + "; ".join(missing))
    return dirs


def prepare_tasks(config: SuiteConfig) -> tuple[Path, list[BenchmarkPlan]]:
    """Validate every benchmark's data and write the lmms-eval task folder ``OUT/tasks``."""
    def build(tmp: Path) -> list[BenchmarkPlan]:
        return [benchmark_module(b).prepare(config.data[b], tmp, config.options) for b in config.benchmarks]

    return write_task_dir(config.out / "tasks", build)


def lmms_run(config: SuiteConfig, plans: list[BenchmarkPlan]) -> LmmsRun:
    model = Path(config.model)
    args: dict[str, object] = {"pretrained": str(model.resolve()) if model.exists() else config.model}
    if config.lmms_model == MODEL_NAME:
        args["backend"] = config.backend
    args.update(config.model_args)
    return LmmsRun(model=config.lmms_model, model_args=args, tasks=[t.name for p in plans for t in p.tasks],
                   include_path=config.out / "tasks", output_path=config.out / "lmms", batch_size=config.batch_size,
                   limit=config.limit)


def egocross_report(samples: Path, data_dir: Path, out_dir: Path, label: str) -> dict:
    """egoforge's own EgoCross report (per domain / category, submission) from lmms-eval's logged samples."""
    from egoforge.eval.egocross_run import score_and_report
    from egoforge.lmms.tasks.egocross import ANSWERS_FILE, TESTBED_FILE

    records = [json.loads(line)["accuracy"] for line in samples.read_text(encoding="utf-8").splitlines() if line]
    predictions = atomic_write_text(out_dir / "predictions.jsonl",
                                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    # Score exactly the questions lmms-eval ran (all of them unless --limit was given).
    evaluated = {r["id"] for r in records}
    testbed = atomic_write_json(out_dir / "testbed_evaluated.json",
                                [it for it in load_testbed(data_dir / TESTBED_FILE) if str(it["id"]) in evaluated])
    return score_and_report(testbed, data_dir / ANSWERS_FILE, predictions, out_dir, label=label).as_dict()


def _samples_file(results_file: Path, task: str) -> Path:
    return results_file.with_name(results_file.name.replace("_results.json", f"_samples_{task}.jsonl"))


def run_suite(config: SuiteConfig, prepare_only: bool = False) -> dict:
    """Run the suite; returns what ``results.json`` holds (with ``prepare_only``: the task folder and command)."""
    if config.lmms_model == MODEL_NAME and not Path(config.model).is_dir():
        raise SuiteError(f"model folder not found: {config.model}")
    task_dir, plans = prepare_tasks(config)
    run = lmms_run(config, plans)
    if prepare_only:
        return {"tasks": str(task_dir), "command": shlex.join(run.command()),
                "plans": [p.summary() for p in plans]}
    judge_env = config.judge.environment() if config.judge else None
    lmms_results, results_file = run_lmms_eval(run, config.out / "lmms_eval.log", echo=config.echo, env=judge_env)
    collected = collect(lmms_results, [p.summary() for p in plans])
    details = {}
    if "egocross" in config.benchmarks:
        details["egocross"] = egocross_report(_samples_file(results_file, "egocross_closeqa"),
                                              config.data["egocross"], config.out / "egocross", config.label)
    columns = suite_columns(list(config.benchmarks), config.published, {p.benchmark: p.metric for p in plans})
    judge_model = config.judge.model if config.judge else None
    rows = suite_table_rows(config.label, collected, config.published, judge_model=judge_model)
    from importlib.metadata import version

    results = {
        "label": config.label,
        "model": config.model,
        "benchmarks": collected,
        "table": {"columns": columns, "rows": rows},
        "details": details,
        "judge": {"url": config.judge.url, "model": config.judge.model} if config.judge else None,
        "options": asdict(config.options) | {"limit": config.limit, "batch_size": config.batch_size},
        "lmms_eval": {"version": version("lmms_eval"), "command": shlex.join(run.command()),
                      "results_file": str(results_file), "log": str(config.out / "lmms_eval.log"),
                      "tasks": str(task_dir)},
    }
    atomic_write_json(config.out / "results.json", results)
    write_report(rows, columns, collected, next(iter(rows)), config.out)
    return results
