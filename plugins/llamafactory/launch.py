"""Run the real ``llamafactory-cli train`` on a recipe with ``key=value`` overrides (subprocess, logged)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def llamafactory_cli() -> str:
    """The ``llamafactory-cli`` of this environment (next to the running interpreter first)."""
    beside = Path(sys.executable).parent / "llamafactory-cli"
    if beside.exists():
        return str(beside)
    found = shutil.which("llamafactory-cli")
    if not found:
        raise FileNotFoundError("llamafactory-cli not found: install egoforge's environment (make setup)")
    return found


def format_override(key: str, value: object) -> str:
    if value is None:
        return f"{key}=null"
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    return f"{key}={value}"


class TrainingFailed(RuntimeError):
    pass


def train(
    recipe: str | os.PathLike,
    overrides: Mapping[str, object],
    log_path: str | os.PathLike,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    echo: bool = False,
) -> subprocess.CompletedProcess:
    """``llamafactory-cli train RECIPE k=v ...``; output goes to ``log_path`` (and the terminal with ``echo``).

    Raises TrainingFailed with the log's tail when the run fails.
    """
    cmd = [llamafactory_cli(), "train", str(recipe), *(format_override(k, v) for k, v in overrides.items())]
    run_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    # LLaMA-Factory starts `torchrun` from PATH under FORCE_TORCHRUN: use this environment's, activated or not.
    run_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), run_env.get("PATH", "")])
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if echo:
                sys.stdout.write(line)
        code = proc.wait()
    if code != 0:
        tail = "".join(log_path.read_text(encoding="utf-8").splitlines(keepends=True)[-40:])
        raise TrainingFailed(f"llamafactory-cli train exited with {code}; log: {log_path}\n{tail}")
    return subprocess.CompletedProcess(cmd, code)
