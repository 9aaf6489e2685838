"""One clip, one way: which frames, at what size, with which timestamps, for every pipeline.

LLaMA-Factory SFT (the ``ego_frames`` template plugins), the verl / Ego3S rollouts, the ``egoforge_vl`` lmms-eval
model and EgoCross evaluation all turn a clip into Qwen-VL inputs through this module, so a model is trained,
rewarded and evaluated on the same frames, the same pixels and the same ``<t seconds>``:

- :func:`select_indices`: the one frame rule (qwen-vl-utils' ``smart_nframes``: ``fps`` sampling clamped to
  ``[min_frames, max_frames]``, even counts, evenly spaced, optionally inside a ``[start, end]`` window);
- :func:`frame_size` / :func:`resize_frame`: the one resize (LLaMA-Factory's per-frame pixel budget, step by step);
  the HF processor then snaps frames to its patch grid identically in every pipeline (the verl path hands it the
  frames as they are, not qwen-vl-utils' re-resized float tensor);
- :func:`load_clip`: a video file, a frame folder or a list of frames -> :class:`Clip` (frames, native-timeline
  indices, the timeline's rate), padded to Qwen's temporal patch of 2 by repeating the last frame and its index
  (what the Qwen processors and LLaMA-Factory do);
- :meth:`Clip.video_metadata`, :func:`qwen3_timestamps`, :func:`video_prompt`: the per-family metadata and the
  expanded ``<t seconds><|vision_start|><|video_pad|>...`` text the model reads.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_MODEL_TYPES = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "qwen3_vl": "qwen3_vl", "qwen3_vl_moe": "qwen3_vl"}
FRAMES_AS = ("video", "images")
TEMPORAL_PATCH = 2  # Qwen-VL packs frames in pairs
MERGE_SIZE = 2  # 2x2 patches make one visual token
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def patch_size_of(family: str) -> int:
    """Vision patch side in pixels: 16 for Qwen3-VL, 14 for Qwen2-VL / Qwen2.5-VL."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return 16 if family == "qwen3_vl" else 14


def family_of(model_type: str) -> str:
    """The family of a config's ``model_type`` (``qwen3_vl_moe`` is Qwen3-VL); anything else is an error."""
    try:
        return _MODEL_TYPES[model_type]
    except KeyError:
        raise ValueError(f"egoforge knows the frame grid of {', '.join(_MODEL_TYPES)}, not model_type "
                         f"{model_type!r}") from None


@dataclass(frozen=True)
class ClipSettings:
    """How a clip becomes model input; one object shared by SFT, RL and evaluation recipes.

    ``fps`` / ``min_frames`` / ``max_frames``: the sampling of video files and frame folders; ``frames_fps``: the rate
    of a frame folder or frame list (they carry no timing); ``min_pixels`` / ``max_pixels``: per video frame;
    ``image_*``: per single image. A clip's frames take the video budget also when ``frames_as="images"`` (the same
    pixels, only packed differently).
    """

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16
    min_pixels: int = 3136
    max_pixels: int = 128 * 28 * 28
    image_min_pixels: int = 3136
    image_max_pixels: int = 401408
    frames_fps: float = 2.0
    frames_as: str = "video"

    def __post_init__(self) -> None:
        if self.frames_as not in FRAMES_AS:
            raise ValueError(f"frames_as must be 'video' or 'images', not {self.frames_as!r}")
        if self.fps <= 0 or self.frames_fps <= 0:
            raise ValueError(f"fps and frames_fps must be positive (got {self.fps}, {self.frames_fps})")
        for kind, lo, hi in (("", self.min_pixels, self.max_pixels),
                             ("image_", self.image_min_pixels, self.image_max_pixels)):
            if lo > hi:  # LLaMA-Factory's fit would shrink into max then grow past it to min
                raise ValueError(f"{kind}min_pixels {lo} > {kind}max_pixels {hi}: the pixel budget is empty")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 1 <= min_frames <= max_frames (got {self.min_frames}, {self.max_frames})")


# -- which frames --------------------------------------------------------------------------------------------


def select_indices(n_total: int, native_fps: float, settings: ClipSettings, *, start: float | None = None,
                   end: float | None = None) -> list[int]:
    """Indices (on the native timeline) of the frames to keep from ``n_total`` frames recorded at ``native_fps``.

    qwen-vl-utils' ``smart_nframes``: ``duration * fps`` frames clamped to ``[min_frames, max_frames]`` (rounded to
    even bounds) and to the frames there are, floored to an even count, then spread evenly from the first to the
    last frame (rounding half to even, as ``torch.linspace(...).round()``). Only frames inside ``[start, end]``
    seconds count (a question asked mid-video sees the video up to that moment).
    """
    if n_total <= 0:
        return []
    if native_fps <= 0:
        raise ValueError(f"native_fps must be positive, got {native_fps}")
    first = 0 if start is None else max(0, math.ceil(start * native_fps - 1e-9))
    last = n_total - 1 if end is None else min(n_total - 1, math.floor(end * native_fps + 1e-9))
    if last < first:  # a window shorter than one frame: the frame nearest to its end
        return [min(n_total - 1, max(0, round((end if end is not None else 0.0) * native_fps)))]
    count = last - first + 1
    wanted = count / native_fps * settings.fps
    lo = TEMPORAL_PATCH * math.ceil(settings.min_frames / TEMPORAL_PATCH)
    hi = TEMPORAL_PATCH * math.floor(settings.max_frames / TEMPORAL_PATCH)
    n = min(max(wanted, lo), hi, count)
    n = max(1, TEMPORAL_PATCH * math.floor(n / TEMPORAL_PATCH)) if count >= TEMPORAL_PATCH else 1
    if n == 1:
        return [first]
    return [first + round(i * (last - first) / (n - 1)) for i in range(n)]


# -- what size -----------------------------------------------------------------------------------------------


def _scaled(width: int, height: int, pixels: int) -> tuple[int, int]:
    scale = math.sqrt(pixels / (width * height))
    return int(width * scale), int(height * scale)


def fit_steps(width: int, height: int, min_pixels: int, max_pixels: int) -> list[tuple[int, int]]:
    """The sizes LLaMA-Factory's ``Qwen2VLPlugin._preprocess_image`` resizes a frame to, in order (often none):
    down into ``max_pixels``, up to ``min_pixels`` (sides truncated), each side at least 28, aspect at most 200:1
    (cut to 180:1). Replaying every step, not only the last, gives LLaMA-Factory's pixels exactly."""
    steps = []
    if width * height > max_pixels:
        width, height = _scaled(width, height, max_pixels)
        steps.append((width, height))
    if width * height < min_pixels:
        width, height = _scaled(width, height, min_pixels)
        steps.append((width, height))
    if min(width, height) < 28:
        width, height = max(width, 28), max(height, 28)
        steps.append((width, height))
    if width / height > 200:
        width = height * 180
        steps.append((width, height))
    if height / width > 200:
        height = width * 180
        steps.append((width, height))
    return steps


def fit_area(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Final size of :func:`fit_steps` (the frame's size before the processor snaps it to its patch grid)."""
    steps = fit_steps(width, height, min_pixels, max_pixels)
    return steps[-1] if steps else (width, height)


def snap_to_grid(width: int, height: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen processors' per-frame ``smart_resize``: sides rounded to multiples of ``factor`` within the budget."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def _budget(settings: ClipSettings, kind: str) -> tuple[int, int]:
    if kind == "video":
        return settings.min_pixels, settings.max_pixels
    return settings.image_min_pixels, settings.image_max_pixels


def frame_size(width: int, height: int, settings: ClipSettings, kind: str = "video") -> tuple[int, int]:
    """(width, height) a frame is handed to the processor at: LLaMA-Factory's fit of the per-frame budget."""
    return fit_area(width, height, *_budget(settings, kind))


def resize_frame(frame: Image.Image, settings: ClipSettings, kind: str = "video") -> Image.Image:
    """``frame`` as RGB at :func:`frame_size`, by LLaMA-Factory's own steps (PIL bicubic). The processor then snaps
    it to its patch grid, the same way in every pipeline (so no pipeline resizes a second time on its own)."""
    for size in fit_steps(frame.width, frame.height, *_budget(settings, kind)):
        frame = frame.resize(size, Image.Resampling.BICUBIC)
    return frame.convert("RGB") if frame.mode != "RGB" else frame


# -- the clip ------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    """Frames in order (resized unless asked not to), their indices on a timeline of ``fps`` frames per second."""

    frames: list[Image.Image]
    indices: list[int]
    fps: float
    source: str = ""
    padded: int = field(default=0)  # frames repeated at the end to make the count even

    @property
    def seconds(self) -> list[float]:
        """Each frame's time on the clip's timeline."""
        return [i / self.fps for i in self.indices]

    def video_metadata(self) -> dict:
        """What transformers and vLLM read with ``do_sample_frames=False``: nothing is re-sampled."""
        total = max(self.indices) + 1
        return {"fps": self.fps, "frames_indices": list(self.indices), "total_num_frames": total,
                "duration": total / self.fps}

    def second_per_grid(self) -> float:
        """Qwen2.5-VL's seconds per temporal patch: two frames at the clip's sampling rate."""
        if len(self.indices) < 2:
            return TEMPORAL_PATCH / self.fps
        span = (self.indices[-1 - self.padded] - self.indices[0]) / self.fps
        steps = len(self.indices) - 1 - self.padded
        return TEMPORAL_PATCH * (span / steps if steps and span else 1 / self.fps)


def pad_even(frames: list, indices: list[int]) -> tuple[list, list[int], int]:
    """Repeat the last frame and its index up to an even count (the Qwen processors pad the same way)."""
    if len(frames) % TEMPORAL_PATCH == 0:
        return list(frames), list(indices), 0
    return [*frames, frames[-1]], [*indices, indices[-1]], 1


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder in name order; an empty folder is an error naming it."""
    files = sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
    if not files:
        raise FileNotFoundError(f"no frames ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def _open_rgb(item) -> Image.Image:
    """A frame as RGB: a PIL image, a path, raw bytes, or a datasets-style ``{"bytes", "path"}`` dict."""
    if isinstance(item, Image.Image):
        return item.convert("RGB") if item.mode != "RGB" else item
    if isinstance(item, dict):
        item = item.get("bytes") or item.get("path")
    if isinstance(item, (bytes, bytearray)):
        item = io.BytesIO(item)
    with Image.open(item) as img:
        return img.convert("RGB")


def load_clip(source, settings: ClipSettings, *, sample: bool = True, resize: bool = True,
              native_fps: float | None = None, start: float | None = None, end: float | None = None) -> Clip:
    """A clip as model-ready frames: ``source`` is a video file, a frame folder, or a list of frames (paths/images).

    Video files are decoded with PyAV (``egoforge.data.video``) on their own timeline; folders and lists count at
    ``native_fps`` (default ``settings.frames_fps``). ``sample=False`` keeps every given frame (a pre-sampled list,
    e.g. EgoCross's testbed frames or an SFT sample's ``<image>`` run). Odd counts are padded (:func:`pad_even`).
    """
    from egoforge.data.video import decode_indices, video_info  # PyAV only for video files

    name = str(source) if isinstance(source, (str, os.PathLike)) else "<frames>"
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        source = list_frame_files(source)
    if isinstance(source, (str, os.PathLike)):
        info = video_info(source)
        timeline = info.fps or settings.fps  # an unstated rate counts at the sampling rate
        n_total = info.frames or decode_indices(source, keep=set())[1]  # no stated count: count by decoding
        keep = (select_indices(n_total, timeline, settings, start=start, end=end) if sample
                else list(range(n_total)))
        decoded, _ = decode_indices(source, set(keep))
        if not decoded:
            raise ValueError(f"video has no decodable frames: {source}")
        # Containers can over-report their frame count: fall back to the last frame that really exists.
        keep = [i if i in decoded else max(decoded) for i in keep]
        items = decoded
    else:
        items, timeline = list(source), float(native_fps or settings.frames_fps)
        if not items:
            raise ValueError("a clip needs at least one frame")
        keep = (select_indices(len(items), timeline, settings, start=start, end=end) if sample
                else list(range(len(items))))
    frames = [_open_rgb(items[i]) for i in keep]
    if settings.frames_as == "video":
        frames, keep, padded = pad_even(frames, keep)
    else:
        padded = 0
    if resize:
        frames = [resize_frame(f, settings, "video") for f in frames]
    return Clip(frames, keep, timeline, name, padded)


# -- the timestamps and the prompt ---------------------------------------------------------------------------


def qwen3_timestamps(indices: Sequence[int], fps: float) -> list[float]:
    """Qwen3-VL's ``<t seconds>`` per temporal patch: the mean time of the patch's first and last frame."""
    padded = list(indices) + [indices[-1]] * (-len(indices) % TEMPORAL_PATCH)
    times = [i / fps for i in padded]
    return [(times[k] + times[k + TEMPORAL_PATCH - 1]) / 2 for k in range(0, len(times), TEMPORAL_PATCH)]


def grid_thw(clip: Clip, family: str, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
    """(temporal patches, height patches, width patches) the processor makes of a resized clip, when its own
    per-frame budget is ``[min_pixels, max_pixels]`` (Qwen3-VL budgets the whole clip; give it per frame here)."""
    patch = patch_size_of(family)
    width, height = snap_to_grid(*clip.frames[0].size, patch * MERGE_SIZE, min_pixels, max_pixels)
    return math.ceil(len(clip.frames) / TEMPORAL_PATCH), height // patch, width // patch


def video_prompt(clip: Clip, family: str, min_pixels: int, max_pixels: int) -> str:
    """The expanded text of one video placeholder, as the family's processor writes it."""
    t, h, w = grid_thw(clip, family, min_pixels, max_pixels)
    per_patch = h * w // (MERGE_SIZE * MERGE_SIZE)
    if family == "qwen3_vl":
        return "".join(f"<{s:.1f} seconds><|vision_start|>{'<|video_pad|>' * per_patch}<|vision_end|>"
                       for s in qwen3_timestamps(clip.indices, clip.fps))
    patch_size_of(family)
    return f"<|vision_start|>{'<|video_pad|>' * (per_patch * t)}<|vision_end|>"
