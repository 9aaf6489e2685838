"""Action-frame generation: Euler-ancestral sampling with dual classifier-free guidance.

The paper samples with k-diffusion's ``sample_euler_ancestral`` for 100 steps, seed 0, text scale 7.5 and image
scale 1.5 (``metrics/inference.py``). Here diffusers' ``EulerAncestralDiscreteScheduler`` on the training schedule
takes the steps (``timestep_spacing="linspace"``, the same t_max..0 grid; k-diffusion interpolates log-sigma
between grid points and diffusers sigma, a negligible difference). Every step evaluates the UNet on three
conditionings at once: (source image, text + VLLM), (source image, null text, VLLM zeroed) and (zero source
latent, null text, VLLM zeroed), combined by :func:`~egoforge.lego.guidance.dual_guidance`.

:func:`generate_index` runs it over an LDM index and writes ``images/<clip>/<action>/<target frame name>`` like the
official inference (so the metric folder layouts match), resuming past images that already exist.

How a generated frame is saved decides the metrics, so two protocols are offered:

* ``official`` (default), as ``metrics/inference.py``: the decoded image (not clamped) is resized bicubically to
  the clip's native aspect, ``(resolution, round(W / H * resolution))`` with the clip's height and width from the
  download's ``<dataset>_metadata.json``, stretched to [0, 255] by its own minimum and maximum, truncated to 8 bits
  and saved at PIL's default JPEG quality (75). A constant image (the official code divides by zero there) is
  saved black.
* ``egoforge``: the image clamped to [0, 1], rounded to 8 bits and saved square at the sampling resolution, JPEG
  quality 95.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from egoforge.lego.conditioning import fit_image_tokens, fit_tokens
from egoforge.lego.dataset import load_frame, mix_seed
from egoforge.lego.guidance import dual_guidance

PROTOCOLS = ("official", "egoforge")


@dataclass
class SamplingSettings:
    steps: int = 100
    text_scale: float = 7.5
    image_scale: float = 1.5
    seed: int = 0
    batch_size: int = 4
    protocol: str = "official"  # how frames are saved (see the module docstring): official | egoforge

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r}: choose one of {PROTOCOLS}")


def load_clip_sizes(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """``<dataset>_metadata.json`` of the LEGO download -> {clip id: (height, width)} of the source videos."""
    from egoforge.data.jsonio import DataFormatError, read_json

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None, "expected an object of clips")
    sizes = {}
    for clip, meta in data.items():
        values = [meta.get(k) if isinstance(meta, dict) else None for k in ("height", "width")]
        for key, value in zip(("height", "width"), values):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise DataFormatError(path, None, f"{clip}.{key}", "missing or not a positive number")
        sizes[clip] = (int(values[0]), int(values[1]))
    return sizes


def default_metadata_path(media_root: str | os.PathLike, dataset: str) -> Path:
    """Where the download keeps the metadata: ``<root>/<dataset>_metadata.json`` beside ``<root>/EgoGen``."""
    return Path(media_root).resolve().parent / f"{dataset}_metadata.json"


def official_frame(decoded: torch.Tensor, height: int, width: int, resolution: int):
    """One generated frame as the official inference saves it (uint8 ``(h, w, 3)`` numpy array): bicubic resize of
    the unclamped decoded image to ``(resolution, round(width / height * resolution))``, then a min-max stretch to
    [0, 255] truncated to integers."""
    import torch.nn.functional as F

    size = (resolution, round(width / height * resolution))
    image = F.interpolate(decoded[None].float(), size=size, mode="bicubic", align_corners=False)[0]
    low, high = image.min(), image.max()
    scaled = (image - low) / (high - low) * 255 if high > low else torch.zeros_like(image)
    return scaled.permute(1, 2, 0).cpu().numpy().astype("uint8")


def egoforge_frame(image: torch.Tensor):
    """A [0, 1] frame as egoforge saved it before the official protocol: rounded to uint8 ``(h, w, 3)``."""
    return (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype("uint8")


def euler_ancestral(num_train_timesteps: int, beta_start: float, beta_end: float):
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(num_train_timesteps=num_train_timesteps, beta_start=beta_start,
                                           beta_end=beta_end, beta_schedule="scaled_linear",
                                           prediction_type="epsilon", timestep_spacing="linspace")


@torch.no_grad()
def generate(model, source: torch.Tensor, prompts: list[str], image_features: torch.Tensor | None = None,
             text_features: torch.Tensor | None = None, settings: SamplingSettings | None = None,
             generator: torch.Generator | None = None, clamp: bool = True) -> torch.Tensor:
    """Target frames in [0, 1], shaped like ``source`` (``(batch, 3, H, W)`` in [-1, 1]); ``clamp=False`` returns
    the VAE's decoded images as they come (about [-1, 1], not clamped), what the official inference saves from."""
    settings = settings or SamplingSettings()
    device = model.device
    cfg = model.cfg
    scheduler = euler_ancestral(cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)
    scheduler.set_timesteps(settings.steps, device=device)
    n = source.shape[0]
    source_latents = model.encode_source(source.to(device)).float()
    text = model.encode_text(prompts).float()
    null = model.null_text(n).float()
    if model.conditioner is not None:
        image_features, text_features = image_features.to(device), text_features.to(device)
        features = (torch.cat([image_features] * 3), torch.cat([text_features] * 3))
        keep = torch.tensor([True] * n + [False] * 2 * n, device=device)
    else:
        features, keep = (None, None), None
    # Branches: (image, text+VLLM), (image, nothing), (nothing, nothing).
    context = model.context(torch.cat([text, null, null]), *features, keep).to(model.unet.dtype)
    image_condition = torch.cat([source_latents, source_latents, torch.zeros_like(source_latents)])
    generator = generator or torch.Generator().manual_seed(settings.seed)
    latents = torch.randn(source_latents.shape, generator=generator).to(device) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents] * 3), t)
        unet_in = torch.cat([model_in, image_condition], dim=1).to(model.unet.dtype)
        eps = model.unet(unet_in, t, encoder_hidden_states=context).sample.float()
        eps_text_image, eps_image, eps_none = eps.chunk(3)
        guided = dual_guidance(eps_text_image, eps_image, eps_none, settings.text_scale, settings.image_scale)
        latents = scheduler.step(guided, t, latents, generator=generator).prev_sample
    return model.decode(latents) if clamp else model.decode_raw(latents)


def generate_index(model, rows: list[dict], media_root: str | os.PathLike, out_dir: str | os.PathLike,
                   features=None, resolution: int = 256, settings: SamplingSettings | None = None,
                   prompt: str = "prompt", progress: Callable[[Iterable], Iterable] | None = None,
                   clip_sizes: dict[str, tuple[int, int]] | None = None) -> dict:
    """Generate the target frame of every row into ``out_dir/images``; existing images are kept (resume).

    The official protocol (``settings.protocol``) needs ``clip_sizes`` (:func:`load_clip_sizes`) for every row's
    clip; a missing clip is an error before anything is generated.
    """
    from PIL import Image

    from egoforge.data.atomic import atomic_write_bytes
    from egoforge.data.paths import resolve_under
    from egoforge.lego.config import LegoSetupError

    settings = settings or SamplingSettings()
    out_dir = Path(out_dir)
    todo = [r for r in rows if not (out_dir / output_name(r)).exists()]
    official = settings.protocol == "official"
    if official:
        if clip_sizes is None:
            raise LegoSetupError("the official protocol resizes each frame to its clip's native aspect: it needs "
                                 "the download's <dataset>_metadata.json (--metadata), or choose --protocol egoforge")
        unknown = sorted({str(r.get("clip_id")) for r in todo} - set(clip_sizes))
        if unknown:
            raise LegoSetupError(f"no height/width in the metadata for {len(unknown)} clips (first: {unknown[0]!r})")
    batches = [todo[i:i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
    for batch in (progress or (lambda x: x))(batches):
        source = torch.stack([load_frame(resolve_under(media_root, r["source"]), resolution) for r in batch])
        prompts = [features.description(r["feature_key"]) if prompt == "description" else r[prompt] for r in batch]
        image_features = text_features = None
        if model.conditioner is not None:
            pairs = [features.get(r["feature_key"]) for r in batch]
            image_features = torch.stack([fit_image_tokens(i, model.cfg.image_tokens, r["feature_key"])
                                          for r, (i, _) in zip(batch, pairs)])
            text_features = torch.stack([fit_tokens(t, model.cfg.text_tokens) for _, t in pairs])
        # One generator per batch from (seed, first id): a resumed run regenerates identical images.
        generator = torch.Generator().manual_seed(mix_seed(settings.seed, batch[0]["id"]))
        images = generate(model, source, prompts, image_features, text_features, settings, generator,
                          clamp=not official)
        for row, image in zip(batch, images):
            buf = io.BytesIO()
            kind = "PNG" if output_name(row).lower().endswith(".png") else "JPEG"
            if official:  # PIL's default JPEG quality, as the official im.save(path)
                Image.fromarray(official_frame(image, *clip_sizes[str(row.get("clip_id"))], resolution)).save(
                    buf, format=kind)
            else:
                Image.fromarray(egoforge_frame(image)).save(buf, format=kind, quality=95)
            atomic_write_bytes(out_dir / output_name(row), buf.getvalue())
    return {"rows": len(rows), "generated": len(todo), "skipped": len(rows) - len(todo)}


def output_name(row: dict) -> str:
    """``images/<clip>/<action>/<target frame file name>`` (the official inference layout)."""
    return f"images/{row.get('clip_id', 'clip')}/{row.get('action_id', row['id'])}/{Path(row['target']).name}"
