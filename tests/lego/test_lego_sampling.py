"""Sampling: Euler ancestral with dual guidance on the trained tiny LDM (shapes, the three conditioning branches,
the guidance scales, the official output layout and resuming)."""

from __future__ import annotations

import pytest
import torch

from egoforge.lego.conditioning import fit_tokens
from egoforge.lego.convert import read_index
from egoforge.lego.dataset import load_frame
from egoforge.lego.features import FeatureReader
from egoforge.lego.model import LegoLDM
from egoforge.lego.sampling import SamplingSettings, generate, generate_index, output_name


@pytest.fixture(scope="module")
def val_inputs(trained_ldm, lego_work, lego_features):
    lego = lego_work / "data" / "lego"
    model, info = LegoLDM.load(trained_ldm)
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")[:2]
    reader = FeatureReader(lego_features["val"])
    pairs = [reader.get(r["feature_key"]) for r in rows]
    source = torch.stack([load_frame(lego / "EgoGen" / r["source"], info["resolution"]) for r in rows])
    image = torch.stack([fit_tokens(i, model.cfg.image_tokens) for i, _ in pairs])
    text = torch.stack([fit_tokens(t, model.cfg.text_tokens) for _, t in pairs])
    return model, source, [r["prompt"] for r in rows], image, text


def test_generates_images_of_the_source_shape(val_inputs, one_thread):
    model, source, prompts, image, text = val_inputs
    settings = SamplingSettings(steps=4)
    out = generate(model, source, prompts, image, text, settings)
    assert out.shape == source.shape == (2, 3, 32, 32)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, generate(model, source, prompts, image, text, settings))  # seeded
    other = generate(model, source, prompts, image, text, SamplingSettings(steps=4, seed=1))
    assert not torch.equal(out, other)


def test_each_step_sees_the_three_guidance_branches(val_inputs, one_thread):
    model, source, prompts, image, text = val_inputs
    calls = []
    hook = model.unet.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((args[0].clone(), kwargs["encoder_hidden_states"].clone())),
        with_kwargs=True)
    try:
        generate(model, source, prompts, image, text, SamplingSettings(steps=3))
    finally:
        hook.remove()
    assert len(calls) == 3  # one UNet call per step, the three branches batched
    unet_in, context = calls[0]
    n, clip_tokens = 2, model.tokenizer.model_max_length
    assert unet_in.shape == (3 * n, 8, 8, 8)
    full, image_only, none = unet_in.chunk(3)
    assert torch.equal(full[:, 4:], image_only[:, 4:]) and full[:, 4:].abs().sum() > 0  # source latent
    assert none[:, 4:].eq(0).all()  # no image condition in the unconditional branch
    c_full, c_image, c_none = context.chunk(3)
    assert context.shape[1] == clip_tokens + model.cfg.image_tokens + model.cfg.text_tokens
    assert torch.equal(c_image, c_none)  # null prompt and zeroed VLLM tokens in both
    assert c_image[:, clip_tokens:].eq(0).all() and c_full[:, clip_tokens:].abs().sum() > 0
    assert not torch.equal(c_full[:, :clip_tokens], c_image[:, :clip_tokens])  # the prompt vs the null prompt


def test_guidance_scales_weight_the_branches(val_inputs, one_thread):
    """With both scales at 1 only the fully conditioned branch matters; with the paper's scales all three do."""
    model, source, prompts, image, text = val_inputs

    def scramble(module, args, kwargs, output):
        full, rest = output.sample.chunk(3)[0], output.sample[output.sample.shape[0] // 3:]
        output.sample = torch.cat([full, torch.randn_like(rest) * 3])
        return output

    def run(settings, scrambled: bool):
        hook = model.unet.register_forward_hook(scramble, with_kwargs=True) if scrambled else None
        try:
            return generate(model, source, prompts, image, text, settings)
        finally:
            if hook:
                hook.remove()

    unit = SamplingSettings(steps=3, text_scale=1.0, image_scale=1.0)
    assert torch.allclose(run(unit, False), run(unit, True), atol=1e-3)
    paper = SamplingSettings(steps=3)
    assert (paper.steps, paper.text_scale, paper.image_scale) == (3, 7.5, 1.5)
    assert (run(paper, False) - run(paper, True)).abs().max() > 0.05


def test_generate_index_writes_the_official_layout_and_resumes(trained_ldm, lego_work, lego_features, tmp_path,
                                                               one_thread):
    lego = lego_work / "data" / "lego"
    model, info = LegoLDM.load(trained_ldm)
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")
    reader = FeatureReader(lego_features["val"])
    settings = SamplingSettings(steps=2, batch_size=3)
    first = generate_index(model, rows[:3], lego / "EgoGen", tmp_path, reader, info["resolution"], settings)
    assert first == {"rows": 3, "generated": 3, "skipped": 0}
    name = output_name(rows[0])
    assert name == f"images/{rows[0]['clip_id']}/{rows[0]['action_id']}/{rows[0]['target'].split('/')[-1]}"
    before = (tmp_path / name).read_bytes()
    again = generate_index(model, rows, lego / "EgoGen", tmp_path, reader, info["resolution"], settings)
    assert again == {"rows": 4, "generated": 1, "skipped": 3}
    assert (tmp_path / name).read_bytes() == before
