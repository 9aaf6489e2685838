"""Frame images for every pipeline: decode, RGB, resize to a per-frame pixel budget, even frame count."""

from __future__ import annotations

import math

from PIL import Image


def fit_pixels(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Scale (width, height) by one factor so the area lies in [min_pixels, max_pixels] (aspect ratio kept)."""
    area = width * height
    scale = 1.0
    if area > max_pixels:
        scale = math.sqrt(max_pixels / area)
    elif area < min_pixels:
        scale = math.sqrt(min_pixels / area)
    return max(1, int(width * scale)), max(1, int(height * scale))


def load_frames(paths, min_pixels: int, max_pixels: int, even: bool = False) -> list[Image.Image]:
    """Load frames as RGB within the pixel budget; ``even`` repeats the last frame (Qwen's temporal patch of 2)."""
    frames = []
    for path in paths:
        with Image.open(path) as img:
            img = img.convert("RGB")
            size = fit_pixels(img.width, img.height, min_pixels, max_pixels)
            frames.append(img.resize(size, Image.Resampling.BICUBIC) if size != img.size else img.copy())
    if even and len(frames) % 2:
        frames.append(frames[-1])
    return frames
