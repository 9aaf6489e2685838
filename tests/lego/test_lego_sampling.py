"""Sampling: Euler ancestral with dual guidance on the trained tiny LDM (shapes, the three conditioning branches,
the guidance scales, the official output layout and resuming)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from egoforge.lego.conditioning import fit_tokens
from egoforge.lego.config import LegoSetupError
from egoforge.lego.convert import read_index
from egoforge.lego.dataset import load_frame
from egoforge.lego.features import FeatureReader
from egoforge.lego.model import LegoLDM
from egoforge.lego.sampling import (
    SamplingSettings,
    generate,
    generate_index,
    load_clip_sizes,
    official_frame,
    output_name,
)


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
    sizes = load_clip_sizes(lego / "ego4d_metadata.json")
    with pytest.raises(LegoSetupError, match="needs the download's <dataset>_metadata.json"):
        generate_index(model, rows[:3], lego / "EgoGen", tmp_path, reader, info["resolution"], settings)
    first = generate_index(model, rows[:3], lego / "EgoGen", tmp_path, reader, info["resolution"], settings,
                           clip_sizes=sizes)
    assert first == {"rows": 3, "generated": 3, "skipped": 0}
    name = output_name(rows[0])
    assert name == f"images/{rows[0]['clip_id']}/{rows[0]['action_id']}/{rows[0]['target'].split('/')[-1]}"
    before = (tmp_path / name).read_bytes()
    again = generate_index(model, rows, lego / "EgoGen", tmp_path, reader, info["resolution"], settings,
                           clip_sizes=sizes)
    assert again == {"rows": 4, "generated": 1, "skipped": 3}
    assert (tmp_path / name).read_bytes() == before
    with Image.open(tmp_path / name) as image:  # the clip's 3:2 aspect, PIL's default JPEG quality
        assert image.size == (48, 32) and image.quantization == _quantization(75)
        assert np.asarray(image).min() <= 8 and np.asarray(image).max() >= 247  # min-max stretched
    square = SamplingSettings(steps=2, batch_size=3, protocol="egoforge")
    generate_index(model, rows[:1], lego / "EgoGen", tmp_path / "egoforge", reader, info["resolution"], square)
    with Image.open(tmp_path / "egoforge" / name) as image:
        assert image.size == (32, 32) and image.quantization == _quantization(95)


def _quantization(quality: int | None) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", **({"quality": quality} if quality else {}))
    return Image.open(buf).quantization


def official_saved_bytes(gen: torch.Tensor, height: int, width: int, res: int) -> bytes:
    """Oracle: metrics/inference.py's save path, step by step (decoded image -> bicubic resize to the clip's
    aspect -> min-max to [0, 255] -> uint8 cast -> PIL save with its defaults)."""
    h, w = res, round(width / height * res)
    gen = torch.nn.functional.interpolate(gen.unsqueeze(0), size=(h, w), mode="bicubic", align_corners=False)
    gen = gen.squeeze(0)
    gen_norm = (gen - gen.min()) / (gen.max() - gen.min()) * 255
    array = np.transpose(gen_norm.numpy(), axes=[1, 2, 0])
    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("height, width, res", [
    (1080, 1920, 32),  # 16:9 -> 57 (56.9)
    (1440, 1920, 32),  # 4:3 -> 43 (42.7)
    (1920, 1080, 32),  # portrait -> 18
    (64, 80, 10),  # 12.5: Python's round-half-to-even gives 12
    (64, 80, 6),  # 7.5 -> 8
])
def test_saved_frames_follow_the_official_protocol(height, width, res):
    generator = torch.Generator().manual_seed(height + width + res)
    decoded = torch.randn(3, 32, 32, generator=generator) * 0.8 + 0.1  # beyond [-1, 1] in places, not clamped
    decoded[0, :4, :4] = 1.7
    ours = official_frame(decoded, height, width, res)
    buf = io.BytesIO()
    Image.fromarray(ours).save(buf, format="JPEG")
    assert buf.getvalue() == official_saved_bytes(decoded, height, width, res)
    assert ours.shape == (res, round(width / height * res), 3) and ours.max() == 255 and ours.min() == 0
    flat = official_frame(torch.zeros(3, 8, 8), height, width, res)  # the official code divides by zero here
    assert flat.shape[:2] == ours.shape[:2] and not flat.any()


def test_clip_metadata_is_validated(tmp_path):
    from egoforge.data.jsonio import DataFormatError

    path = tmp_path / "ego4d_metadata.json"
    path.write_text('{"clip-a": {"height": 1080, "width": 1920, "fps": 30}, "clip-b": {"height": 0, "width": 5}}')
    with pytest.raises(DataFormatError, match=r"ego4d_metadata.json.*clip-b.height.*positive number"):
        load_clip_sizes(path)
    path.write_text('{"clip-a": {"height": 1080, "width": 1920, "fps": 30}}')
    assert load_clip_sizes(path) == {"clip-a": (1080, 1920)}
