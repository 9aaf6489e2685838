"""The EgoM2P trainer through `egoforge train`: the loss falls on learnable token data, save/resume is exact, the
paper recipe parses to the released run's schedule, bad recipes name the key, and torchrun runs it on 2 ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from egoforge.tools.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "recipes" / "egom2p_tiny.yaml")


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _overrides(tokens: Path, out: Path, **extra) -> list[str]:
    values = {"data.root": str(tokens), "output_dir": str(out), "progress": False, "logging_steps": 1,
              "warmup_tokens": 5120, **extra}
    return [f"{k}={v}" for k, v in values.items()]


def test_tiny_model_loss_falls_through_the_real_trainer(egom2p_trained):
    log = _log(egom2p_trained)
    assert log[-1]["step"] == 150 and log[-1]["tokens_seen"] == 150 * 8 * 128
    # from chance (log 200-256 ~ 5.4) below the plateau of guessing without the inputs (8 states + noise: ~2.3)
    assert log[0]["loss"] > 4.5 and log[-1]["loss"] < 1.9, [round(r["loss"], 3) for r in log]
    assert {"loss_rgb", "loss_depth", "loss_gaze", "loss_cam"} <= set(log[-1])
    assert (egom2p_trained / "checkpoint-150" / "trainer_state.json").is_file()
    assert (egom2p_trained / "loss.png").stat().st_size > 0
    config = json.loads((egom2p_trained / "config.json").read_text())
    assert config["model"]["dim"] == 64 and config["modalities"]["rgb"]["token_grid"] == [5, 4, 4]


def test_save_and_resume_is_exact(tmp_path, egom2p_tokens):
    extra = {"gradient_accumulation_steps": 2, "save_steps": 3, "save_total_limit": 5}
    assert cli(["train", TINY, *_overrides(egom2p_tokens, tmp_path / "straight", max_steps=6, **extra)]) == 0
    assert cli(["train", TINY, *_overrides(egom2p_tokens, tmp_path / "resumed", max_steps=3, **extra)]) == 0
    assert not (tmp_path / "resumed" / "checkpoint-6").exists()
    assert cli(["train", TINY, *_overrides(egom2p_tokens, tmp_path / "resumed", max_steps=6, **extra)]) == 0
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    opt_a = torch.load(tmp_path / "straight" / "checkpoint-6" / "optimizer.pt", weights_only=True)
    opt_b = torch.load(tmp_path / "resumed" / "checkpoint-6" / "optimizer.pt", weights_only=True)
    assert all(torch.equal(opt_a["state"][i]["exp_avg"], opt_b["state"][i]["exp_avg"]) for i in opt_a["state"])
    losses_a = [r["loss"] for r in _log(tmp_path / "straight")]
    losses_b = [r["loss"] for r in _log(tmp_path / "resumed")]
    assert losses_a == losses_b  # steps 4-6 after the resume repeat the straight run exactly


def test_paper_recipe_dry_run(capsys):
    assert cli(["train", str(REPO / "recipes" / "egom2p_base.yaml"), "gradient_accumulation_steps=256",
                "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "396.2M parameters" in out and "8 datasets" in out and "global batch 1024" in out
    assert "lr 0.0004" in out and "119210 steps (2385 warm-up)" in out and "4096 tokens per sample" in out


@pytest.mark.parametrize("override, message", [
    ("model.dimm=8", "unknown key(s) ['dimm']"),
    ("masking.alphas=[0.1,-1]", "alphas must be positive"),
    ("data.datasets.synth_all.weight=heavy", "recipe.data.datasets.synth_all.weight: expected float"),
    ("modalities.rgb.fps=30", "cannot override ['fps']"),
])
def test_bad_recipes_name_the_key(override, message, capsys, egom2p_tokens, tmp_path):
    code = cli(["train", TINY, *_overrides(egom2p_tokens, tmp_path / "bad"), override, "--dry-run"])
    assert code == 2 or code == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_ranks(tmp_path, egom2p_tokens):
    """DDP on 2 CPU ranks (gloo); the dataset has no gaze, so the gaze head never has targets (DDP must cope)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    overrides = _overrides(egom2p_tokens, tmp_path / "ddp", max_steps=3)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29611",
           "-m", "egoforge.tools.cli", "train", TINY, *overrides, "data.datasets={synth_nogaze: {weight: 1.0}}"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((tmp_path / "ddp" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["tokens_seen"] == 3 * 16 * 128
    assert "global batch 16 (2 processes)" in result.stdout
