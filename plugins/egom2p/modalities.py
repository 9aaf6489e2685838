"""EgoM2P's four modalities as data: one declarative table that every other module reads.

Each entry says how a 2 s clip of the modality looks on disk (``clip_shape``, rate, file), which tokenizer turns it
into tokens, the vocabulary and token grid those tokens live in, and how the model positions them. The defaults are
the EgoM2P paper's (docs/egom2p.md, "The modality table"): video at 8 fps x 16 frames, 256 px centre crop, Cosmos
DV4x8x8 tokens on a 5x32x32 grid with a 64,000 vocabulary; gaze and camera at 30 fps x 60 samples, 30 tokens from
a 256-code VQ. A recipe may override fields per modality (for example a smaller video tokenizer's grid) with
:func:`modality_table`; the shard writer records the grid and vocabulary it produced so the trainer can refuse a
mismatch instead of training on garbage.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

CLIP_SECONDS = 2.0


@dataclass(frozen=True)
class Modality:
    name: str
    id: int  # position in the model's modality order (modality masks, embeddings)
    kind: str  # "video" (frames) or "trajectory" (per-sample vectors)
    fps: float  # sampling rate inside a clip
    frames: int  # samples per clip (fps * CLIP_SECONDS)
    clip_shape: tuple[int, ...]  # array stored per clip by `egoforge egom2p prepare`
    clip_file: str  # file name inside a clip folder
    tokenizer: str  # default tokenizer family (see egoforge.egom2p.tokenizers)
    vocab_size: int
    token_grid: tuple[int, ...]  # (t, h, w) for video, (n,) for trajectories
    positions: str  # "sincos_3d" or "sincos_1d"
    description: str = ""

    @property
    def num_tokens(self) -> int:
        return math.prod(self.token_grid)

    @property
    def image_size(self) -> int | None:
        return self.clip_shape[1] if self.kind == "video" else None


MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        Modality(
            name="rgb", id=0, kind="video", fps=8.0, frames=16, clip_shape=(16, 256, 256, 3), clip_file="rgb.npy",
            tokenizer="cosmos_dv4x8x8", vocab_size=64000, token_grid=(5, 32, 32), positions="sincos_3d",
            description="RGB video, ffmpeg-style fps=8 resampling, centre square crop, 256 px lanczos (uint8)",
        ),
        Modality(
            name="depth", id=1, kind="video", fps=8.0, frames=16, clip_shape=(16, 256, 256), clip_file="depth.npy",
            tokenizer="cosmos_dv4x8x8", vocab_size=64000, token_grid=(5, 32, 32), positions="sincos_3d",
            description="depth video, per-clip min-max normalised to [0, 1], tokenized as a grey 3-channel video",
        ),
        Modality(
            name="gaze", id=2, kind="trajectory", fps=30.0, frames=60, clip_shape=(60, 3), clip_file="gaze.npy",
            tokenizer="egom2p_gaze_vq", vocab_size=256, token_grid=(30,), positions="sincos_1d",
            description="2-D gaze in the crop's [0, 1] coordinates plus a validity column (x, y, valid)",
        ),
        Modality(
            name="cam", id=3, kind="trajectory", fps=30.0, frames=60, clip_shape=(60, 4, 4), clip_file="cam.npy",
            tokenizer="egom2p_cam_vq", vocab_size=256, token_grid=(30,), positions="sincos_1d",
            description="camera-to-world poses (OpenCV convention), canonicalised to the first frame when tokenized",
        ),
    )
}

MODALITY_NAMES = tuple(MODALITIES)
_OVERRIDABLE = {"tokenizer", "vocab_size", "token_grid", "clip_shape"}


def modality_table(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Modality]:
    """The table with per-modality field overrides, e.g. ``{"rgb": {"token_grid": [5, 4, 4], "vocab_size": 1000}}``.

    Only the tokenizer-dependent fields can change; rates and clip length are the method's and stay fixed.
    """
    table = dict(MODALITIES)
    for name, fields in (overrides or {}).items():
        if name not in table:
            raise ValueError(f"modalities.{name}: unknown modality; known: {list(MODALITIES)}")
        if not isinstance(fields, dict):
            raise ValueError(f"modalities.{name}: expected a mapping of fields, got {fields!r}")
        unknown = sorted(set(fields) - _OVERRIDABLE)
        if unknown:
            raise ValueError(f"modalities.{name}: cannot override {unknown}; overridable: {sorted(_OVERRIDABLE)}")
        clean = {k: tuple(v) if k in ("token_grid", "clip_shape") else v for k, v in fields.items()}
        modality = dataclasses.replace(table[name], **clean)
        _check(modality)
        table[name] = modality
    return table


def _check(m: Modality) -> None:
    want = 3 if m.kind == "video" else 1
    if len(m.token_grid) != want or any(int(n) <= 0 for n in m.token_grid):
        raise ValueError(f"modalities.{m.name}.token_grid: expected {want} positive sizes, got {m.token_grid}")
    if int(m.vocab_size) < 2:
        raise ValueError(f"modalities.{m.name}.vocab_size: expected >= 2, got {m.vocab_size}")


def video_grid(frames: int, size: int, temporal: int = 4, spatial: int = 8) -> tuple[int, int, int]:
    """Token grid of a causal video tokenizer: the first frame alone, then one latent per ``temporal`` frames.

    Cosmos pads 16 frames to 17 (``1 + 4k``), so 16x256x256 gives (5, 32, 32).
    """
    padded = 1 + math.ceil((frames - 1) / temporal) * temporal
    return (1 + (padded - 1) // temporal, size // spatial, size // spatial)


def describe() -> str:
    """The table as Markdown (docs, ``egoforge egom2p modalities``)."""
    rows = ["| modality | clip (per 2 s) | rate | tokenizer | vocabulary | tokens | positions |",
            "|---|---|---|---|---|---|---|"]
    for m in MODALITIES.values():
        shape = "x".join(str(s) for s in m.clip_shape)
        grid = "x".join(str(s) for s in m.token_grid)
        rows.append(f"| {m.name} | {shape} | {m.fps:g} fps x {m.frames} | {m.tokenizer} | {m.vocab_size} | "
                    f"{grid} = {m.num_tokens} | {m.positions} |")
    return "\n".join(rows)
