"""Checkpoint folders ``OUTPUT/checkpoint-<step>/``: name, find the latest, rotate, and the optimizer / scheduler
state files that an exact resume reads back.

A folder counts as a checkpoint when its name ends in the step number and (where a trainer names one) it holds
the trainer's state file, which is written last, so an interrupted save is never picked up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PREFIX = "checkpoint-"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "lr_scheduler.pt"
NO_RESUME = ("none", "", None)


def checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / f"{PREFIX}{step}"


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name; None for any other name."""
    name = Path(path).name
    suffix = name[len(PREFIX):] if name.startswith(PREFIX) else ""
    return int(suffix) if suffix.isdigit() else None


def list_checkpoints(output_dir: str | os.PathLike, state_file: str | None = None) -> list[Path]:
    """The checkpoint folders of ``output_dir``, oldest step first (with ``state_file``: only complete ones)."""
    found = []
    for path in Path(output_dir).glob(f"{PREFIX}*"):
        step = checkpoint_step(path)
        if step is not None and path.is_dir() and (state_file is None or (path / state_file).is_file()):
            found.append((step, path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str | os.PathLike, state_file: str | None = None) -> Path | None:
    found = list_checkpoints(output_dir, state_file)
    return found[-1] if found else None


def resolve_resume(value: str | None, output_dir: str | os.PathLike, state_file: str, auto: str = "auto"
                   ) -> Path | None:
    """A resume setting -> a checkpoint folder: none/empty -> None; ``auto`` -> the latest complete one in
    ``output_dir`` (None when there is none); anything else must be a folder holding ``state_file``."""
    if value in NO_RESUME:
        return None
    if value == auto:
        return latest_checkpoint(output_dir, state_file)
    path = Path(value)
    if not (path / state_file).is_file():
        raise FileNotFoundError(f"resume {value}: not a checkpoint folder (no {state_file})")
    return path


def rotate_checkpoints(output_dir: str | os.PathLike, keep: int | None) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoint folders (``keep`` None or 0: keep all); returns the deleted."""
    if not keep:
        return []
    old = list_checkpoints(output_dir)[:-keep]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


def save_optimizer_state(folder: Path, optimizer, scheduler=None) -> None:
    """``optimizer.pt`` (and ``lr_scheduler.pt``): tensors and plain values only, so they load with weights_only."""
    import torch

    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    if scheduler is not None:
        torch.save(scheduler.state_dict(), folder / SCHEDULER_FILE)


def load_optimizer_state(folder: Path, optimizer, scheduler=None) -> None:
    import torch

    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, weights_only=True))
