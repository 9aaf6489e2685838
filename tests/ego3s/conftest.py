"""Ego3S fixtures: generated Video-R1 data, its verl parquet and a tiny random CLIP, built once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest
from _shared_build import build_once

REPO = Path(__file__).resolve().parents[2]




@pytest.fixture(scope="session")
def ego3s_data(tmp_path_factory) -> Path:
    """Folder with train.json (10 Video-R1 samples, every problem type, mp4 / frame folders / images, ROIs)."""
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    return build_once(tmp_path_factory, "ego3s_data", lambda p: make_video_r1_dataset(p, n=10, seed=0))


@pytest.fixture(scope="session")
def ego3s_parquet(tmp_path_factory, ego3s_data) -> Path:
    """``egoforge ego3s convert`` of the generated data (video mode ``file``)."""
    from egoforge.ego3s.convert import convert_file

    def build(path: Path) -> None:
        convert_file(ego3s_data / "train.json", path / "train.parquet")

    return build_once(tmp_path_factory, "ego3s_parquet", build) / "train.parquet"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    from egoforge.testing.ego3s_data import build_tiny_clip

    return build_once(tmp_path_factory, "tiny_clip", lambda p: build_tiny_clip(p / "clip")) / "clip"
