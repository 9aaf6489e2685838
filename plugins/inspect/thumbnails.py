"""Small JPEG thumbnails of a sample's frames, written beside the report and reused by the next build.

Media paths are resolved under the data root (never outside it) and only read; a frame that is missing, escapes
the root or does not decode yields a ``Thumb`` with the reason instead of an exception.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.atomic import atomic_write_bytes, atomic_write_text
from egoforge.data.paths import MediaRoot, UnsafePathError
from egoforge.data.video import sample_spread
from egoforge.inspect.samples import MediaRef

THUMB_BOX = (192, 144)  # width, height bound: a 16:9 frame becomes 192x108
THUMBS_DIR = "thumbs"
_VERSION = "1"  # bump to invalidate cached thumbnails when their look changes


@dataclass(frozen=True)
class Thumb:
    field: str
    time: float | None
    label: str  # the frame's file name, or "bytes"
    src: str | None = None  # thumbnail URL relative to the report folder
    href: str | None = None  # original file URL relative to the report folder
    width: int = 0
    height: int = 0
    problem: str | None = None


def pick_evenly(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, first and last included (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _url(path: str) -> str:
    return urllib.request.pathname2url(path)


class Thumbnailer:
    """Makes and caches thumbnails in ``out_dir/thumbs`` for media under ``media_root``."""

    def __init__(self, media_root: str | os.PathLike | MediaRoot, out_dir: str | os.PathLike,
                 box: tuple[int, int] = THUMB_BOX, quality: int = 80) -> None:
        # A plain folder is an explicit root; a MediaRoot also maps the testbed's absolute paths.
        self.root = media_root if isinstance(media_root, MediaRoot) else MediaRoot(Path(media_root), explicit=True)
        self.out_dir = Path(out_dir)
        self.box, self.quality = box, quality
        (self.out_dir / THUMBS_DIR).mkdir(parents=True, exist_ok=True)

    # --- planning ------------------------------------------------------------------------------------------------

    @staticmethod
    def select(media: list[MediaRef], max_frames: int) -> list[MediaRef]:
        """The refs a sample's strip shows: at most ``max_frames`` images spread over the clip, and every video."""
        images = [m for m in media if m.kind != "video"]
        keep = {id(images[i]) for i in pick_evenly(len(images), max_frames)}
        return [m for m in media if m.kind == "video" or id(m) in keep]

    def make_all(self, refs: Iterable[MediaRef], max_frames: int, workers: int | None = None,
                 progress: Callable[[Iterable, int], Iterable] | None = None) -> dict[tuple, list[Thumb]]:
        """Thumbnails for every distinct ref (a frame shared by several samples is done once), in threads.

        Returns ``{key(ref): [Thumb, ...]}``: one thumb for an image, up to ``max_frames`` for a video file.
        """
        unique = {self.key(r): r for r in refs}
        workers = workers or min(8, os.cpu_count() or 1)
        results: dict[tuple, list[Thumb]] = {}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = pool.map(lambda ref: (self.key(ref), self.make(ref, max_frames)), unique.values())
            for key, thumbs in (progress or (lambda it, total: it))(done, len(unique)):
                results[key] = thumbs
        return results

    @staticmethod
    def key(ref: MediaRef) -> tuple:
        if ref.kind == "bytes":
            return ("bytes", hashlib.sha1(ref.data or b"").hexdigest(), ref.field, ref.time)
        return (ref.kind, ref.path, ref.field, ref.time)

    # --- making ----------------------------------------------------------------------------------------------------

    def make(self, ref: MediaRef, max_frames: int) -> list[Thumb]:
        label = Path(ref.path).name if ref.path else "bytes"
        if ref.kind == "bytes":
            digest = hashlib.sha1(ref.data or b"").hexdigest()
            return [self._image_thumb(ref, label, digest, lambda: Image.open(io.BytesIO(ref.data or b"")), None)]
        try:
            real = self.root.resolve(ref.path or "")
        except UnsafePathError as exc:
            return [Thumb(ref.field, ref.time, label, problem=str(exc))]
        if not real.is_file():
            return [Thumb(ref.field, ref.time, label, problem=self.root.missing(ref.path or "", real))]
        stat = real.stat()
        digest = hashlib.sha1(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        href = _url(os.path.relpath(real, self.out_dir))
        if ref.kind == "video":
            return self._video_thumbs(ref, real, label, digest, href, max_frames)
        return [self._image_thumb(ref, label, digest, lambda: Image.open(real), href)]

    def _name(self, digest: str, suffix: str = "") -> str:
        tag = hashlib.sha1(f"{digest}|{self.box}|{self.quality}|{_VERSION}{suffix}".encode()).hexdigest()[:24]
        return f"{THUMBS_DIR}/{tag}.jpg"

    def _encode(self, img: Image.Image) -> tuple[bytes, int, int]:
        img.thumbnail(self.box)  # for JPEG this decodes at a reduced scale (PIL's draft mode): much faster
        img = img.convert("RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=self.quality)
        return buf.getvalue(), img.width, img.height

    def _image_thumb(self, ref: MediaRef, label: str, digest: str, opener: Callable[[], Image.Image],
                     href: str | None) -> Thumb:
        name = self._name(digest)
        target = self.out_dir / name
        try:
            if target.exists():
                with Image.open(target) as cached:
                    width, height = cached.size
            else:
                with opener() as img:
                    data, width, height = self._encode(img)
                atomic_write_bytes(target, data)
        except Exception as exc:  # a frame that does not decode is a finding to show, not a crash
            return Thumb(ref.field, ref.time, label, href=href,
                         problem=f"image does not decode: {ref.path or 'bytes'} ({type(exc).__name__}: {exc})")
        return Thumb(ref.field, ref.time, label, src=_url(name), href=href, width=width, height=height)

    def _video_thumbs(self, ref: MediaRef, real: Path, label: str, digest: str, href: str,
                      max_frames: int) -> list[Thumb]:
        index_name = self._name(digest, f"|video|{max_frames}").replace(".jpg", ".json")
        index_path = self.out_dir / index_name
        try:
            cached = json.loads(index_path.read_text(encoding="utf-8")) if index_path.exists() else None
        except ValueError:
            cached = None  # a damaged cache entry is simply rebuilt
        if cached is not None and all((self.out_dir / entry["name"]).exists() for entry in cached):
            return [Thumb(ref.field, e["time"], label, src=_url(e["name"]), href=href, width=e["width"],
                          height=e["height"]) for e in cached]
        try:
            frames = sample_spread(real, max_frames, pick_evenly)
        except Exception as exc:
            return [Thumb(ref.field, None, label, href=href,
                          problem=f"video does not decode: {ref.path} ({type(exc).__name__}: {exc})")]
        entries = []
        for k, (time, img) in enumerate(frames):
            name = self._name(digest, f"|video|{max_frames}|{k}")
            data, width, height = self._encode(img)
            atomic_write_bytes(self.out_dir / name, data)
            entries.append({"name": name, "time": time, "width": width, "height": height})
        atomic_write_text(index_path, json.dumps(entries))
        return [Thumb(ref.field, e["time"], label, src=_url(e["name"]), href=href, width=e["width"],
                      height=e["height"]) for e in entries]

