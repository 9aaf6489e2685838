"""EgoAgent as the official configs run it: the DINO centre moves once per optimiser step (with 4-step gradient
accumulation) and fp16 loss scaling grows every 1000 steps from 2**16 (InternLM ``grad_scaler``)."""

from __future__ import annotations

import pytest
import torch
from egoagent_helpers import STAGE1_TINY, stage1_overrides
from safetensors.torch import load_file

import egoforge.egoagent.train.engine as engine
from egoforge.egoagent.train.config import DinoOptions, Stage1Config
from egoforge.tools.cli import main as cli

ACCUMULATION, STEPS = 4, 2


def _run(monkeypatch, data, out, center_update):
    """A tiny stage-1 run with 4-step accumulation; returns (micro-batch teacher means, centre updates, centre)."""
    means, updates = [], []
    real_batch_center, real_update_center = engine.batch_center, engine.update_center

    def recording_batch_center(logits):
        means.append(real_batch_center(logits).clone())
        return means[-1]

    def counting_update_center(center, mean, momentum):
        updates.append(mean.clone())
        return real_update_center(center, mean, momentum)

    monkeypatch.setattr(engine, "batch_center", recording_batch_center)
    monkeypatch.setattr(engine, "update_center", counting_update_center)
    overrides = stage1_overrides(data, out, max_steps=STEPS, save_steps=STEPS, per_device_batch_size=2,
                                 gradient_accumulation_steps=ACCUMULATION,
                                 **{"dino.center_update": center_update})
    assert cli(["train", str(STAGE1_TINY), *overrides]) == 0
    center = load_file(str(out / f"checkpoint-{STEPS}" / "dino_center.safetensors"))["center"]
    return means, updates, center


def test_centre_moves_once_per_optimizer_step_with_accumulation(monkeypatch, egoagent_data, tmp_path):
    means, updates, center = _run(monkeypatch, egoagent_data, tmp_path / "step", "optimizer_step")
    assert len(means) == STEPS * ACCUMULATION and len(updates) == STEPS
    expected = torch.zeros_like(center)
    for step in range(STEPS):
        accumulated = torch.stack(means[step * ACCUMULATION:(step + 1) * ACCUMULATION]).mean(0)
        torch.testing.assert_close(updates[step], accumulated)
        expected = expected * 0.9 + accumulated * 0.1
    torch.testing.assert_close(center, expected)


def test_micro_batch_centre_update_is_the_named_option(monkeypatch, egoagent_data, tmp_path):
    means, updates, center = _run(monkeypatch, egoagent_data, tmp_path / "micro", "micro_batch")
    assert len(updates) == len(means) == STEPS * ACCUMULATION
    expected = torch.zeros_like(center)
    for mean in means:
        expected = expected * 0.9 + mean * 0.1
    torch.testing.assert_close(center, expected)


def test_centre_update_rule_is_validated():
    assert DinoOptions().center_update == "optimizer_step"
    with pytest.raises(ValueError, match="dino.center_update must be one of"):
        DinoOptions(center_update="sometimes")


def test_fp16_loss_scaling_is_the_official_grad_scaler():
    config = Stage1Config(mixed_precision="fp16")
    assert (config.loss_scale_init, config.loss_scale_growth_interval) == (2.0**16, 1000)
    handler = engine.loss_scaler_kwargs(config)
    assert (handler.init_scale, handler.growth_factor, handler.backoff_factor, handler.growth_interval) == (
        65536.0, 2.0, 0.5, 1000)
    # The values the scaler will actually use: torch's GradScaler built from the handler's arguments.
    scaler = torch.amp.GradScaler("cpu", **handler.to_kwargs())
    assert scaler.get_growth_interval() == 1000 and scaler.get_scale() == 65536.0
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # a process-wide singleton: earlier tests set "no"
    try:
        accelerator = engine.make_accelerator(config)
        assert accelerator.scaler_handler is not None and accelerator.scaler_handler.growth_interval == 1000
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.raises(ValueError, match="loss_scale_growth_interval"):
        Stage1Config(loss_scale_growth_interval=0)
