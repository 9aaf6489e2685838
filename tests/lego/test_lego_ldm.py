"""Stage B: the guidance math, the VLLM conditioner, the SD-folder initialisation, and the tiny LDM trained through
`egoforge train` (loss falls on learnable pairs, the conditioning is used, save/resume is exact)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lego_helpers import TINY_RECIPE, TRAINED_STEPS, read_jsonl, tiny_overrides_for

from egoforge.data.models import ModelNotFoundError
from egoforge.lego.conditioning import VLLMConditioner, build_context, fit_tokens
from egoforge.lego.config import LegoRecipe, ModelConfig
from egoforge.lego.guidance import dropout_masks, dual_guidance, keep_vllm
from egoforge.lego.model import LegoLDM, ModelConfigError
from egoforge.train.recipe import build_config, load_recipe

TINY_MODEL = {k: v for k, v in load_recipe(TINY_RECIPE)["model"].items()}


def test_dropout_scheme_drops_text_10_and_image_10_percent():
    u = (torch.arange(100_000) + 0.5) / 100_000  # an exact grid over U(0, 1)
    drop_text, drop_image = dropout_masks(u, 0.05)
    frac = lambda m: m.float().mean().item()  # noqa: E731
    assert frac(drop_text) == pytest.approx(0.10) and frac(drop_image) == pytest.approx(0.10)
    assert frac(drop_text & drop_image) == pytest.approx(0.05)  # both
    assert frac(drop_text & ~drop_image) == pytest.approx(0.05)  # image only kept
    assert frac(~drop_text & drop_image) == pytest.approx(0.05)  # text only kept
    assert torch.equal(keep_vllm(drop_text), ~drop_text)  # VLLM features go with the text
    none_dropped, _ = dropout_masks(u, 0.0)
    assert not none_dropped.any()


def test_dual_guidance_formula():
    full, image, none = torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([0.5])
    # eps(0,0) + s_T (eps(I,T) - eps(I,0)) + s_I (eps(I,0) - eps(0,0)) = 0.5 + 7.5 * 1 + 1.5 * 1.5
    assert dual_guidance(full, image, none, 7.5, 1.5).item() == pytest.approx(10.25)
    assert dual_guidance(full, image, none, 1.0, 1.0).item() == pytest.approx(3.0)
    assert dual_guidance(full, image, none, 0.0, 1.0).item() == pytest.approx(2.0)
    assert dual_guidance(full, image, none, 0.0, 0.0).item() == pytest.approx(0.5)


def test_conditioner_projects_mixes_and_zeroes_dropped_rows(tmp_path):
    torch.manual_seed(0)
    cond = VLLMConditioner(image_dim=12, text_dim=10, context_dim=16, image_tokens=3, text_tokens=5,
                           mixer_layers=2, mixer_heads=4, mixer_ff=32).eval()
    assert cond.projection_img.weight.shape == (16, 12) and len(cond.self_attn_mix.layers) == 2
    assert cond.self_attn_mix.layers[0].norm_first
    image, text = torch.randn(2, 3, 12), torch.randn(2, 5, 10)
    tokens = cond(image, text, keep=torch.tensor([True, False]))
    assert tokens.shape == (2, 8, 16) and tokens[1].eq(0).all() and tokens[0].abs().sum() > 0
    assert torch.allclose(tokens[0, :3], cond.projection_img(image[0]), atol=1e-6)
    context = build_context(torch.ones(2, 7, 16), tokens)
    assert context.shape == (2, 15, 16) and context[:, :7].eq(1).all()
    cond.save_pretrained(tmp_path / "c")
    assert (tmp_path / "c" / "diffusion_pytorch_model.safetensors").exists()
    again = VLLMConditioner.from_pretrained(tmp_path / "c").eval()
    assert torch.equal(again(image, text), cond(image, text))
    assert fit_tokens(torch.ones(3, 4), 5)[3:].eq(0).all() and fit_tokens(torch.ones(9, 4), 5).shape == (5, 4)


def test_pretrained_sd_folder_gets_an_8_channel_unet(tmp_path):
    """A 4-channel SD folder (diffusers layout, safetensors): the new source-latent channels start at zero."""
    from diffusers import UNet2DConditionModel

    cfg = build_config(ModelConfig, TINY_MODEL)
    torch.manual_seed(0)
    base = LegoLDM.from_config(cfg)
    sd = tmp_path / "sd"
    unet4 = UNet2DConditionModel(**{**TINY_MODEL["unet"], "in_channels": 4, "out_channels": 4})
    unet4.save_pretrained(sd / "unet")
    base.vae.save_pretrained(sd / "vae")
    base.text_encoder.save_pretrained(sd / "text_encoder")
    base.tokenizer.save_pretrained(sd / "tokenizer")
    ldm = LegoLDM.from_config(build_config(ModelConfig, {**TINY_MODEL, "pretrained": str(sd)}))
    conv = ldm.unet.conv_in
    assert ldm.unet.config.in_channels == 8 and conv.weight.shape[1] == 8
    assert torch.equal(conv.weight[:, :4], unet4.conv_in.weight) and conv.weight[:, 4:].eq(0).all()
    assert torch.equal(conv.bias, unet4.conv_in.bias)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelConfigError, match=r"missing \['unet', 'vae', 'text_encoder', 'tokenizer'\]"):
        LegoLDM.from_config(build_config(ModelConfig, {**TINY_MODEL, "pretrained": str(tmp_path / "empty")}))
    with pytest.raises(ModelNotFoundError, match="model.pretrained .*nothing: model folder not found"):
        LegoLDM.from_config(build_config(ModelConfig, {**TINY_MODEL, "pretrained": str(tmp_path / "nothing")}))
    with pytest.raises(ModelConfigError, match="cross_attention_dim"):
        LegoLDM.from_config(build_config(ModelConfig, {**TINY_MODEL, "text_encoder": {
            **TINY_MODEL["text_encoder"], "hidden_size": 48}}))


def test_sd15_layout_is_the_papers():
    from egoforge.lego.model import SD15_UNET, SD15_VAE

    assert SD15_UNET["in_channels"] == 8 and SD15_UNET["block_out_channels"] == [320, 640, 1280, 1280]
    assert SD15_UNET["cross_attention_dim"] == 768 and SD15_UNET["layers_per_block"] == 2
    assert SD15_VAE["scaling_factor"] == 0.18215 and len(SD15_VAE["block_out_channels"]) == 4  # f = 8
    sd = load_recipe(TINY_RECIPE.parent / "lego_ldm_sd15.yaml")
    assert sd["model"]["vllm_image_dim"] == 5120 and sd["model"]["image_tokens"] is None  # read from the features
    assert sd["train"]["learning_rate"] == 1e-4 and sd["train"]["batch_size"] * sd["train"][
        "gradient_accumulation_steps"] == 128 and sd["train"]["ema"] and sd["train"]["uncond"] == 0.05


def test_tiny_ldm_loss_falls(trained_ldm, lego_features):
    log = read_jsonl(trained_ldm / "trainer_log.jsonl")
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == TRAINED_STEPS // 10
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses
    vals = [r for r in log if "val_loss" in r]
    assert [r["step"] for r in vals] == [50, 100] and all("val_loss_ema" in r for r in vals)
    assert (trained_ldm / "training_loss.png").read_bytes()[:4] == b"\x89PNG"
    for part in ("unet", "conditioner", "vae", "text_encoder", "tokenizer", "scheduler", "lego_ldm.json"):
        assert (trained_ldm / part).exists(), part
    assert sorted(p.name for p in trained_ldm.glob("checkpoint-*")) == ["checkpoint-100", "checkpoint-50"]
    # the recipe's image_tokens: null was resolved from the features and stored for sampling
    from egoforge.lego.features import FeatureReader

    counts = {s["image_tokens"] for s in FeatureReader(lego_features["train"]).samples.values()}
    assert json.loads((trained_ldm / "lego_ldm.json").read_text())["model"]["image_tokens"] == max(counts)


def _fixed_noise_loss(ldm, batch, t: int, **replace) -> float:
    batch = {**batch, **replace}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = ldm.vae.encode(batch["target"]).latent_dist.mode() * ldm.scaling_factor
        source = ldm.encode_source(batch["source"])
        context = ldm.context(ldm.encode_text(batch["prompt"]), batch["image_features"], batch["text_features"], None)
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.full((latents.shape[0],), t)
        noisy = ldm.scheduler.add_noise(latents, noise, timesteps)
        prediction = ldm.unet(torch.cat([noisy, source], 1), timesteps, encoder_hidden_states=context).sample
    return F.mse_loss(prediction, noise).item()


def test_trained_ldm_uses_the_source_frame(trained_ldm, lego_work, lego_features, one_thread):
    """On the training pairs, the denoiser does better with each pair's own source frame than with another's."""
    from egoforge.lego.dataset import collate
    from egoforge.lego.trainer import make_dataset

    recipe = load_recipe(TINY_RECIPE, tiny_overrides_for(lego_work, lego_features, trained_ldm))
    recipe.pop("trainer")
    dataset = make_dataset(build_config(LegoRecipe, recipe), "train")
    batch = collate([dataset[i] for i in range(len(dataset))])
    ldm, info = LegoLDM.load(trained_ldm / f"checkpoint-{TRAINED_STEPS}", use_ema=False)
    assert info["scaling_factor"] != 0.18215  # fitted by scale_by_std at the start of training
    for t in (100, 300):
        own = _fixed_noise_loss(ldm, batch, t)
        swapped = _fixed_noise_loss(ldm, batch, t, source=batch["source"].roll(1, 0))
        assert own < swapped, (t, own, swapped)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {f"{p.parent.name}/{k}": v for p in sorted(folder.glob("*/*.safetensors")) for k, v in load_file(p).items()}


def test_resume_repeats_the_uninterrupted_run_exactly(lego_work, lego_features, tmp_path, one_thread):
    from egoforge.lego.register import run

    def recipe(out: Path, **extra):
        r = load_recipe(TINY_RECIPE, tiny_overrides_for(lego_work, lego_features, out, **{
            "train.batch_size": 4, "train.gradient_accumulation_steps": 2, "train.save_steps": 3,
            "train.logging_steps": 1, **extra}))
        r.pop("trainer")
        return r

    assert run(recipe(tmp_path / "straight", **{"train.max_steps": 5})) == 0
    assert run(recipe(tmp_path / "resumed", **{"train.max_steps": 3})) == 0
    assert run(recipe(tmp_path / "resumed", **{"train.max_steps": 5})) == 0  # resume=auto picks checkpoint-3
    a, b = tmp_path / "straight" / "checkpoint-5", tmp_path / "resumed" / "checkpoint-5"
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and any(k.startswith("ema_unet/") for k in wa)
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    oa = torch.load(a / "optimizer.pt", weights_only=True)
    ob = torch.load(b / "optimizer.pt", weights_only=True)
    for i, state in oa["state"].items():
        assert torch.equal(state["exp_avg_sq"], ob["state"][i]["exp_avg_sq"])
    assert json.loads((b / "state.json").read_text())["global_step"] == 5
    la = read_jsonl(tmp_path / "straight" / "trainer_log.jsonl")
    lb = read_jsonl(tmp_path / "resumed" / "trainer_log.jsonl")
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]


def test_recipe_errors_name_the_key(lego_work, lego_features, tmp_path):
    from egoforge.lego.register import run
    from egoforge.train.recipe import RecipeError

    base = load_recipe(TINY_RECIPE, tiny_overrides_for(lego_work, lego_features, tmp_path / "x"))
    base.pop("trainer")
    with pytest.raises(RecipeError, match=r"recipe\.model: unknown key\(s\) \['unet_size'\]"):
        run({**base, "model": {**base["model"], "unet_size": 3}})
    with pytest.raises(RecipeError, match=r"model.image_tokens is 4 but the image features of data.train_features "
                                          r"have \d+ tokens x \d+ samples.*set model.image_tokens: \d+"):
        run({**base, "model": {**base["model"], "image_tokens": 4}})
    with pytest.raises(RecipeError, match="64-d but model.vllm_image_dim is 5120"):
        run({**base, "model": {**base["model"], "vllm_image_dim": 5120}})
    with pytest.raises(RecipeError, match=r"row 0, field 'feature_key'.*no VLLM features"):
        run({**base, "data": {**base["data"], "train_features": {"format": "shards",
                                                                 "dir": str(lego_features["val"])}}})
    assert run(base, dry_run=True) == 0


def _npy_features(root: Path, keys: list[str], tokens: int, dim: int = 8):
    import numpy as np

    from egoforge.lego.features import NpyFeatureReader

    for key in keys:
        for kind, shape in (("img", (tokens, dim)), ("txt", (5, dim))):
            path = root / kind / Path(key).with_suffix(".npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.arange(np.prod(shape), dtype=np.float16).reshape(shape))
    return NpyFeatureReader(root / "img", root / "txt")


def test_visual_token_count_comes_from_the_features_never_truncated(tmp_path):
    """LLaVA-1.5 at 336 px gives 576 visual tokens per frame: a recipe saying 256 is refused by name (it would keep
    the top ~44% of the frame), null reads 576, and a dataset or sampler never truncates."""
    from egoforge.lego.conditioning import fit_image_tokens
    from egoforge.lego.config import LegoSetupError
    from egoforge.lego.trainer import resolve_image_tokens

    rows = [{"feature_key": f"clip/0/{i:06d}.jpg"} for i in range(3)]
    features = _npy_features(tmp_path, [r["feature_key"] for r in rows], 576)
    with pytest.raises(LegoSetupError, match=r"model.image_tokens is 256 but the image features of "
                                              r"data.train_features have 576 tokens x 3 samples.*image_tokens: 576"):
        resolve_image_tokens(256, features, rows, "data.train_features")
    assert resolve_image_tokens(None, features, rows, "data.train_features") == 576
    assert resolve_image_tokens(576, features, rows, "data.train_features") == 576
    image, _ = features.get(rows[0]["feature_key"])
    with pytest.raises(LegoSetupError, match=r"'clip/0/000000.jpg' have 576 visual tokens but the model takes "
                                              r"model.image_tokens = 256"):
        fit_image_tokens(image, 256, rows[0]["feature_key"])
    padded = fit_image_tokens(image[:500], 576)
    assert padded.shape == (576, 8) and torch.equal(padded[:500], image[:500]) and not padded[500:].any()


def test_dataset_refuses_to_truncate_visual_tokens(tmp_path):
    from PIL import Image

    from egoforge.lego.config import LegoSetupError
    from egoforge.lego.dataset import LegoPairs

    row = {"id": "a", "source": "s.jpg", "target": "t.jpg", "prompt": "p", "feature_key": "clip/0/000001.jpg"}
    for name in ("s.jpg", "t.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    features = _npy_features(tmp_path / "f", [row["feature_key"]], 576)
    pairs = LegoPairs([row], tmp_path, features, resolution=8, image_tokens=256)
    with pytest.raises(LegoSetupError, match="576 visual tokens but the model takes model.image_tokens = 256"):
        pairs[0]
    assert LegoPairs([row], tmp_path, features, resolution=8, image_tokens=576)[0]["image_features"].shape == (576, 8)


def lit_ema(trajectory: list[torch.Tensor], decay: float) -> torch.Tensor:
    """Oracle: the official LitEma, called once per micro-batch with the weights the model has then; the n-th call
    decays by min(decay, (1 + n) / (10 + n)); the shadow starts at the initial weights."""
    shadow = trajectory[0].clone()
    for n, weights in enumerate(trajectory, start=1):
        current = min(decay, (1 + n) / (10 + n))
        shadow = shadow - (1.0 - current) * (shadow - weights)
    return shadow


def test_ema_steps_every_micro_batch_as_the_official_litema(lego_work, lego_features, tmp_path, one_thread):
    from diffusers import UNet2DConditionModel

    from egoforge.lego.register import run
    from egoforge.lego.trainer import make_dataset

    recipe = load_recipe(TINY_RECIPE, tiny_overrides_for(lego_work, lego_features, tmp_path / "run", **{
        "train.batch_size": 4, "train.gradient_accumulation_steps": 2, "train.save_steps": 1,
        "train.max_steps": 2, "train.logging_steps": 1}))
    recipe.pop("trainer")
    assert run(dict(recipe)) == 0
    cfg = build_config(LegoRecipe, recipe, "recipe")
    make_dataset(cfg, "train")  # resolves image_tokens as the trainer does
    torch.manual_seed(cfg.train.seed)
    initial = LegoLDM.from_config(cfg.model).unet.state_dict()
    step1 = UNet2DConditionModel.from_pretrained(tmp_path / "run" / "checkpoint-1" / "unet").state_dict()
    step2 = UNet2DConditionModel.from_pretrained(tmp_path / "run" / "checkpoint-2" / "unet").state_dict()
    ema = UNet2DConditionModel.from_pretrained(tmp_path / "run" / "checkpoint-2" / "ema_unet").state_dict()
    changed = [k for k in initial if not torch.equal(initial[k], step2[k])]
    assert changed
    for key in changed:  # micro-batches see the weights: initial, step 1 (after its update), step 1, step 2
        expected = lit_ema([initial[key], step1[key], step1[key], step2[key]], cfg.train.ema_decay)
        torch.testing.assert_close(ema[key], expected, rtol=1e-5, atol=1e-7)
