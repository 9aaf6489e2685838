"""Scale and path overrides that run a shipped recipe on a tiny model on CPU (tests, demo, benchmarks)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_repo_file(relative: str) -> Path:
    """A file of the repository checkout (recipes/, dataset_info/): from the current folder or the package's repo."""
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{relative} not found in {Path.cwd()} or {REPO_ROOT}: run from the egoforge checkout")


def tiny_overrides(
    model: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    media_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    **extra: object,
) -> dict[str, object]:
    """Only scale and path: the recipe's method, template and data stay as shipped."""
    overrides: dict[str, object] = {
        "model_name_or_path": str(model),
        "dataset_dir": str(dataset_dir),
        "media_dir": str(media_dir),
        "output_dir": str(output_dir),
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 3,
        "bf16": False,
        "deepspeed": None,
        "image_max_pixels": 16384,
        "image_min_pixels": 1024,
        "video_max_pixels": 16384,
        "video_min_pixels": 1024,
        "cutoff_len": 2048,
        "preprocessing_num_workers": 1,
        "dataloader_num_workers": 0,
        "logging_steps": 1,
        "save_steps": 1000000,
        "report_to": "none",
        "plot_loss": False,
    }
    overrides.update(extra)
    return overrides


def stage_dataset_info(workdir: str | os.PathLike) -> Path:
    """Copy the repository's dataset_info/ into ``workdir`` so its ``../data/egocross`` paths point at
    ``workdir/data/egocross`` (generated data never lands in the checkout's data/ folder)."""
    target = Path(workdir) / "dataset_info"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(find_repo_file("dataset_info"), target)
    return target
