"""GPU-only LEGO paths (skipped without CUDA; run with tests/lego/run_lego_gpu_checks.sh on a GPU machine):
mixed-precision LDM training, half-precision sampling, bf16 feature extraction, and one SD-1.5-sized step."""

from __future__ import annotations

import json

import pytest
import torch
from lego_helpers import TINY_RECIPE, read_jsonl, tiny_overrides_for

from egoforge.train.recipe import load_recipe

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_cuda(lego_work, lego_features, tmp_path, precision):
    from egoforge.lego.register import run

    recipe = load_recipe(TINY_RECIPE, tiny_overrides_for(lego_work, lego_features, tmp_path / precision, **{
        "train.max_steps": 20, "train.mixed_precision": precision, "train.logging_steps": 5,
        "train.gradient_checkpointing": True}))
    recipe.pop("trainer")
    assert run(recipe) == 0
    losses = [r["loss"] for r in read_jsonl(tmp_path / precision / "trainer_log.jsonl")]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_half_precision_sampling_on_cuda(trained_ldm, lego_work, lego_features, tmp_path):
    from egoforge.lego.convert import read_index
    from egoforge.lego.features import FeatureReader
    from egoforge.lego.model import LegoLDM
    from egoforge.lego.sampling import SamplingSettings, generate_index

    lego = lego_work / "data" / "lego"
    model, info = LegoLDM.load(trained_ldm, device="cuda", dtype=torch.float16)
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")
    stats = generate_index(model, rows, lego / "EgoGen", tmp_path, FeatureReader(lego_features["val"]),
                           info["resolution"], SamplingSettings(steps=100))  # the paper's 100 steps
    assert stats["generated"] == len(rows)


def test_bf16_feature_extraction_on_cuda(lego_vllm, lego_work, tmp_path):
    from egoforge.lego.convert import read_index
    from egoforge.lego.features import ExtractionSettings, FeatureReader, extract_features

    lego = lego_work / "data" / "lego"
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")
    settings = ExtractionSettings(max_new_tokens=16, batch_size=4, dtype="bfloat16")
    assert extract_features(lego_vllm, rows, lego / "EgoGen", tmp_path, settings)["extracted"] == len(rows)
    image, text = FeatureReader(tmp_path).get(rows[0]["feature_key"])
    assert image.shape[1] == text.shape[1] == 64


def test_sd15_sized_training_step_on_cuda():
    """The paper's model size (random weights from the SD-1.5 layout): one bf16 step with checkpointing."""
    from egoforge.lego.config import ModelConfig
    from egoforge.lego.model import LegoLDM
    from egoforge.train.recipe import build_config

    ldm = LegoLDM.from_config(build_config(ModelConfig, {})).to("cuda", torch.bfloat16)
    ldm.unet.enable_gradient_checkpointing()
    assert sum(p.numel() for p in ldm.unet.parameters()) > 8e8
    n = 4
    batch = {"source": torch.rand(n, 3, 256, 256) * 2 - 1, "target": torch.rand(n, 3, 256, 256) * 2 - 1,
             "prompt": ["pick up the cup"] * n, "image_features": torch.randn(n, 256, 5120),
             "text_features": torch.randn(n, 77, 5120)}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = ldm.training_loss(batch, 0.05)
    loss.backward()
    assert torch.isfinite(loss) and ldm.unet.conv_in.weight.grad is not None
    print(json.dumps({"sd15_step_loss": loss.item(), "max_memory_gb": torch.cuda.max_memory_allocated() / 1e9}))
