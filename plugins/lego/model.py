"""LEGO's latent diffusion model on diffusers parts: build, train-time loss, save and load.

The parts: a ``UNet2DConditionModel`` with 8 input channels (the noisy target latent and the source frame's
latent, InstructPix2Pix's "hybrid" conditioning), a KL ``AutoencoderKL`` (f = 8, latents scaled by 0.18215 for
SD), a frozen CLIP text encoder, the :class:`~egoforge.lego.conditioning.VLLMConditioner`, and the DDPM training
schedule. A trained model folder holds ``unet/``, ``conditioner/`` (``ema_unet/`` and ``ema_conditioner/`` in
checkpoints), ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/`` and ``lego_ldm.json``; a
``checkpoint-N/`` folder holds only the trained parts and finds the frozen ones in its parent. Weights are read
and written as safetensors only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from egoforge.data.atomic import atomic_write_json
from egoforge.lego.conditioning import VLLMConditioner, build_context
from egoforge.lego.config import LegoSetupError, ModelConfig
from egoforge.lego.guidance import dropout_masks, keep_vllm

CONFIG_FILE = "lego_ldm.json"
FROZEN_PARTS = ("vae", "text_encoder", "tokenizer", "scheduler")

# Stable Diffusion v1.5 with InstructPix2Pix's 8 input channels: the layout of the paper's UNet/VAE/CLIP.
SD15_UNET = dict(
    sample_size=32, in_channels=8, out_channels=4, layers_per_block=2, block_out_channels=[320, 640, 1280, 1280],
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    attention_head_dim=8, cross_attention_dim=768,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, sample_size=256,
    scaling_factor=0.18215,
)
SD15_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                 hidden_act="quick_gelu", projection_dim=768)


class ModelConfigError(LegoSetupError):
    """The model part of a recipe is inconsistent (the message says which keys)."""


def _expand_conv_in(unet, channels: int = 8) -> None:
    """Give a 4-channel UNet ``channels`` input channels; the new ones start at zero so training starts from SD."""
    old = unet.conv_in
    if old.in_channels == channels:
        return
    new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels].copy_(old.weight)
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=channels)


def _sharpen_posterior(vae) -> None:
    """Give a randomly initialised KL-VAE a near-deterministic posterior, like a trained one.

    At random init the posterior's log-variance is ~0, so a sampled latent is mostly noise and a tiny LDM built
    from configs would have nothing to learn; trained VAEs (SD's) have posterior std ~1e-3 of the latent scale.
    """
    conv = getattr(vae, "quant_conv", None)
    if conv is None:
        return
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.weight[half:].zero_()
        conv.bias[half:].fill_(-12.0)  # log-variance: std = exp(-6)


def noise_schedule(cfg: ModelConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start,
                         beta_end=cfg.beta_end, beta_schedule="scaled_linear", prediction_type="epsilon",
                         clip_sample=False)


class LegoLDM:
    """The parts of the model and the computations that combine them."""

    def __init__(self, unet, vae, text_encoder, tokenizer, conditioner, scheduler, cfg: ModelConfig) -> None:
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.conditioner, self.scheduler, self.cfg = conditioner, scheduler, cfg
        self.scaling_factor = cfg.scaling_factor or getattr(vae.config, "scaling_factor", 0.18215)
        self._null_text: torch.Tensor | None = None
        for part in (vae, text_encoder):
            part.requires_grad_(False).eval()
        if conditioner is not None and not cfg.train_conditioner:
            conditioner.requires_grad_(False)
        self._check()

    # --- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> LegoLDM:
        """From a pretrained SD folder (UNet widened to 8 channels) or, with ``pretrained: null``, from configs."""
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

        if cfg.pretrained:
            from egoforge.data.models import resolve_model_path

            # a local folder: a missing one is "not found" at once (diffusers would take it for a hub id)
            root = Path(resolve_model_path(cfg.pretrained, online=False, what="model.pretrained"))
            missing = [p for p in ("unet", "vae", "text_encoder", "tokenizer") if not (root / p).is_dir()]
            if missing:
                raise ModelConfigError(
                    f"model.pretrained={root}: missing {missing}. Expected a diffusers Stable Diffusion folder, e.g. "
                    "stable-diffusion-v1-5/stable-diffusion-v1-5 downloaded to that path (unet/, vae/, text_encoder/,"
                    " tokenizer/ with .safetensors weights)")
            unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", use_safetensors=True)
            _expand_conv_in(unet, 8)
            vae = AutoencoderKL.from_pretrained(root, subfolder="vae", use_safetensors=True)
            text_encoder = CLIPTextModel.from_pretrained(root, subfolder="text_encoder", use_safetensors=True)
            tokenizer = CLIPTokenizer.from_pretrained(root, subfolder="tokenizer")
        else:
            from egoforge.lego.tokenizer import build_clip_tokenizer

            tokenizer = build_clip_tokenizer()
            text_kwargs = {"vocab_size": len(tokenizer), "max_position_embeddings": tokenizer.model_max_length,
                           "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                           "pad_token_id": tokenizer.pad_token_id, **(cfg.text_encoder or SD15_TEXT)}
            text_encoder = CLIPTextModel(CLIPTextConfig(**text_kwargs))
            vae = AutoencoderKL(**(cfg.vae or SD15_VAE))
            _sharpen_posterior(vae)
            unet = UNet2DConditionModel(**{**(cfg.unet or SD15_UNET), "in_channels": 8,
                                           "out_channels": vae.config.latent_channels})
        conditioner = cls.make_conditioner(cfg, unet.config.cross_attention_dim) if cfg.use_vllm else None
        return cls(unet, vae, text_encoder, tokenizer, conditioner, noise_schedule(cfg), cfg)

    @staticmethod
    def make_conditioner(cfg: ModelConfig, context_dim: int) -> VLLMConditioner:
        return VLLMConditioner(image_dim=cfg.vllm_image_dim, text_dim=cfg.vllm_text_dim, context_dim=context_dim,
                               image_tokens=cfg.image_tokens, text_tokens=cfg.text_tokens,
                               mixer_layers=cfg.mixer_layers, mixer_heads=cfg.mixer_heads, mixer_ff=cfg.mixer_ff,
                               mixer_dropout=cfg.mixer_dropout)

    def _check(self) -> None:
        width = self.unet.config.cross_attention_dim
        if self.text_encoder.config.hidden_size != width:
            raise ModelConfigError(f"the text encoder's hidden_size {self.text_encoder.config.hidden_size} must equal "
                                   f"the UNet's cross_attention_dim {width}")
        if self.unet.config.in_channels != 2 * self.vae.config.latent_channels:
            raise ModelConfigError(f"UNet in_channels {self.unet.config.in_channels} must be twice the VAE's "
                                   f"latent_channels {self.vae.config.latent_channels} (noisy + source latent)")
        if self.cfg.mixer_heads and width % self.cfg.mixer_heads:
            raise ModelConfigError(f"mixer_heads {self.cfg.mixer_heads} must divide the context width {width}")

    @property
    def latent_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def to(self, device, dtype: torch.dtype | None = None) -> LegoLDM:
        """Trained parts to ``device`` in float32; frozen parts to ``device`` in ``dtype`` (mixed precision)."""
        for part in (self.unet, self.conditioner):
            if part is not None:
                part.to(device)
        for part in (self.vae, self.text_encoder):
            if dtype in (None, part.dtype):
                part.to(device)
            else:
                part.to(device, dtype=dtype)
        self._null_text = None
        return self

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    # --- computations -------------------------------------------------------------------------------------

    @torch.no_grad()
    def fit_scaling_factor(self, pixels: torch.Tensor) -> float:
        """The LDM's ``scale_by_std``: 1 / std of the latents of ``pixels`` (a training batch)."""
        latents = self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist.sample()
        self.scaling_factor = 1.0 / latents.float().flatten().std().item()
        return self.scaling_factor

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids.to(self.device)
        return self.text_encoder(tokens).last_hidden_state

    def null_text(self, batch: int) -> torch.Tensor:
        if self._null_text is None:
            self._null_text = self.encode_text([""])
        return self._null_text.expand(batch, -1, -1)

    @torch.no_grad()
    def encode_source(self, pixels: torch.Tensor) -> torch.Tensor:
        """The source frame's latent: the posterior mode, unscaled (InstructPix2Pix's convention)."""
        return self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.mode()

    @torch.no_grad()
    def encode_target(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels.to(self.vae.dtype)).latent_dist.sample() * self.scaling_factor

    @torch.no_grad()
    def decode_raw(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> the VAE's images as they come (about [-1, 1], not clamped)."""
        return self.vae.decode(latents.to(self.vae.dtype) / self.scaling_factor).sample.float()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1]."""
        return ((self.decode_raw(latents) + 1) / 2).clamp(0, 1)

    def context(self, text_embeddings: torch.Tensor, image_features: torch.Tensor | None,
                text_features: torch.Tensor | None, keep: torch.Tensor | None, conditioner=None) -> torch.Tensor:
        conditioner = conditioner if conditioner is not None else self.conditioner
        if conditioner is None:
            return text_embeddings
        dtype = next(conditioner.parameters()).dtype  # half-precision sampling; autocast handles training
        tokens = conditioner(image_features.to(dtype), text_features.to(dtype), keep)
        return build_context(text_embeddings, tokens)

    def training_loss(self, batch: dict, uncond: float, unet=None, conditioner=None) -> torch.Tensor:
        """The epsilon-prediction MSE of one batch, with the paper's guidance dropout (``uncond`` = 0: none).

        Random draws use the global torch generator: the trainer seeds it per step, so a resumed run repeats them.
        """
        unet = unet if unet is not None else self.unet
        source, target = batch["source"].to(self.device), batch["target"].to(self.device)
        n = target.shape[0]
        latents = self.encode_target(target).float()
        source_latents = self.encode_source(source).float()
        text = self.encode_text(batch["prompt"]).float()
        drop_text, drop_image = dropout_masks(torch.rand(n), uncond)
        drop_text, drop_image = drop_text.to(self.device), drop_image.to(self.device)
        text = torch.where(drop_text.view(-1, 1, 1), self.null_text(n).float(), text)
        source_latents = source_latents * (~drop_image).float().view(-1, 1, 1, 1)
        image_features = batch.get("image_features")
        text_features = batch.get("text_features")
        if image_features is not None:
            image_features, text_features = image_features.to(self.device), text_features.to(self.device)
        context = self.context(text, image_features, text_features, keep_vllm(drop_text), conditioner)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (n,)).to(self.device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        prediction = unet(torch.cat([noisy, source_latents], dim=1), timesteps, encoder_hidden_states=context).sample
        return F.mse_loss(prediction.float(), noise)

    # --- saving and loading -------------------------------------------------------------------------------

    def save_frozen(self, path: str | os.PathLike, resolution: int) -> None:
        path = Path(path)
        self.vae.save_pretrained(path / "vae", safe_serialization=True)
        self.text_encoder.save_pretrained(path / "text_encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(path / "tokenizer")
        self.scheduler.save_pretrained(path / "scheduler")
        atomic_write_json(path / CONFIG_FILE, {"model": asdict(self.cfg), "scaling_factor": self.scaling_factor,
                                               "resolution": resolution})

    @classmethod
    def load(cls, path: str | os.PathLike, use_ema: bool = True, device: str | None = None,
             dtype: torch.dtype = torch.float32) -> tuple[LegoLDM, dict]:
        """A trained model (run folder or ``checkpoint-N``); EMA weights when present and ``use_ema``."""
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        from egoforge.train.recipe import build_config

        path = Path(path)
        root = path if (path / CONFIG_FILE).exists() else path.parent
        if not (root / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{path}: not a LEGO LDM folder (no {CONFIG_FILE} here or in its parent)")
        info = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
        cfg = build_config(ModelConfig, info["model"], f"{root / CONFIG_FILE}:model")

        def part(name: str) -> Path:
            ema = path / f"ema_{name}"
            return ema if use_ema and ema.is_dir() else path / name

        unet = UNet2DConditionModel.from_pretrained(part("unet"), use_safetensors=True, torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, torch_dtype=dtype)
        text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder", use_safetensors=True, dtype=dtype)
        tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
        conditioner = None
        if cfg.use_vllm:
            conditioner = VLLMConditioner.from_pretrained(part("conditioner"), use_safetensors=True,
                                                          torch_dtype=dtype)
        scheduler = DDPMScheduler.from_pretrained(root / "scheduler")
        model = cls(unet, vae, text_encoder, tokenizer, conditioner, scheduler, cfg)
        model.scaling_factor = info.get("scaling_factor", model.scaling_factor)
        for part_module in (unet, conditioner):
            if part_module is not None:
                part_module.eval()
        if device:
            model.to(device, dtype)
        return model, info
