"""Fisheye -> pinhole undistortion of Ego-Exo4D Aria videos through projectaria_tools (optional dependency).

Ego-Exo4D's egocentric RGB stream is a fisheye camera; EgoAgent undistorts it to a pinhole model so the frames
look like the WalkingTours videos. For each take, the calibration comes from the take's
``*noimagestreams.vrs``, the frames from ``frame_aligned_videos/downscaled/448/*214-1.mp4``; the target is a
linear (pinhole) camera of ``size x size`` pixels with the source focal length, and every ``every``-th frame is
kept (the official script keeps 1 in 5) as ``OUT/<take_uid>/<video stem>/frame_<index>.jpg``.

Take folders are named by the take *name* in a real download (``takes/<take_name>``, the ``root_dir`` of
``takes.json``), while the body poses are keyed by the take *uid*; the output is keyed by the uid so that stage 2
finds the frames of each pose fragment. ``takes.json`` is therefore required: it is looked up beside the takes
folder (``<download>/takes.json`` or ``<download>/metadata/takes.json``) unless given. A folder that takes.json does
not name is an error, never a silently skipped or misnamed take.

projectaria_tools is not an egoforge requirement (it is only needed here): ``pip install projectaria-tools``.
Without it the commands stop with a clear message; nothing else in egoforge needs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from egoforge.data.atomic import atomic_dir
from egoforge.data.video import iter_every_nth
from egoforge.egoagent.data.frames import write_index
from egoforge.egoagent.data.takes import TakeIndex, find_takes_json, load_take_index

VIDEO_SUBDIR = Path("frame_aligned_videos") / "downscaled" / "448"
VIDEO_SUFFIX = "214-1.mp4"
VRS_SUFFIX = "noimagestreams.vrs"


class MissingDependencyError(RuntimeError):
    pass


def require_projectaria():
    """Import projectaria_tools' calibration API or explain how to get it."""
    try:
        from projectaria_tools.core import calibration, data_provider
        from projectaria_tools.core.image import InterpolationMethod
    except ImportError as exc:
        raise MissingDependencyError(
            "fisheye undistortion needs projectaria_tools, which is not installed "
            f"({exc}). Install it into this environment with `pip install projectaria-tools` "
            "(https://github.com/facebookresearch/projectaria_tools), then re-run."
        ) from None
    return calibration, data_provider, InterpolationMethod


def aria_pinhole_remap(vrs_path: str | os.PathLike, size: int = 448) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping a fisheye RGB frame (the 448 px downscaled video) to a ``size`` px pinhole frame."""
    calibration, data_provider, interpolation = require_projectaria()
    provider = data_provider.create_vrs_data_provider(str(vrs_path))
    if provider is None:
        raise ValueError(f"{vrs_path}: projectaria_tools could not open the VRS file")
    rgb = provider.get_device_calibration().get_camera_calib("camera-rgb")
    if rgb is None:
        raise ValueError(f"{vrs_path}: no camera-rgb calibration in the VRS file")
    width = rgb.get_image_size()[0]
    # The calibration is for the full-resolution sensor; the released videos are downscaled to 448 px.
    source = rgb.rescale([448, 448], 448 / width)
    focal = source.get_focal_lengths() * size / 448
    target = calibration.get_linear_camera_calibration(size, size, focal[0], "camera-rgb")

    def remap(frame: np.ndarray) -> np.ndarray:
        return calibration.distort_by_calibration(frame, target, source, interpolation.BILINEAR)

    return remap


def undistort_video(video: str | os.PathLike, out_dir: str | os.PathLike,
                    remap: Callable[[np.ndarray], np.ndarray], every: int = 5, quality: int = 95) -> int:
    """Write ``remap(frame)`` for every ``every``-th frame as ``out_dir/frame_<index>.jpg`` (atomically)."""
    count = 0
    with atomic_dir(out_dir) as tmp:
        for index, image in iter_every_nth(video, every):
            Image.fromarray(remap(np.asarray(image.convert("RGB")))).save(tmp / f"frame_{index}.jpg", quality=quality)
            count += 1
    return count


@dataclass(frozen=True)
class TakeMedia:
    take_uid: str
    take_name: str
    video: Path
    vrs: Path


def take_index_for(takes_root: str | os.PathLike, takes_json: str | os.PathLike | None = None) -> TakeIndex:
    """The take index of a download: ``takes_json`` or the takes.json found beside ``takes_root``."""
    takes_root = Path(takes_root)
    path = Path(takes_json) if takes_json else find_takes_json(takes_root.parent, takes_root)
    if path is None:
        raise FileNotFoundError(
            f"{takes_root}: no takes.json in {takes_root.parent} or {takes_root.parent / 'metadata'}; it maps the "
            "take folders (takes/<take_name>) to the take_uid the body poses use: pass --takes-json")
    return load_take_index(path)


def find_take_media(takes_root: str | os.PathLike, takes: Iterable[str] | None = None,
                    index: TakeIndex | None = None) -> list[TakeMedia]:
    """The egocentric video and VRS of each take folder (``takes/<take_name>/``), with the take's uid.

    ``takes`` selects takes by uid, name or folder name (default: every folder). Folders that takes.json does not
    name, unknown selections and takes missing their video or VRS are errors, all reported together.
    """
    takes_root = Path(takes_root)
    if not takes_root.is_dir():
        raise FileNotFoundError(f"{takes_root}: takes folder not found")
    index = index or take_index_for(takes_root)
    folders = sorted(p.name for p in takes_root.iterdir() if p.is_dir())
    by_uid: dict[str, str] = {}  # uid -> folder
    problems = []
    for folder in folders:
        uid = index.uid_of(folder)
        if uid is None:
            if takes is None:
                problems.append(f"{takes_root / folder}: not a take of {index.source} (no take_name or root_dir "
                                "matches the folder)")
            continue
        if uid in by_uid:
            problems.append(f"{takes_root / folder}: take {uid} already found in {takes_root / by_uid[uid]}")
            continue
        by_uid[uid] = folder
    if takes is not None:
        wanted = {}
        for key in takes:
            uid = index.uid_of(key)
            if uid is None or uid not in by_uid:
                problems.append(f"{key}: " + ("not a take of " + str(index.source) if uid is None
                                              else f"no folder in {takes_root} (expected {index.folders[uid]})"))
            else:
                wanted[uid] = by_uid[uid]
        by_uid = wanted
    media = []
    for uid, folder in sorted(by_uid.items()):
        videos = sorted((takes_root / folder / VIDEO_SUBDIR).glob(f"*{VIDEO_SUFFIX}"))
        vrs = sorted((takes_root / folder).glob(f"*{VRS_SUFFIX}"))
        if not videos or not vrs:
            what = "video (*214-1.mp4)" if not videos else "VRS (*noimagestreams.vrs)"
            problems.append(f"{takes_root / folder}: no egocentric {what}")
            continue
        media.append(TakeMedia(uid, index.names[uid], videos[0], vrs[0]))
    if problems:
        raise FileNotFoundError("take media problems:\n  " + "\n  ".join(problems))
    return media


def undistort_takes(takes_root: str | os.PathLike, out_root: str | os.PathLike,
                    takes: Iterable[str] | None = None, size: int = 448, every: int = 5,
                    progress: bool = True, takes_json: str | os.PathLike | None = None) -> dict[str, int]:
    """Undistort every take into ``out_root/<take_uid>/``; finished takes (folder present) are skipped, so an
    interrupted run resumes. Returns {take_uid: frames written}."""
    from tqdm import tqdm

    require_projectaria()
    out_root = Path(out_root)
    media = find_take_media(takes_root, takes, take_index_for(takes_root, takes_json))
    written = {}
    for take in tqdm(media, desc="undistort", unit="take", disable=not progress):
        target = out_root / take.take_uid / take.video.stem
        if target.is_dir():
            continue
        written[take.take_uid] = undistort_video(take.video, target, aria_pinhole_remap(take.vrs, size), every)
    write_index(out_root)
    return written
