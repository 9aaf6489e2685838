"""EgoVLP (FrozenInTime) for LEGO's EgoVLP / EgoVLP+ scores, loading the released checkpoints.

The paper's main metric is not an image-text score: the official ``metrics/all_metrics_in_one.py`` (``run_egovlp``)
embeds the generated frame and the ground-truth frame each as a short *video* with EgoVLP's video tower and takes
the cosine of the two embeddings:

* **EgoVLP**: the frame repeated ``num_frames`` times (4 for Ego4D with ``egovlp.pth``, 16 for Epic-Kitchens with
  ``epic_mir_plus.pth``);
* **EgoVLP+**: the action's source frame as temporal context, ``[source] * F/2 + [frame] * F/2``.

Each clip is preprocessed as the official script does with torchvision 0.12 (its environment): ``ToTensor``,
``Resize(224)`` of the shorter side (bilinear, no antialiasing on tensors, longer side ``int(224 * long / short)``),
``CenterCrop(224)`` and ImageNet mean/std. The text tower (DistilBERT ``[CLS]`` -> ReLU -> Linear) is what the
BLIP-B / BLIP-L columns use to compare a caption with the action description (``compute_text``).

Checkpoints: a FrozenInTime ``state_dict`` (optionally inside ``{"state_dict": ...}`` with the training run's
``config`` / ``optimizer`` next to it, keys optionally prefixed ``module.``). They are opened with
``torch.load(weights_only=True)``; training-time objects that only the trainer needs (EgoVLP saves its
``ConfigParser`` in the file) are read as inert placeholders, never imported or run. The module tree below keeps
the official attribute names, so the released keys load strictly.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

WHERE_TO_GET = ("LEGO's metric weights: run LEGO's scripts/download_metric_weights.sh (it fetches "
                "metric_pretrained.zip with egovlp.pth, epic_mir_plus.pth and distilbert-base-uncased; "
                "https://github.com/BolinLai/LEGO), or egovlp.pth from EgoVLP's README "
                "(https://github.com/showlab/EgoVLP, 'Pretrained weights')")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# distilbert-base-uncased, the text tower every released EgoVLP checkpoint holds
DISTILBERT_BASE = {"vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
                   "max_position_embeddings": 512}


class EgoVLPCheckpointError(ValueError):
    """The checkpoint is not a FrozenInTime state_dict of the configured size."""


@dataclass(frozen=True)
class EgoVLPConfig:
    """FrozenInTime's sizes; the defaults are the released base model (TimeSformer ViT-B/16 + DistilBERT)."""

    num_frames: int = 4
    image_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    projection_dim: int = 256
    text: dict = field(default_factory=lambda: dict(DISTILBERT_BASE))


# LEGO's ``egovlp_args``: the checkpoint and the clip length per dataset
DATASETS = {
    "ego4d": {"num_frames": 4, "checkpoint": "egovlp.pth"},
    "epickitchen": {"num_frames": 16, "checkpoint": "epic_mir_plus.pth"},
}


def config_for(dataset: str, base: EgoVLPConfig | None = None) -> EgoVLPConfig:
    if dataset not in DATASETS:
        raise ValueError(f"EgoVLP dataset {dataset!r}: choose from {', '.join(DATASETS)}")
    return replace(base or EgoVLPConfig(), num_frames=DATASETS[dataset]["num_frames"])


# --- the video tower (Frozen-in-Time's SpaceTimeTransformer) ----------------------------------------------------


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v


class VarAttention(nn.Module):
    """Divided attention: the CLS token attends to every token, each patch token only along time or space."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int, patches: int, along_time: bool) -> torch.Tensor:
        b, tokens, dim = x.shape
        h = self.num_heads
        q, k, v = (t.reshape(b, tokens, h, dim // h).transpose(1, 2).reshape(b * h, tokens, dim // h)
                   for t in self.qkv(x).chunk(3, dim=-1))
        q = q * self.scale
        cls_out = _attend(q[:, :1], k, v)

        def group(t: torch.Tensor) -> torch.Tensor:  # (bh, f*n, d) -> time: (bh*n, f, d), space: (bh*f, n, d)
            t = t.reshape(b * h, frames, patches, -1)
            if along_time:
                return t.transpose(1, 2).reshape(b * h * patches, frames, -1)
            return t.reshape(b * h * frames, patches, -1)

        q_, k_, v_ = group(q[:, 1:]), group(k[:, 1:]), group(v[:, 1:])
        repeats = q_.shape[0] // (b * h)
        k_ = torch.cat([k[:, :1].repeat_interleave(repeats, dim=0), k_], dim=1)
        v_ = torch.cat([v[:, :1].repeat_interleave(repeats, dim=0), v_], dim=1)
        out = _attend(q_, k_, v_)
        if along_time:
            out = out.reshape(b * h, patches, frames, -1).transpose(1, 2)
        out = torch.cat([cls_out, out.reshape(b * h, frames * patches, -1)], dim=1)
        out = out.reshape(b, h, tokens, dim // h).transpose(1, 2).reshape(b, tokens, dim)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SpaceTimeBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = VarAttention(dim, num_heads)
        self.timeattn = VarAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm3 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, frames: int, patches: int) -> torch.Tensor:
        time_residual = x + self.timeattn(self.norm3(x), frames, patches, along_time=True)
        # 'frozen-in-time' style: the space branch's residual is the block input, not the time branch's output
        space_residual = x + self.attn(self.norm1(time_residual), frames, patches, along_time=False)
        return space_residual + self.mlp(self.norm2(space_residual))


class VideoPatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)


class SpaceTimeTransformer(nn.Module):
    """``(B, F, 3, S, S)`` -> the final LayerNorm's CLS token ``(B, embed_dim)``."""

    def __init__(self, config: EgoVLPConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.num_frames = config.num_frames
        self.patches_per_frame = (config.image_size // config.patch_size) ** 2
        self.patch_embed = VideoPatchEmbed(config.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patches_per_frame + 1, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, config.num_frames, dim))
        self.blocks = nn.ModuleList(SpaceTimeBlock(dim, config.num_heads, config.mlp_ratio)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, frames, channels, height, width = video.shape
        if frames > self.num_frames:
            raise ValueError(f"EgoVLP clip has {frames} frames; the model takes at most {self.num_frames}")
        x = self.patch_embed.proj(video.reshape(-1, channels, height, width))
        x = x.flatten(2).transpose(1, 2).reshape(b, -1, x.shape[1])
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        n = self.patches_per_frame
        tiled = (self.pos_embed[:, 1:].repeat(1, self.num_frames, 1)
                 + self.temporal_embed.repeat_interleave(n, dim=1))
        x = x + torch.cat([self.pos_embed[:, :1], tiled], dim=1)[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x, frames, n)
        return self.norm(x)[:, 0]


# --- FrozenInTime ----------------------------------------------------------------------------------------------


class FrozenInTime(nn.Module):
    """EgoVLP: video and text towers with 'minimal' projections into one embedding space."""

    def __init__(self, config: EgoVLPConfig) -> None:
        super().__init__()
        from transformers import DistilBertConfig, DistilBertModel

        self.config = config
        self.text_model = DistilBertModel(DistilBertConfig(**config.text))
        self.video_model = SpaceTimeTransformer(config)
        self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(config.text["dim"], config.projection_dim))
        self.vid_proj = nn.Sequential(nn.Linear(config.embed_dim, config.projection_dim))

    @torch.no_grad()
    def compute_video(self, video: torch.Tensor) -> torch.Tensor:
        return self.vid_proj(self.video_model(video))

    @torch.no_grad()
    def compute_text(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.txt_proj(self.text_model(**tokens).last_hidden_state[:, 0, :])

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, config: EgoVLPConfig | None = None) -> FrozenInTime:
        config = config or EgoVLPConfig()
        model = cls(config)
        state = fit_state_dict(read_state_dict(path), model.state_dict(), str(path))
        model.load_state_dict(state, strict=True)
        return model.eval().requires_grad_(False)


def sim_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarities of the rows of ``a`` and ``b``, norms clamped at ``eps`` (the official ``sim_matrix``)."""
    a = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a @ b.T


# --- reading checkpoints ---------------------------------------------------------------------------------------


class _InertObject:
    """Stands in for a training-time object in a checkpoint (EgoVLP's ConfigParser, paths, argparse namespaces):
    accepts whatever the pickle gives it and does nothing with it."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __call__(self, *args, **kwargs) -> _InertObject:
        return _InertObject()


def _inert_global(name: str):
    return type(name.rsplit(".", 1)[-1], (_InertObject,), {"__module__": name.rsplit(".", 1)[0]})


def safe_torch_load(path: str | os.PathLike):
    """``torch.load(weights_only=True)``; objects outside torch's allow-list are read as inert placeholders (listed in
    the log), so a checkpoint that carries its training config still yields its tensors without running any of it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        if not names:
            raise
        log.info("%s: reading %s as inert placeholders (training-time objects, not weights)", path, ", ".join(names))
        with torch.serialization.safe_globals([(_inert_global(name), name) for name in names]):
            return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an EgoVLP checkpoint (``{"state_dict": ...}`` or a bare state_dict; ``module.`` removed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EgoVLP checkpoint {path} not found; get it from {WHERE_TO_GET}")
    try:
        loaded = safe_torch_load(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise EgoVLPCheckpointError(f"{path}: not readable as a torch checkpoint with weights_only=True "
                                    f"({first_line})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(state, dict) or not state:
        raise EgoVLPCheckpointError(f"{path}: not a state_dict (a {type(loaded).__name__})")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise EgoVLPCheckpointError(f"{path}: state_dict entries that are not tensors: {not_tensors[:5]}")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def fit_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str
                   ) -> dict[str, torch.Tensor]:
    """Check a FrozenInTime state_dict against the model's and apply the official load-time fixes: the temporal
    embedding is cut (more frames) or zero-filled (fewer), as ``_inflate_positional_embeds`` with 'zeros'.
    DistilBERT's ``position_ids`` buffer, saved by older transformers, is dropped. Anything else is refused by name."""
    state = dict(state)
    ids = state.pop("text_model.embeddings.position_ids", None)
    if ids is not None and not torch.equal(ids.flatten(), torch.arange(ids.numel(), dtype=ids.dtype)):
        raise EgoVLPCheckpointError(f"{source}: text_model.embeddings.position_ids is not 0..{ids.numel() - 1}")
    expected = {k: v for k, v in expected.items() if k != "text_model.embeddings.position_ids"}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise EgoVLPCheckpointError(
            f"{source} is not an EgoVLP (FrozenInTime) checkpoint: {len(missing)} missing keys "
            f"{missing[:8]}{' ...' if len(missing) > 8 else ''}, {len(unexpected)} unexpected keys "
            f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    key = "video_model.temporal_embed"
    loaded, wanted = state[key], expected[key]
    if loaded.dim() == 3 and loaded.shape[0] == 1 and loaded.shape[2] == wanted.shape[2]:
        if loaded.shape[1] >= wanted.shape[1]:
            state[key] = loaded[:, : wanted.shape[1]]
        else:
            state[key] = torch.cat([loaded, loaded.new_zeros(1, wanted.shape[1] - loaded.shape[1], wanted.shape[2])],
                                   dim=1)
        if loaded.shape[1] != wanted.shape[1]:
            log.info("%s: temporal embedding %d -> %d frames (official 'zeros' fix)", source, loaded.shape[1],
                     wanted.shape[1])
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise EgoVLPCheckpointError(f"{source}: tensor shapes differ from the configured EgoVLP: {wrong[:8]}")
    return state


# --- the scores ------------------------------------------------------------------------------------------------


def resize_shorter_side(images: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision 0.12's ``Resize(size)`` on tensors: shorter side to ``size``, bilinear, no antialiasing."""
    height, width = images.shape[-2:]
    short, long = (height, width) if height <= width else (width, height)
    if short == size:
        return images
    new_long = int(size * long / short)
    new_hw = (size, new_long) if height <= width else (new_long, size)
    flat = images.reshape(-1, *images.shape[-3:])
    out = F.interpolate(flat, size=new_hw, mode="bilinear", align_corners=False, antialias=False)
    return out.reshape(*images.shape[:-2], *new_hw)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return images[..., top: top + size, left: left + size]


def clip_of(frame: torch.Tensor, num_frames: int, image_size: int, context: torch.Tensor | None = None
            ) -> torch.Tensor:
    """The official EgoVLP input of one [0, 1] frame ``(3, H, W)``: ``(1, F, 3, S, S)``, the frame repeated, or with
    ``context`` (the source frame) ``[context] * F/2 + [frame] * F/2``."""
    if context is not None and context.shape != frame.shape:
        # The official script does this for Epic-Kitchens (off-by-one widths) and crashes for Ego4D; the generated
        # frame is resized to the context frame's size (torchvision 0.12 tensor resize: bilinear, no antialias).
        frame = F.interpolate(frame[None], size=tuple(context.shape[-2:]), mode="bilinear", align_corners=False,
                              antialias=False)[0]
    frames = [frame] * num_frames if context is None else [context] * (num_frames // 2) + [frame] * (num_frames // 2)
    video = center_crop(resize_shorter_side(torch.stack(frames), image_size), image_size)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((video - mean) / std)[None]


def egovlp_similarity(model: FrozenInTime, generated: torch.Tensor, target: torch.Tensor,
                      context: torch.Tensor | None = None) -> float:
    """EgoVLP (``context=None``) or EgoVLP+ (``context`` = the source frame) score of one generated frame against
    its ground truth, both ``(3, H, W)`` in [0, 1] at their saved sizes."""
    config = model.config
    device = next(model.parameters()).device
    a = model.compute_video(clip_of(target, config.num_frames, config.image_size, context).to(device))
    b = model.compute_video(clip_of(generated, config.num_frames, config.image_size, context).to(device))
    return sim_matrix(a, b)[0, 0].item()


def text_similarity(model: FrozenInTime, tokenizer, text_a: str, text_b: str) -> float:
    """Cosine of EgoVLP text embeddings (the official ``compute_text_similarity`` of a BLIP caption and the action
    description); ``tokenizer`` is distilbert-base-uncased's, loaded from a local folder."""
    device = next(model.parameters()).device
    embeds = []
    for text in (text_a, text_b):
        tokens = tokenizer(text, return_tensors="pt", padding=True, truncation=True)
        tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        embeds.append(model.compute_text(tokens))
    return F.cosine_similarity(embeds[0], embeds[1]).item()


def load_tokenizer(folder: str | os.PathLike):
    """distilbert-base-uncased's tokenizer from a local folder (LEGO's metric_pretrained.zip has it; or
    ``huggingface-cli download distilbert-base-uncased --local-dir DIR`` on a machine with hub access)."""
    from transformers import AutoTokenizer

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"EgoVLP tokenizer folder {folder} not found; get distilbert-base-uncased from "
                                f"{WHERE_TO_GET}")
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
