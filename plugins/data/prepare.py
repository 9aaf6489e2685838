"""Pre-resize a dataset's frames to a recipe's pixel budget, into a separate cache folder.

LLaMA-Factory resizes every image to ``image_max_pixels`` / ``image_min_pixels`` each time a sample is processed.
Doing it once ahead of time, with the same arithmetic, makes that step a no-op at training time. The cache
mirrors the relative paths of the data root, so the unchanged dataset json works with ``media_dir: <cache>``.
Source files are only read; every cache file is written atomically, and files already prepared for the same
budget are skipped, so an interrupted run resumes.

The cache is keyed by its source: the manifest records the data root it mirrors and, per frame, the source file's
size and modification time. A cache made from another data root is refused (the same relative paths would serve
the other dataset's frames), and a frame is reused only while its source still has the recorded size and mtime;
anything else is rebuilt.
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.data.errors import InputError
from egoforge.data.paths import MediaRoot, UnsafePathError, resolve_under
from egoforge.data.validate import check_turn_types, load_rows

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
    manifest = read_manifest(manifest_path)
    if manifest.get("budget") not in (None, budget):
        raise InputError(out_dir, f"holds frames prepared for {manifest['budget']}, not {budget}",
                         fix="use another --out folder")
    source_root = str(root.resolve())
    if manifest.get("source_root") not in (None, source_root):
        raise InputError(out_dir, f"holds frames prepared from the data root {manifest['source_root']}, not "
                         f"{source_root}: its frames have the same relative paths and would be served for this "
                         "dataset", fix="use another --out folder, or delete this one to rebuild it")
    # Frames written before the manifest recorded their source (or by an interrupted run) are not trusted: rebuilt.
    keys: dict[str, list[int]] = dict(manifest.get("frames") or {})
    stats = PrepareStats()
    rows = load_rows(dataset)
    check_turn_types(rows, dataset)
    paths = media_paths(rows)
    sources = []
    for rel in paths:  # every frame checked before anything is written: a bad one fails fast and names itself
        source = media.resolve(rel)
        try:
            info = source.stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"{dataset}: {media.missing(rel, source)}") from None
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the reader forever, a folder cannot be resized
            raise InputError(dataset, f"media path {rel!r} -> {source} is not a regular file (a folder, FIFO or "
                             "device)", fix="point it at an image file")
        try:
            # The cache mirrors the data root, so the same json works with media_dir: <cache>.
            mirrored = source.resolve().relative_to(root.resolve())
        except ValueError:
            raise UnsafePathError(f"{dataset}: {rel!r} lies outside the data root {root.resolve()}: pass --media-dir "
                                  "with the folder that holds it, so the cache can mirror it") from None
        sources.append((source, mirrored, [info.st_size, info.st_mtime_ns]))

    def save_manifest() -> None:
        atomic_write_json(manifest_path, {"budget": budget, "source_root": source_root, "frames": keys})

    save_manifest()  # the source is recorded before the first frame is written
    for count, (source, mirrored, key) in enumerate((progress or (lambda x: x))(sources), start=1):
        target = resolve_under(out_dir, mirrored)
        name = mirrored.as_posix()
        if keys.get(name) == key and target.is_file():
            stats.skipped += 1
            continue
        keys.pop(name, None)
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
        keys[name] = key
        stats.written += 1
        if count % 500 == 0:  # an interrupted run keeps most of its work
            save_manifest()
    save_manifest()
    return stats


def read_manifest(path: Path) -> dict:
    """The cache's manifest (``{}`` when there is none); a damaged one is an error naming it."""
    if not path.exists():
        return {}
    from egoforge.data.jsonio import read_json

    manifest = read_json(path)
    if not isinstance(manifest, dict):
        raise InputError(path, "not an egoforge prepare manifest", fix="delete the cache folder to rebuild it")
    return manifest
