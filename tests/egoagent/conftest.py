"""EgoAgent fixtures, built once per test run and shared by the xdist workers: generated walking tours (mp4 ->
frames), a city ImageFolder, an Ego-Exo4D layout with preprocessed poses, and a tiny stage-1 model trained by the
real trainer through `egoforge train recipes/egoagent_stage1_tiny.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest
from _shared_build import build_once
from egoagent_helpers import STAGE1_STEPS, STAGE1_TINY, single_thread, stage1_overrides


@pytest.fixture(autouse=True)
def _egoagent_single_thread():
    with single_thread():
        yield


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

    return build_once(tmp_path_factory, "egoagent_data", build)


@pytest.fixture(scope="session")
def stage1_run(tmp_path_factory, egoagent_data) -> Path:
    """Output folder of a tiny stage-1 run (STAGE1_STEPS steps, checkpoints at half and end)."""

    def build(path: Path) -> None:
        from egoforge.tools.cli import main as cli

        overrides = stage1_overrides(egoagent_data, path, max_steps=STAGE1_STEPS, save_steps=STAGE1_STEPS // 2,
                                     logging_steps=5)
        with single_thread():
            assert cli(["train", str(STAGE1_TINY), *overrides]) == 0

    return build_once(tmp_path_factory, "egoagent_stage1_run", build)
