"""Typed recipe sections for the two EgoAgent trainers (built with egoforge.train.recipe.build_config).

Defaults are the official 300M stage-1 settings (InternLM/configs/dino_pretrain/lr5e-4_tmp004_300m.py) unless a
comment says [INFERENCE]: a choice egoforge had to make because the paper's code or text is not available.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelOptions:
    size: str = "300m"  # tiny | 300m | 1b (egoforge.egoagent.sizes)
    image_size: int = 224  # global crops; the conv stem's base grid is image_size / patch_size
    patch_size: int = 16
    causal: bool = True  # USE_CAUSAL_ATTN
    perframe_attention: bool = True  # PERFRAME_ATTEN
    out_dim: int | None = None  # DINO prototypes; None = the size's default (65536 for 300m / 1b)
    head_hidden_size: int | None = None
    head_bottleneck_size: int | None = None
    gradient_checkpointing: bool = False  # the official student checkpoints every layer (checkpoint=1)

    def __post_init__(self) -> None:
        from egoforge.egoagent.sizes import SIZES

        if self.size not in SIZES:
            raise ValueError(f"unknown EgoAgent size {self.size!r}; known: {', '.join(SIZES)}")


@dataclass
class OptimOptions:
    lr: float = 5e-4
    min_lr: float = 5e-6
    warmup_ratio: float = 0.1
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float = 1.0
    # DINO zeroes the prototype gradients early in training; the official config does not say (0 = off).
    freeze_last_layer_steps: int = 0


@dataclass
class DinoOptions:
    student_temp: float = 0.1  # [INFERENCE] DINO's default; the official config sets only the teacher's
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04  # official: 0.04 -> 0.04 over 3 epochs, i.e. no warm-up in effect
    warmup_teacher_temp_steps: int = 0
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996  # cosine to 1 over training
    # When the centre moves: "optimizer_step" (official: once per optimiser step, from the teacher outputs of all
    # the accumulated micro-batches) or "micro_batch" (once per forward, DINO's single-batch form).
    center_update: str = "optimizer_step"

    def __post_init__(self) -> None:
        if self.center_update not in CENTER_UPDATES:
            raise ValueError(f"dino.center_update must be one of {CENTER_UPDATES}, got {self.center_update!r}")


CENTER_UPDATES = ("optimizer_step", "micro_batch")


@dataclass
class RunOptions:
    output_dir: str = "saves/egoagent"
    max_steps: int = 1000  # optimiser steps
    per_device_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    seed: int = 0
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate)
    # fp16 dynamic loss scaling (torch GradScaler; DeepSpeed reads its JSON): the official InternLM config grows the
    # scale x2 after 1000 overflow-free steps from 2**16 (torch's default interval is 2000).
    loss_scale_init: float = 2.0**16
    loss_scale_growth_interval: int = 1000
    num_workers: int = 4
    logging_steps: int = 10
    save_steps: int = 1000
    save_total_limit: int | None = 2
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "latest" (output_dir/latest)
    report_to: str = "none"  # none | tensorboard | wandb | ... (accelerate trackers)
    deepspeed: str | None = None  # a DeepSpeed JSON config (ZeRO-1/2); or configure via `accelerate config`
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.max_steps < 1 or self.per_device_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("max_steps, per_device_batch_size and gradient_accumulation_steps must be >= 1")
        if self.loss_scale_growth_interval < 1 or self.loss_scale_init <= 0:
            raise ValueError("loss_scale_growth_interval must be >= 1 and loss_scale_init > 0")


@dataclass
class Stage1Data:
    frame_roots: list[str] = field(default_factory=list)  # folders of extracted frames (frames_index.txt)
    global_crops_scale: tuple[float, float] = (0.4, 1.0)
    local_crops_scale: tuple[float, float] = (0.05, 0.4)
    local_crops_number: int = 6
    local_crop_size: int = 112
    init_crop_size: int | None = 300
    photometric_augmentation: bool = True  # DINO's colour jitter, grayscale, blur, solarisation


@dataclass
class Stage1Config(RunOptions):
    model: ModelOptions = field(default_factory=ModelOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    dino: DinoOptions = field(default_factory=DinoOptions)
    data: Stage1Data = field(default_factory=Stage1Data)


@dataclass
class Stage2Data:
    pose_dir: str = "data/egoexo4d_body_pose/train"  # fragments written by `egoforge egoagent poses`
    frames_root: str = "data/egoexo4d/processed_data"  # undistorted frames: <take_uid>/**/frame_<index>.jpg
    # The download's takes.json: also finds frame folders named by take name (takes/<take_name>) instead of uid.
    takes_json: str | None = None
    # [INFERENCE] the paper's sequence layout is not public: states every `stride` frames, `history` states per
    # sample, each action = the body pose at `action_frames` frames up to the next state.
    history: int = 4
    stride: int = 5
    action_frames: int = 1
    window_step: int = 1
    pose_scale: float = 1.0
    view_scale: tuple[float, float] = (0.4, 1.0)  # global-crop scale of the student / observer views
    photometric_augmentation: bool = True


@dataclass
class Stage2Options:
    init_from: str | None = None  # a stage-1 checkpoint folder (or an exported HF backbone folder)
    init_teacher_from: str = "teacher"  # teacher | student: which stage-1 weights start the EMA observer
    # L = rep_weight * L_rep + pred_weight * L_pred + lambda_act * L_act  ([INFERENCE]: weights not public)
    rep_weight: float = 1.0
    pred_weight: float = 1.0
    lambda_act: float = 1.0
    action_loss: str = "mpjpe"  # mpjpe | mse
    history_attention: bool = True  # False: attention stays inside one state/action step

    def __post_init__(self) -> None:
        if self.init_teacher_from not in ("teacher", "student"):
            raise ValueError(f"init_teacher_from must be teacher or student, got {self.init_teacher_from!r}")
        if self.action_loss not in ("mpjpe", "mse"):
            raise ValueError(f"action_loss must be mpjpe or mse, got {self.action_loss!r}")


@dataclass
class Stage2Config(RunOptions):
    model: ModelOptions = field(default_factory=ModelOptions)
    optim: OptimOptions = field(default_factory=lambda: OptimOptions(lr=6e-4))
    dino: DinoOptions = field(default_factory=DinoOptions)
    data: Stage2Data = field(default_factory=Stage2Data)
    stage2: Stage2Options = field(default_factory=Stage2Options)
