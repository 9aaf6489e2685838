"""Shared helpers of the EgoAgent tests (a module of its own: several test folders have a conftest.py)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

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


def compare_checkpoints(a: Path, b: Path) -> None:
    """Two trainer checkpoints hold bit-identical networks, centre, optimiser, scheduler and trainer state."""
    import torch
    from safetensors.torch import load_file

    for name in ("student.safetensors", "teacher.safetensors", "dino_center.safetensors",
                 "accelerate_state/model.safetensors"):
        left, right = load_file(str(a / name)), load_file(str(b / name))
        assert left.keys() == right.keys()
        for key in left:
            assert torch.equal(left[key], right[key]), (name, key)
    opt_a = torch.load(a / "accelerate_state" / "optimizer.bin", weights_only=True)
    opt_b = torch.load(b / "accelerate_state" / "optimizer.bin", weights_only=True)
    for index, state in opt_a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, opt_b["state"][index][key]), (index, key)
    assert [g["weight_decay"] for g in opt_a["param_groups"]] == [g["weight_decay"] for g in opt_b["param_groups"]]
    sched_a = torch.load(a / "accelerate_state" / "scheduler.bin", weights_only=True)
    assert sched_a == torch.load(b / "accelerate_state" / "scheduler.bin", weights_only=True)
    assert json.loads((a / "trainer_state.json").read_text()) == json.loads((b / "trainer_state.json").read_text())
