"""EgoAgent fixtures, built once per test run and shared by the xdist workers: generated walking tours (mp4 ->
frames), a city ImageFolder, an Ego-Exo4D layout with preprocessed poses, and a tiny stage-1 model trained by the
real trainer through `egoforge train recipes/egoagent_stage1_tiny.yaml`."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE1_TINY = REPO / "recipes" / "egoagent_stage1_tiny.yaml"
STAGE2_TINY = REPO / "recipes" / "egoagent_stage2_tiny.yaml"
STAGE1_STEPS = 100


@contextlib.contextmanager
def single_thread():
    """One intra-op thread: the tiny models run several times faster than with 2 threads fighting another xdist
    worker for 2 cores (measured 26 vs 4 images/s)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _egoagent_single_thread():
    with single_thread():
        yield


def egoagent_build(tmp_path_factory, name: str, builder) -> Path:
    """``builder(path)`` once per run across xdist workers (the root conftest's ``build_once`` contract)."""
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


def stage1_overrides(data: Path, out: Path, **extra) -> list[str]:
    """Scale and paths only: the tiny recipe's method stays as shipped."""
    values = {"output_dir": str(out), "data.frame_roots": f"[{data / 'wtour_frames'}]", "progress": "false",
              "num_workers": 0}
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def stage2_overrides(data: Path, out: Path, init_from: Path | None, **extra) -> list[str]:
    values = {"output_dir": str(out), "data.pose_dir": str(data / "body_pose" / "train"),
              "data.frames_root": str(data / "egoexo4d" / "processed_data"), "progress": "false", "num_workers": 0,
              "stage2.init_from": str(init_from) if init_from else "null"}
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="session")
def egoagent_data(tmp_path_factory) -> Path:
    def build(path: Path) -> None:
        from egoforge.egoagent.data.egoexo_pose import preprocess
        from egoforge.egoagent.data.frames import extract_videos
        from egoforge.testing.egoagent_data import make_city_imagefolder, make_egoexo, make_walking_tours

        videos = make_walking_tours(path / "wtour", seconds=10, fps=10)
        extract_videos(videos, path / "wtour_frames", progress=False)
        make_city_imagefolder(path / "cities", per_class_train=10, per_class_val=5)
        make_egoexo(path / "egoexo4d", train_takes=4, val_takes=2, frames=60)
        report = preprocess(path / "egoexo4d", path / "body_pose", progress=False)
        assert not report.errors, report.errors

    return egoagent_build(tmp_path_factory, "egoagent_data", build)


@pytest.fixture(scope="session")
def stage1_run(tmp_path_factory, egoagent_data) -> Path:
    """Output folder of a tiny stage-1 run (STAGE1_STEPS steps, checkpoints at half and end)."""

    def build(path: Path) -> None:
        from egoforge.tools.cli import main as cli

        overrides = stage1_overrides(egoagent_data, path, max_steps=STAGE1_STEPS, save_steps=STAGE1_STEPS // 2,
                                     logging_steps=5)
        with single_thread():
            assert cli(["train", str(STAGE1_TINY), *overrides]) == 0

    return egoagent_build(tmp_path_factory, "egoagent_stage1_run", build)
