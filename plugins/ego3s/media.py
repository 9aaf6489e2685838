"""The paper's frame budget and clip loading: 2 fps, 4-16 frames, 128*28*28 pixels per frame.

Clips are mp4 (or any container PyAV reads), folders of frames, or single images. Decoding goes through
``egoforge.data.video`` (PyAV), which works wherever FFmpeg's libraries ship inside the wheel; qwen-vl-utils' own
video readers (torchvision.io, torchcodec) are missing or unusable in many environments, including this one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.frames import fit_pixels  # floor: a frame never exceeds max_pixels
from egoforge.data.video import decode_all

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
FRAME_FACTOR = 2  # Qwen-VL's temporal patch: frame counts are kept even


@dataclass(frozen=True)
class FrameBudget:
    """Vision preprocessing of the Ego3S code (qwen-vl-utils constants and the training script's pixel caps)."""

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16
    max_pixels: int = 128 * 28 * 28  # per video frame
    min_pixels: int = 3136
    image_max_pixels: int = 401408
    image_min_pixels: int = 3136
    frames_fps: float = 2.0  # sampling rate assumed for folders of frames (they carry no timing)

    def video_fields(self) -> dict:
        """qwen-vl-utils keys for a video file entry (the reader samples at ``fps`` within the frame bounds)."""
        return {"fps": self.fps, "min_frames": self.min_frames, "max_frames": self.max_frames,
                "max_pixels": self.max_pixels, "min_pixels": self.min_pixels}


def sample_indices(total_frames: int, source_fps: float, budget: FrameBudget) -> list[int]:
    """Indices of the frames to keep: ``budget.fps`` sampling, clamped to [min_frames, max_frames] and to the clip.

    Same arithmetic as qwen-vl-utils' ``smart_nframes`` (even counts), then evenly spaced indices.
    """
    if total_frames <= 0:
        return []
    duration = total_frames / source_fps if source_fps > 0 else total_frames / budget.fps
    wanted = duration * budget.fps
    lo = FRAME_FACTOR * math.ceil(budget.min_frames / FRAME_FACTOR)
    hi = FRAME_FACTOR * math.floor(budget.max_frames / FRAME_FACTOR)
    n = min(max(wanted, lo), hi, total_frames)
    n = max(1, FRAME_FACTOR * math.floor(n / FRAME_FACTOR)) if total_frames >= FRAME_FACTOR else 1
    if n == 1:
        return [0]
    return [round(i * (total_frames - 1) / (n - 1)) for i in range(n)]


def _resize(img: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
    size = fit_pixels(img.width, img.height, min_pixels, max_pixels)
    return img.resize(size, Image.Resampling.BICUBIC) if size != img.size else img


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder, in natural order of their names."""
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)


def decode_video(path: str | os.PathLike, budget: FrameBudget) -> tuple[list[Image.Image], float]:
    """Decode and sample a video file; returns (frames as RGB, sampling fps of the kept frames)."""
    frames, source_fps = decode_all(path)
    source_fps = source_fps or budget.fps  # a stream without a stated rate counts at the budget's rate
    if not frames:
        raise ValueError(f"video has no frames: {path}")
    keep = sample_indices(len(frames), source_fps, budget)
    sample_fps = len(keep) / (len(frames) / source_fps)
    return [frames[i].convert("RGB") for i in keep], sample_fps


def load_clip(path: str | os.PathLike, budget: FrameBudget = FrameBudget(), resize: bool = True,
              ) -> tuple[list[Image.Image], float]:
    """Frames of a clip (video file, frame folder or single image) within the budget, and their sampling fps."""
    path = Path(path)
    if path.is_dir():
        files = list_frames(path)
        if not files:
            raise ValueError(f"frame folder has no images: {path}")
        keep = sample_indices(len(files), budget.frames_fps, budget)
        frames = []
        for i in keep:
            with Image.open(files[i]) as img:
                frames.append(img.convert("RGB"))
        sample_fps = len(keep) / (len(files) / budget.frames_fps)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        with Image.open(path) as img:
            frame = img.convert("RGB")
        image = _resize(frame, budget.image_min_pixels, budget.image_max_pixels) if resize else frame
        return [image], budget.fps
    else:
        frames, sample_fps = decode_video(path, budget)
    if resize:
        frames = [_resize(f, budget.min_pixels, budget.max_pixels) for f in frames]
    return frames, sample_fps


def mask_region(frames: list[Image.Image], boxes: list[list[float]] | list[float],
                fill: tuple[int, int, int] = (128, 128, 128)) -> list[Image.Image]:
    """Frames with the interaction region painted over (the CSM "masked" condition).

    ``boxes`` is one relative [x0, y0, x1, y1] box for every frame, or one box per frame.
    """
    from PIL import ImageDraw

    per_frame = boxes if boxes and isinstance(boxes[0], (list, tuple)) else [boxes] * len(frames)
    if len(per_frame) != len(frames):
        # Boxes annotated on the source clip: spread them over the sampled frames.
        per_frame = [per_frame[round(i * (len(per_frame) - 1) / max(1, len(frames) - 1))] for i in range(len(frames))]
    out = []
    for frame, (x0, y0, x1, y1) in zip(frames, per_frame):
        frame = frame.copy()
        w, h = frame.size
        ImageDraw.Draw(frame).rectangle([x0 * w, y0 * h, x1 * w, y1 * h], fill=fill)
        out.append(frame)
    return out
