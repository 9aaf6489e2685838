"""Pre-resize a dataset's frames to a recipe's pixel budget, into a separate cache folder.

LLaMA-Factory resizes every image to ``image_max_pixels`` / ``image_min_pixels`` each time a sample is processed.
Doing it once ahead of time, with the same arithmetic, makes that step a no-op at training time. The cache
mirrors the relative paths of the data root, so the unchanged dataset json works with ``media_dir: <cache>``.
Source files are only read; every cache file is written atomically, and files already prepared for the same
budget are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.data.paths import MediaRoot, UnsafePathError, resolve_under
from egoforge.data.validate import load_rows

MANIFEST = "egoforge_prepare.json"


def budget_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size LLaMA-Factory's ``_preprocess_image`` gives an image (shrink over max, then grow under min)."""
    if width * height > max_pixels:
        factor = math.sqrt(max_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    if width * height < min_pixels:
        factor = math.sqrt(min_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    return width, height


def media_paths(rows: list) -> list[str]:
    """Every image path and every frame of frame-list videos referenced by ShareGPT rows or testbed items."""
    seen: dict[str, None] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        for key in ("images", "videos", "video_path"):
            value = row.get(key) or []
            for item in value if isinstance(value, list) else [value]:
                for frame in item if isinstance(item, list) else [item]:
                    if isinstance(frame, str) and Path(frame).suffix.lower() not in {".mp4", ".mkv", ".avi", ".mov"}:
                        seen.setdefault(frame, None)
    return list(seen)


@dataclass
class PrepareStats:
    written: int = 0
    skipped: int = 0
    unchanged_size: int = 0


def prepare_frames(
    dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    max_pixels: int,
    min_pixels: int = 0,
    media_dir: str | os.PathLike | None = None,
    quality: int = 95,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> PrepareStats:
    """Write every frame of ``dataset`` resized to the budget into ``out_dir`` (same relative paths)."""
    dataset = Path(dataset)
    media = MediaRoot.for_file(dataset, media_dir)
    root = media.base
    out_dir = Path(out_dir)
    if out_dir.resolve() == root.resolve():
        raise ValueError("the cache folder must differ from the data root: source frames are never overwritten")
    budget = {"max_pixels": max_pixels, "min_pixels": min_pixels, "quality": quality}
    manifest_path = out_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if manifest.get("budget") not in (None, budget):
        raise ValueError(f"{out_dir} holds frames prepared for {manifest['budget']}, not {budget}: use another folder")
    stats = PrepareStats()
    paths = media_paths(load_rows(dataset))
    for rel in (progress or (lambda x: x))(paths):
        source = media.resolve(rel)
        if not source.is_file():
            raise FileNotFoundError(f"{dataset}: {media.missing(rel, source)}")
        try:
            # The cache mirrors the data root, so the same json works with media_dir: <cache>.
            mirrored = source.resolve().relative_to(root.resolve())
        except ValueError:
            raise UnsafePathError(f"{dataset}: {rel!r} lies outside the data root {root.resolve()}: pass --media-dir "
                                  "with the folder that holds it, so the cache can mirror it") from None
        target = resolve_under(out_dir, mirrored)
        if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
            stats.skipped += 1
            continue
        with Image.open(source) as img:
            fmt = img.format or "PNG"
            size = budget_size(img.width, img.height, max_pixels, min_pixels)
            if size == img.size:
                stats.unchanged_size += 1
                data = source.read_bytes()
            else:
                resized = img.convert("RGB").resize(size, Image.Resampling.BICUBIC)
                buf = io.BytesIO()
                resized.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
                data = buf.getvalue()
        atomic_write_bytes(target, data)
        stats.written += 1
    atomic_write_json(manifest_path, {"budget": budget, "source_root": str(root.resolve())})
    return stats
