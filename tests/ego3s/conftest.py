"""Ego3S fixtures: generated Video-R1 data, its verl parquet and a tiny random CLIP, built once per test run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_build(tmp_path_factory, name: str, builder) -> Path:
    """``builder(path)`` once per run, shared by the xdist workers (same contract as the root ``build_once``)."""
    from egoforge.data.atomic import file_lock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / name
    with file_lock(root / f".{name}.lock"):
        if not (target / ".done").exists():
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            builder(target)
            (target / ".done").write_text("ok")
    return target


@pytest.fixture(scope="session")
def ego3s_data(tmp_path_factory) -> Path:
    """Folder with train.json (10 Video-R1 samples, every problem type, mp4 / frame folders / images, ROIs)."""
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    return shared_build(tmp_path_factory, "ego3s_data", lambda p: make_video_r1_dataset(p, n=10, seed=0))


@pytest.fixture(scope="session")
def ego3s_parquet(tmp_path_factory, ego3s_data) -> Path:
    """``egoforge ego3s convert`` of the generated data (video mode ``file``)."""
    from egoforge.ego3s.convert import convert_file

    def build(path: Path) -> None:
        convert_file(ego3s_data / "train.json", path / "train.parquet")

    return shared_build(tmp_path_factory, "ego3s_parquet", build) / "train.parquet"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    from egoforge.testing.ego3s_data import build_tiny_clip

    return shared_build(tmp_path_factory, "tiny_clip", lambda p: build_tiny_clip(p / "clip")) / "clip"
