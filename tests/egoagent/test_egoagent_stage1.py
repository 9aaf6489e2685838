"""Stage 1 through `egoforge train`: it learns on generated walking tours, resumes to the identical state, runs
under torchrun with two processes, and fails clearly on bad recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from egoagent_helpers import STAGE1_STEPS, STAGE1_TINY, compare_checkpoints, stage1_overrides
from safetensors.torch import load_file

from egoforge.egoagent.train.engine import read_log
from egoforge.tools.cli import main as cli


def test_stage1_learns_and_knn_beats_chance(stage1_run, egoagent_data, tmp_path):
    records = read_log(stage1_run / "trainer_log.jsonl")
    assert [r["step"] for r in records][-1] == STAGE1_STEPS
    losses = [r["loss"] for r in records]
    assert all(torch.isfinite(torch.tensor(losses)))
    # DINO's loss first rises as the student leaves the teacher's copy, then falls as views start to agree.
    peak = max(range(len(losses)), key=losses.__getitem__)
    assert peak < len(losses) - 3
    assert sum(losses[-3:]) / 3 < losses[peak] - 0.05, losses
    assert records[-1]["lr"] == pytest.approx(3e-5) and records[-1]["weight_decay"] > 0.39  # schedules ran out
    assert (stage1_run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    checkpoint = stage1_run / f"checkpoint-{STAGE1_STEPS}"
    assert cli(["egoagent", "knn", "--model", str(checkpoint), "--train", str(egoagent_data / "cities" / "train"),
                "--val", str(egoagent_data / "cities" / "val"), "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["classes"] == 4 and results["k"] == 20 and results["temperature"] == 0.07
    assert results["top1"] >= 2 * results["chance_top1"], results  # 4 cities: chance 25%
    assert "| chance | 25.00 | 100.00 |" in (tmp_path / "results.md").read_text()
    assert "top-1 (%)" in (tmp_path / "results.md").read_text()


def test_stage1_resume_restores_the_identical_state(egoagent_data, tmp_path):
    """4 optimiser steps straight vs 2 + resume, with gradient accumulation and, after the resume, a loader
    worker: model, EMA teacher, centre, optimiser, scheduler, data position and RNG all match exactly."""
    common = dict(max_steps=4, save_steps=2, per_device_batch_size=4, gradient_accumulation_steps=2,
                  save_total_limit=3)
    assert cli(["train", str(STAGE1_TINY), *stage1_overrides(egoagent_data, tmp_path / "a", **common)]) == 0
    resumed = stage1_overrides(egoagent_data, tmp_path / "b", **common, num_workers=1,
                               resume_from_checkpoint=tmp_path / "a" / "checkpoint-2")
    assert cli(["train", str(STAGE1_TINY), *resumed]) == 0
    assert not (tmp_path / "b" / "checkpoint-2").exists()  # it started from step 2
    compare_checkpoints(tmp_path / "a" / "checkpoint-4", tmp_path / "b" / "checkpoint-4")
    state = json.loads((tmp_path / "a" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["consumed"] == 4 * 2 * 4 % 40 and state["gradient_accumulation_steps"] == 2
    assert (tmp_path / "a" / "latest").read_text().strip() == "checkpoint-4"
    # the RNG of the resumed run was restored too
    rng_a = torch.load(tmp_path / "a" / "checkpoint-4" / "accelerate_state" / "random_states_0.pkl",
                       weights_only=False)
    rng_b = torch.load(tmp_path / "b" / "checkpoint-4" / "accelerate_state" / "random_states_0.pkl",
                       weights_only=False)
    assert torch.equal(rng_a["torch_manual_seed"], rng_b["torch_manual_seed"])
    # "latest" resumes where the run stopped: nothing left to do
    again = stage1_overrides(egoagent_data, tmp_path / "a", **common, resume_from_checkpoint="latest")
    assert cli(["train", str(STAGE1_TINY), *again]) == 0


def test_bad_recipes_and_data_fail_clearly(egoagent_data, tmp_path, capsys):
    paths = stage1_overrides(egoagent_data, tmp_path / "x")  # the recipe's data exists: the key errors show
    assert cli(["train", str(STAGE1_TINY), *paths, "optim.lrr=1"]) == 2
    assert "unknown key(s) ['lrr']" in capsys.readouterr().err
    assert cli(["train", str(STAGE1_TINY), "model.size=7b", "--dry-run"]) == 2
    assert "unknown EgoAgent size '7b'" in capsys.readouterr().err
    assert cli(["train", str(STAGE1_TINY), *paths, "mixed_precision=fp8"]) == 2
    assert "mixed_precision must be no, fp16 or bf16" in capsys.readouterr().err
    # a missing frame folder is named by `egoforge train` before anything loads
    missing = stage1_overrides(egoagent_data, tmp_path / "x")[:-3] + [f"data.frame_roots=[{tmp_path / 'none'}]"]
    assert cli(["train", str(STAGE1_TINY), *missing, "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "missing local path" in err and str(tmp_path / "none") in err and "egoforge egoagent frames" in err
    # a checkpoint from a 2-process run cannot resume in 1 process (the data order is sharded per process)
    run = tmp_path / "one"
    assert cli(["train", str(STAGE1_TINY), *stage1_overrides(egoagent_data, run, max_steps=1, save_steps=1,
                                                                per_device_batch_size=2)]) == 0
    state_file = run / "checkpoint-1" / "trainer_state.json"
    state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "world_size": 2}))
    resume = stage1_overrides(egoagent_data, run, max_steps=2, per_device_batch_size=2,
                              resume_from_checkpoint="latest")
    assert cli(["train", str(STAGE1_TINY), *resume]) == 1
    assert "saved with 2 processes, resuming with 1" in capsys.readouterr().err


@pytest.mark.slow
def test_stage1_under_torchrun_with_two_processes(egoagent_data, tmp_path):
    """DDP through accelerate (gloo on CPU): `torchrun -m egoforge.tools.cli train <recipe>`."""
    overrides = stage1_overrides(egoagent_data, tmp_path, max_steps=2, save_steps=2, per_device_batch_size=2,
                                 logging_steps=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29671",
               "-m", "egoforge.tools.cli", "train", str(STAGE1_TINY), *overrides]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["global_step"] == 2
    assert len(read_log(tmp_path / "trainer_log.jsonl")) == 2  # written once, by the main process
    teacher = load_file(str(tmp_path / "checkpoint-2" / "teacher.safetensors"))
    assert all(torch.isfinite(t).all() for t in teacher.values())
