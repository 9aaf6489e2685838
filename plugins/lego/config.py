"""Typed recipe of the LEGO latent-diffusion trainer (``egoforge train recipes/lego_ldm_*.yaml``).

Defaults are the paper's (``configs/train_ego4d.yaml`` of the official code); every key is checked by
:func:`egoforge.train.recipe.build_config`, so a typo names the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LegoSetupError(ValueError):
    """A recipe, model folder or dataset does not fit together; the message names the key or file to fix."""


@dataclass
class ModelConfig:
    # A diffusers Stable Diffusion folder (unet/ vae/ text_encoder/ tokenizer/), e.g. SD v1.5. Its UNet gets 8 input
    # channels (noisy latent + source latent; the 4 new channels start at zero, as InstructPix2Pix/LEGO do).
    # null: build every part from the configs below with random weights (tests, the tiny recipe, benchmarks).
    pretrained: str | None = None
    unet: dict[str, Any] = field(default_factory=dict)  # UNet2DConditionModel kwargs (from-config builds only)
    vae: dict[str, Any] = field(default_factory=dict)  # AutoencoderKL kwargs (from-config builds only)
    text_encoder: dict[str, Any] = field(default_factory=dict)  # CLIPTextConfig kwargs (from-config builds only)
    use_vllm: bool = True  # false: the plain InstructPix2Pix baseline (context = CLIP text only)
    vllm_image_dim: int = 5120  # hidden size of the stage-A VLLM (LLaVA-13B: 5120)
    vllm_text_dim: int = 5120
    # Visual tokens per frame. null: read from the training features (the official release and LLaVA ViT-L/14 at
    # 224 px: 256; LLaVA-1.5 at 336 px: 576; Qwen-VL: set by the stage-A pixel budget). A number must equal the
    # features' count: a mismatch is refused by name, never truncated (the tokens are the frame's patches in
    # raster order, so truncation keeps the top of the frame). Shorter feature rows are zero-padded.
    image_tokens: int | None = None
    text_tokens: int = 77  # generated-text hidden states kept (the paper's 77); padded or truncated
    mixer_layers: int = 2
    mixer_heads: int = 8
    mixer_ff: int = 2048
    mixer_dropout: float = 0.1
    # The paper optimises the projections and the mixer with the UNet; the official code's optimiser holds only the
    # UNet's parameters, leaving them at their random initialisation. false reproduces the code.
    train_conditioner: bool = True
    # The LDM "linear" schedule (sqrt-linear in beta) is diffusers' "scaled_linear".
    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_train_timesteps: int = 1000
    scaling_factor: float | None = None  # latent scale; null = the VAE config's (0.18215 for SD)
    # The LDM's scale_by_std: set the latent scale to 1/std of the first training batch's latents (for VAEs
    # without a known scale, e.g. the tiny random one); stored in the run folder, so resumes and sampling reuse it.
    scale_by_std: bool = False


@dataclass
class FeaturesConfig:
    # auto: shards when dir is set, npy when image_dir/text_dir are; shards: `egoforge lego features` output; npy: the
    # official per-sample .npy release. A dir holding `lego features` shards is read as shards whatever this says.
    format: str = "auto"
    dir: str | None = None  # shards folder
    image_dir: str | None = None  # npy: vllm_image_feature/<model>/<split>
    text_dir: str | None = None  # npy: vllm_text_feature/<model>/<split>


@dataclass
class DataConfig:
    train_index: str = ""  # LDM index jsonl from `egoforge lego convert --to ldm`
    media_root: str = "data/lego/EgoGen"  # frame paths of the index are relative to it
    val_index: str | None = None
    train_features: FeaturesConfig = field(default_factory=FeaturesConfig)
    val_features: FeaturesConfig = field(default_factory=FeaturesConfig)
    # Text prompt: "prompt" (the index's, llava_forecast_finetune by default), "action" (the raw label) or
    # "description" (the text generated at feature extraction).
    prompt: str = "prompt"
    resolution: int = 256
    flip_prob: float = 0.5
    num_workers: int = 4


@dataclass
class TrainConfig:
    output_dir: str = "saves/lego/ldm"
    batch_size: int = 32  # per process
    gradient_accumulation_steps: int = 4
    learning_rate: float = 1.0e-4  # constant (the paper's LambdaLinear schedule has no warm-up)
    warmup_steps: int = 0
    weight_decay: float = 0.01  # torch AdamW's default, which the LDM code uses
    max_grad_norm: float | None = None
    max_epochs: int = 240
    max_steps: int | None = None  # optimizer steps; overrides max_epochs
    uncond: float = 0.05  # classifier-free-guidance dropout unit (text 2u, image u..3u)
    ema: bool = True
    ema_decay: float = 0.9999
    # When the EMA steps. micro_batch: after every micro-batch, as the official LitEma in on_train_batch_end (with
    # accumulation 4 it averages each optimizer step's weights 4 times), warm-up decay min(ema_decay, (1 + n) /
    # (10 + n)) with n the updates so far. optimizer_step: once per optimizer step (egoforge before 2026-12).
    ema_every: str = "micro_batch"
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate)
    gradient_checkpointing: bool = False
    seed: int = 23  # the LDM main.py default
    logging_steps: int = 10
    save_steps: int = 2000
    save_total_limit: int | None = 3
    val_steps: int | None = None  # validation loss every N optimizer steps (needs data.val_index)
    val_batches: int = 8
    resume: str = "auto"  # auto: the newest checkpoint in output_dir; none; or a checkpoint folder
    plot_loss: bool = True


EMA_CADENCES = ("micro_batch", "optimizer_step")


@dataclass
class LegoRecipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
