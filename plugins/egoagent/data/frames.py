"""Frame extraction from walking-tour style mp4s, one frame per second by default.

The official stage-1 loader samples ``step_between_clips = FPS`` frames apart (one sample per second of 30 fps
video). ``extract_video`` keeps every ``every``-th decoded frame (default: the stream's rounded frame rate) and
writes ``OUT/<video path relative to the videos' common folder, without suffix>/frame_<source index:07d>.jpg``
(videos of one folder: ``OUT/<video stem>/``), so a file name gives its time (index / fps). Each video is
written into a temporary folder and renamed into place when complete: an interrupted run leaves no half video and
a re-run skips finished videos. ``OUT/frames_index.txt`` lists every frame (relative paths) for the trainer.

Faces: the WalkingTours release asks users to blur faces before training; egoforge ships no face detector. Blur
the mp4s (or the extracted folder) with a tool of your choice before training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from egoforge.data.atomic import atomic_dir, atomic_write_text
from egoforge.data.errors import InputError
from egoforge.data.jsonio import DataFormatError, read_json
from egoforge.data.video import VideoError, iter_every_nth, video_info

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
INDEX_NAME = "frames_index.txt"
DONE_NAME = ".extracted.json"


@dataclass(frozen=True)
class ExtractedVideo:
    video: str
    folder: Path
    frames: int
    fps: float
    every: int
    skipped: bool = False


def _resized(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BICUBIC)
    return image


def source_record(video: Path) -> dict:
    """What identifies a video's frames: its full path, size and modification time (a re-encoded or replaced
    video is extracted again; another video of the same name is never taken for it)."""
    stat = video.stat()
    return {"source": str(video.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def output_keys(videos: list[Path]) -> list[Path]:
    """Each video's folder under the output root: its path relative to the videos' common folder, without the
    suffix (``a/tour.mp4``, ``b/tour.mp4`` -> ``a/tour``, ``b/tour``; videos of one folder -> their stems).
    Two videos that would share a folder (``x.mp4`` and ``x.mkv``, a video given twice) are refused."""
    resolved = [v.resolve() for v in videos]
    if not resolved:
        return []
    common = Path(os.path.commonpath([str(v.parent) for v in resolved]))
    keys = [v.relative_to(common).with_suffix("") for v in resolved]
    seen: dict[Path, Path] = {}
    for video, key in zip(videos, keys):
        if key in seen:
            raise InputError(video, f"would be extracted into the same folder ({key}) as {seen[key]}",
                             fix="give each video once, with distinct names")
        seen[key] = video
    return keys


def expected_frames(total: int | None, every: int) -> int | None:
    """Frames 0, every, 2 * every, ... below ``total``: the progress bar's length (None when the count is unknown)."""
    return -(-total // every) if total else None


def extract_video(video: str | os.PathLike, out_root: str | os.PathLike, every: int | None = None,
                  max_side: int | None = None, quality: int = 95, progress: bool = True,
                  key: str | os.PathLike | None = None) -> ExtractedVideo:
    """Extract one video into ``out_root/<key>/`` (default key: the stem); a finished folder of the same video
    (path, size, mtime) with the same settings is kept as is, one of another video is refused."""
    from tqdm import tqdm

    video = Path(video)
    if not video.is_file():
        raise VideoError(f"{video}: file not found")
    info = video_info(video)
    fps, total = info.fps, info.frames
    if every is None:
        if fps <= 0:
            raise VideoError(f"{video}: the stream has no frame rate; pass --every")
        every = max(1, round(fps))
    source = source_record(video)
    settings = {"video": video.name, "every": every, "max_side": max_side, "fps": fps, **source}
    folder = Path(out_root) / (key if key is not None else video.stem)
    done = folder / DONE_NAME
    if done.is_file():
        previous = read_json(done)
        if not isinstance(previous, dict):
            raise DataFormatError(done, None, None, "not an extraction record (expected an object)")
        if previous.get("source") not in (None, source["source"]):  # None: recorded before sources were
            raise InputError(folder, f"holds the frames of another video ({previous['source']}), not "
                             f"{source['source']}", fix="choose another --out, or move that folder away")
        if {k: previous.get(k) for k in settings} == settings:
            return ExtractedVideo(str(video), folder, previous["frames"], fps, every, skipped=True)
    count = 0
    with atomic_dir(folder) as tmp:
        bar = tqdm(total=expected_frames(total, every), desc=video.name, unit="frame", disable=not progress)
        for index, image in iter_every_nth(video, every):
            _resized(image, max_side).save(tmp / f"frame_{index:07d}.jpg", quality=quality)
            count += 1
            bar.update(1)
        bar.total = count  # the container's frame count is an estimate: the bar ends at what was decoded, 100%
        bar.close()
        if count == 0:
            raise VideoError(f"{video}: no frames decoded")
        (tmp / DONE_NAME).write_text(json.dumps({**settings, "frames": count}) + "\n")
    return ExtractedVideo(str(video), folder, count, fps, every)


def list_images(root: str | os.PathLike) -> list[str]:
    """Relative paths of every image below ``root`` (sorted), skipping hidden folders."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_SUFFIXES):
                found.append(str(Path(dirpath, name).relative_to(root)))
    return found


def write_index(root: str | os.PathLike) -> Path:
    """(Re)write ``root/frames_index.txt`` from the images on disk; trainers read it instead of walking
    millions of files at every start."""
    frames = list_images(root)
    return atomic_write_text(Path(root) / INDEX_NAME, "".join(f"{f}\n" for f in frames))


def extract_videos(videos: Iterable[str | os.PathLike], out_root: str | os.PathLike, every: int | None = None,
                   max_side: int | None = None, progress: bool = True) -> list[ExtractedVideo]:
    """Extract every video into ``out_root/<path relative to the videos' common folder>/`` (see
    :func:`output_keys`), then rewrite the frame index."""
    videos = [Path(v) for v in videos]
    missing = [v for v in videos if not v.is_file()]
    if missing:
        raise VideoError(f"{missing[0]}: " + ("is not a file" if missing[0].exists() else "file not found"))
    keys = output_keys(videos)
    results = [extract_video(v, out_root, every=every, max_side=max_side, progress=progress, key=k)
               for v, k in zip(videos, keys)]
    write_index(out_root)
    return results
