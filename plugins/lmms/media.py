"""Frames for lmms-eval docs: sample a video file or a frame folder, and mark frames as one clip.

lmms-eval hands a model whatever a task's ``doc_to_visual`` returns. egoforge's tasks return plain RGB PIL frames,
so any lmms-eval model can read them as images, and tag every frame (in PIL's ``info`` dict) with its clip, the
rate of the timeline its index counts on, and that index. egoforge's ``egoforge_vl`` model reads the tags back and
feeds the frames to Qwen-VL as one video with their true timestamps. Videos are decoded by ``egoforge.data.video``
(PyAV, which ships its own FFmpeg: no decord, no system FFmpeg, no torchcodec).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.video import decode_indices, decode_indices_seeking, video_info

CLIP_INFO_KEY = "egoforge_clip"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SEEK_RATIO = 8  # seek instead of decoding sequentially when fewer than 1 in 8 frames up to the last are wanted


@dataclass(frozen=True)
class ClipMark:
    """Where a frame sits: clip ``clip``, index ``index`` on a timeline of ``fps`` frames per second."""

    clip: str
    fps: float
    index: int
    max_pixels: int | None = None  # the benchmark protocol's per-frame pixel cap, if it has one

    @property
    def seconds(self) -> float:
        return self.index / self.fps


def mark_frames(frames: list[Image.Image], clip: str, fps: float, indices: list[int],
                max_pixels: int | None = None) -> list[Image.Image]:
    """Tag ``frames`` (in place) as clip ``clip``; returns them for chaining."""
    if len(frames) != len(indices):
        raise ValueError(f"{len(frames)} frames but {len(indices)} indices")
    for frame, index in zip(frames, indices):
        frame.info[CLIP_INFO_KEY] = ClipMark(clip, float(fps), int(index), max_pixels)
    return frames


def read_mark(visual: object) -> ClipMark | None:
    """The clip tag of a frame, or None for anything else (untagged images, paths, audio)."""
    info = getattr(visual, "info", None)
    mark = info.get(CLIP_INFO_KEY) if isinstance(info, dict) else None
    return mark if isinstance(mark, ClipMark) else None


def select_indices(
    n_total: int,
    native_fps: float,
    *,
    sample_fps: float | None = None,
    max_frames: int | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[int]:
    """Frame indices to keep from ``n_total`` frames recorded at ``native_fps``.

    Only frames whose time lies in ``[start, end]`` seconds count (a real-time question sees the video up to the
    moment it is asked); among them, at most ``sample_fps`` frames per second and at most ``max_frames`` in all,
    spread evenly and always including the first and the last of the window.
    """
    if n_total <= 0:
        return []
    if native_fps <= 0:
        raise ValueError(f"native_fps must be positive, got {native_fps}")
    first = 0 if start is None else max(0, math.ceil(start * native_fps - 1e-9))
    last = n_total - 1 if end is None else min(n_total - 1, math.floor(end * native_fps + 1e-9))
    if last < first:  # a window shorter than one frame: the frame nearest to its end
        nearest = min(n_total - 1, max(0, round((end if end is not None else 0.0) * native_fps)))
        return [nearest]
    count = last - first + 1
    wanted = count
    if sample_fps:
        wanted = min(wanted, max(1, math.floor((count - 1) / native_fps * sample_fps) + 1))
    if max_frames:
        wanted = min(wanted, max_frames)
    if wanted == 1:
        return [last]
    step = (last - first) / (wanted - 1)
    return sorted({first + round(i * step) for i in range(wanted)})


def _open_rgb(path: str | os.PathLike) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def load_frame_files(paths: list[str | os.PathLike], clip: str, fps: float, indices: list[int] | None = None,
                     max_pixels: int | None = None) -> list[Image.Image]:
    """Open frame files as RGB and tag them as one clip (``indices`` default to 0..n-1)."""
    frames = [_open_rgb(p) for p in paths]
    return mark_frames(frames, clip, fps, list(range(len(frames))) if indices is None else indices, max_pixels)


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder in name order (``frame_00001.jpg``, ``frame_00002.jpg``, ...)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no frames ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def sample_frame_folder(folder: str | os.PathLike, native_fps: float, *, clip: str, sample_fps: float | None = None,
                        max_frames: int | None = None, start: float | None = None, end: float | None = None,
                        max_pixels: int | None = None) -> list[Image.Image]:
    """Sample a folder of frames extracted at ``native_fps`` (the i-th file, from 0, is at ``i / native_fps`` s)."""
    files = list_frame_files(folder)
    keep = select_indices(len(files), native_fps, sample_fps=sample_fps, max_frames=max_frames, start=start, end=end)
    return load_frame_files([files[i] for i in keep], clip, native_fps, keep, max_pixels)


def sample_video(path: str | os.PathLike, *, clip: str, sample_fps: float | None = None,
                 max_frames: int | None = None, start: float | None = None, end: float | None = None,
                 max_pixels: int | None = None) -> list[Image.Image]:
    """Decode a video and keep frames as :func:`select_indices` chooses; frames carry native-timeline indices.

    Sparse picks from a long video seek to each frame's keyframe instead of decoding everything in between.
    """
    info = video_info(path)
    n_total, fps = info.frames, info.fps or 30.0
    if n_total <= 0:  # no frame count in the container: count by decoding (timestamps only, frames dropped)
        _, n_total = decode_indices(path, keep=set())
    keep = select_indices(n_total, fps, sample_fps=sample_fps, max_frames=max_frames, start=start, end=end)
    sparse = bool(keep) and len(keep) * SEEK_RATIO < keep[-1] + 1
    decoded = decode_indices_seeking(path, keep, fps) if sparse else None
    if decoded is None:
        decoded, _ = decode_indices(path, set(keep))
    if not decoded:
        raise ValueError(f"{path}: no decodable video frames")
    # Containers can over-report their frame count; fall back to the last frame that really exists.
    indices = [i if i in decoded else max(decoded) for i in keep]
    frames = [decoded[i].copy() for i in indices]
    return mark_frames(frames, clip, fps, indices, max_pixels)


def is_video_path(value: object) -> bool:
    return isinstance(value, str) and value.lower().endswith(VIDEO_SUFFIXES)


def is_image_path(value: object) -> bool:
    return isinstance(value, str) and value.lower().endswith(IMAGE_SUFFIXES)
