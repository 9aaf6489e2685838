"""The paper's frame budget and clip loading: 2 fps, 4-16 frames, 128*28*28 pixels per frame.

Clips are mp4 (or any container PyAV reads), folders of frames, or single images. Decoding goes through
``egoforge.data.video`` (PyAV), which works wherever FFmpeg's libraries ship inside the wheel; qwen-vl-utils' own
video readers (torchvision.io, torchcodec) are missing or unusable in many environments, including this one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data import clip as one_clip
from egoforge.data.clip import IMAGE_SUFFIXES, ClipSettings, list_frame_files

FRAME_FACTOR = one_clip.TEMPORAL_PATCH  # Qwen-VL's temporal patch: frame counts are kept even


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

    def clip_settings(self) -> ClipSettings:
        """The same budget as :class:`egoforge.data.clip.ClipSettings` (the one sampler every pipeline uses)."""
        return ClipSettings(fps=self.fps, min_frames=self.min_frames, max_frames=self.max_frames,
                            min_pixels=self.min_pixels, max_pixels=self.max_pixels,
                            image_min_pixels=self.image_min_pixels, image_max_pixels=self.image_max_pixels,
                            frames_fps=self.frames_fps)


def sample_indices(total_frames: int, source_fps: float, budget: FrameBudget) -> list[int]:
    """Indices of the frames to keep: :func:`egoforge.data.clip.select_indices` (qwen-vl-utils' ``smart_nframes``);
    a stream without a stated rate counts at the budget's rate."""
    return one_clip.select_indices(total_frames, source_fps if source_fps > 0 else budget.fps, budget.clip_settings())


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder, in natural order of their names."""
    return list_frame_files(folder)


def sampling_fps(clip: one_clip.Clip) -> float:
    """Frames per second of the kept frames (their count over the span of the clip they cover)."""
    real = len(clip.indices) - clip.padded
    return real / ((max(clip.indices) + 1) / clip.fps) if clip.indices else clip.fps


def load_one_clip(path: str | os.PathLike, budget: FrameBudget = FrameBudget(), resize: bool = True,
                  ) -> one_clip.Clip:
    """A video file or frame folder as a :class:`egoforge.data.clip.Clip` under the budget."""
    return one_clip.load_clip(path, budget.clip_settings(), resize=resize)


def load_clip(path: str | os.PathLike, budget: FrameBudget = FrameBudget(), resize: bool = True,
              ) -> tuple[list[Image.Image], float]:
    """Frames of a clip (video file, frame folder or single image) within the budget, and their sampling fps."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES and not path.is_dir():
        with Image.open(path) as img:
            frame = img.convert("RGB")
        settings = budget.clip_settings()
        return [one_clip.resize_frame(frame, settings, "image") if resize else frame], budget.fps
    clip = load_one_clip(path, budget, resize)
    return clip.frames, sampling_fps(clip)


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
