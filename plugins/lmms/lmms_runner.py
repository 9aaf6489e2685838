"""Run the lmms-eval CLI as a subprocess and fail loudly when it fails.

lmms-eval 0.7.3 catches exceptions raised during an evaluation, prints ``Error during evaluation: ...`` and exits
with status 0 (``lmms_eval/__main__.py``'s catch-all). So a run only counts when the process exits 0, its log shows no
such error, a new ``*_results.json`` appeared, and every requested task has results in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# What lmms-eval's CLI prints when it swallows an exception. A traceback alone is not a failure: libraries (vLLM
# workers, optional imports) print some for warnings; a run counts when every task has results and none of these.
FAILURE_MARKERS = ("Error during evaluation",)
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}


class LmmsEvalError(RuntimeError):
    """lmms-eval did not produce results for every task; the message carries the reason and the log's tail."""


@dataclass
class LmmsRun:
    model: str
    model_args: dict[str, object]
    tasks: list[str]
    include_path: Path
    output_path: Path
    batch_size: int = 1
    limit: int | None = None
    extra_args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        for key, value in self.model_args.items():
            if "," in str(value) or "=" in str(value):
                raise ValueError(f"model_args {key}={value!r}: lmms-eval splits model_args on ',' and '=': rename "
                                 "the path")
        args = ",".join(f"{k}={v}" for k, v in self.model_args.items() if v is not None)
        cmd = [sys.executable, "-m", "lmms_eval", "--model", self.model, "--model_args", args,
               "--tasks", ",".join(self.tasks), "--include_path", str(self.include_path),
               "--output_path", str(self.output_path), "--log_samples", "--batch_size", str(self.batch_size)]
        if self.limit is not None:
            cmd += ["--limit", str(self.limit)]
        return cmd + list(self.extra_args)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def check_run(returncode: int, log_text: str, results_files: list[Path], tasks: list[str], log_path: str) -> dict:
    """The parsed results of a finished lmms-eval run, or an LmmsEvalError saying why there are none."""
    def fail(reason: str) -> LmmsEvalError:
        return LmmsEvalError(f"lmms-eval failed: {reason} (full log: {log_path})\n"
                             f"--- last lines of the log ---\n{tail(log_text)}")

    if returncode != 0:
        raise fail(f"exit status {returncode}")
    for marker in FAILURE_MARKERS:
        if marker in log_text:
            raise fail(f"the log reports {marker!r} although the exit status is 0")
    if not results_files:
        raise fail("no *_results.json was written")
    results = json.loads(max(results_files, key=lambda p: p.stat().st_mtime).read_text(encoding="utf-8"))
    missing = [t for t in tasks if t not in results.get("results", {})]
    if missing:
        raise fail(f"no results for task(s) {', '.join(missing)}")
    return results


def run_lmms_eval(run: LmmsRun, log_path: str | os.PathLike, echo: bool = True,
                  env: dict[str, str] | None = None) -> tuple[dict, Path]:
    """Run lmms-eval, tee its output to ``log_path``; returns (results, results file) or raises LmmsEvalError."""
    run.output_path.mkdir(parents=True, exist_ok=True)
    before = set(run.output_path.rglob("*_results.json"))
    full_env = {**os.environ, **{k: v for k, v in OFFLINE_ENV.items() if k not in os.environ}, **(env or {})}
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    chunks = []
    # cwd: the output folder, so no stale *.egg-info of a source checkout shadows the installed entry points.
    with open(log_path, "w", encoding="utf-8") as log, subprocess.Popen(
        run.command(), cwd=run.output_path, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, encoding="utf-8", errors="replace", bufsize=1,  # model output may be any bytes
    ) as proc:
        for line in proc.stdout:
            log.write(line)
            chunks.append(line)
            if echo:
                sys.stderr.write(line)
        returncode = proc.wait()
    new = sorted(set(run.output_path.rglob("*_results.json")) - before)
    results = check_run(returncode, "".join(chunks), new, run.tasks, str(log_path))
    return results, max(new, key=lambda p: p.stat().st_mtime)
