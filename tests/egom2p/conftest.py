"""EgoM2P fixtures, built once per test run and shared by the xdist workers: generated raw recordings and their
prepared clips, learnable token shards, and a tiny EgoM2P trained by the real trainer."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from _shared_build import build_once

REPO = Path(__file__).resolve().parents[2]
TINY_VIDEO = {"token_grid": [5, 4, 4], "vocab_size": 200}


@contextlib.contextmanager
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)




def tiny_table():
    from egoforge.egom2p.modalities import modality_table

    return modality_table({"rgb": TINY_VIDEO, "depth": TINY_VIDEO})


@pytest.fixture(scope="session")
def egom2p_raw_and_clips(tmp_path_factory) -> Path:
    """raw/: three recordings (npz depth; PNG depth; one without gaze or depth); clips/synth/: their 32 px clips."""
    from egoforge.egom2p.clips import ClipSettings, prepare_clips
    from egoforge.testing.egom2p_data import write_recording

    def build(path: Path) -> None:
        raw = path / "raw"
        write_recording(raw / "rec00.take", seed=0, depth_format="npz")
        write_recording(raw / "rec01", seed=1, depth_format="png")
        write_recording(raw / "rec02", seed=2, modalities=("rgb", "cam"))
        prepare_clips(raw, path / "clips", "synth", ClipSettings(size=32), progress=False)

    return build_once(tmp_path_factory, "egom2p_raw_clips", build)


@pytest.fixture(scope="session")
def egom2p_tokens(tmp_path_factory) -> Path:
    """Learnable token shards: synth_all (4 modalities) and synth_nogaze (rgb, depth, cam)."""
    from egoforge.testing.egom2p_data import write_token_shards

    def build(path: Path) -> None:
        write_token_shards(path, tiny_table(), {"synth_all": ("rgb", "depth", "gaze", "cam"),
                                                "synth_nogaze": ("rgb", "depth", "cam")}, samples=48)

    return build_once(tmp_path_factory, "egom2p_tokens", build)


def tiny_train_overrides(tokens: Path, output_dir: Path, **extra) -> list[str]:
    values = {"data.root": str(tokens), "output_dir": str(output_dir), "progress": False, "logging_steps": 5,
              "warmup_tokens": 5120, **extra}
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="session")
def egom2p_trained(tmp_path_factory, egom2p_tokens) -> Path:
    """A tiny EgoM2P trained for 150 steps on the learnable shards by `egoforge train recipes/egom2p_tiny.yaml`."""
    from egoforge.tools.cli import main as cli

    def build(path: Path) -> None:
        # the schedule of 1,000 steps keeps the lr near its peak for these 150
        overrides = tiny_train_overrides(egom2p_tokens, path / "run", max_steps=150, save_steps=150,
                                         total_tokens=1024000)
        assert cli(["train", str(REPO / "recipes" / "egom2p_tiny.yaml"), *overrides]) == 0

    return build_once(tmp_path_factory, "egom2p_trained", build) / "run"



@pytest.fixture(autouse=True)
def _one_torch_thread():
    """xdist runs two workers on two cores: one intra-op thread each avoids oversubscription (restored after)."""
    with one_torch_thread():
        yield
