"""HoloAssist recordings (the HoloLens 2 capture exporter's ``Export_py`` layout) -> the raw recording layout that
``egoforge egom2p prepare`` reads (see :mod:`egoforge.egom2p.clips`).

Input, one folder per recording, as the public release and its loader (``PyHoloAssist``) lay it out::

    <recording>/Export_py/Video_pitchshift.mp4     the PV camera video (896x504)
    <recording>/Export_py/Video/VideoMp4Timing.txt first and last frame time (HoloLens ticks, 100 ns), one a line
    <recording>/Export_py/Video/Pose_sync.txt      tab-separated: time, synced time (ticks), 16 values of the PV
                                                   camera-to-world 4x4 (row-major, HoloLens camera axes)
    <recording>/Export_py/Video/Intrinsics.txt     tab-separated: the 3x3 K (row-major), ..., width, height
    <recording>/Export_py/Eyes/Eyes_sync.txt       tab-separated, one row per Pose_sync row: time, synced time,
                                                   gaze origin (x, y, z), gaze direction (x, y, z), ... in world

Conversions, as the HoloAssist loader does them: the camera axes become OpenCV's with
``T_world_cv = T_world_holo @ [[0,0,1,0],[-1,0,0,0],[0,-1,0,0],[0,0,0,1]]``; gaze is the point ``eye_distance_m``
(0.5 m by default) along the gaze ray from its origin, projected with K by the pose of the same row (no
distortion). Times become seconds from the first video frame (``VideoMp4Timing.txt``). A gaze row whose point is
not finite, behind the camera or outside the image is written invalid. HoloAssist's depth is not converted: the
exporter's depth folders (``Depth/`` or ``AhatDepth/``: 16-bit PNGs, ``Timing.txt``, the depth camera's
``Pose.txt`` and optional ``CalibrationMap.txt``) are not in the documented release, and HoloLens depth is another
sensor's radial distance, which must be reprojected into the PV camera through the per-pixel calibration map
before any resize (docs/egom2p.md, "Converters"); clips from HoloAssist have rgb, gaze and cam.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from egoforge.data.atomic import atomic_write_text
from egoforge.egom2p.clips import ClipDataError, link_rgb_video
from egoforge.egom2p.geometry import matrix_to_quat

HOLO_TO_OPENCV = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
TICKS_PER_SECOND = 10_000_000


def _rows(path: Path, min_columns: int) -> list[list[float]]:
    """Numeric rows of a tab-separated export file; errors name file, row and column."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (HoloAssist Export_py layout)")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cells = [c.strip() for c in line.rstrip("\n").split("\t") if c.strip() != ""]
            if len(cells) < min_columns:
                raise ClipDataError(path, number, "columns", f"expected at least {min_columns} values, got "
                                    f"{len(cells)}")
            values = []
            for column, cell in enumerate(cells):
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ClipDataError(path, number, f"column {column + 1}", f"not a number: {cell!r}") from None
            rows.append(values)
    if not rows:
        raise ClipDataError(path, None, "rows", "empty file")
    return rows


def read_intrinsics(path: Path) -> tuple[np.ndarray, int, int]:
    values = _rows(path, 11)[0]
    K = np.asarray(values[:9]).reshape(3, 3)
    width, height = int(values[-2]), int(values[-1])
    if K[0, 0] <= 0 or K[1, 1] <= 0 or width <= 0 or height <= 0:
        raise ClipDataError(path, 1, "K/width/height", f"implausible intrinsics {values}")
    return K, width, height


def convert_holoassist_recording(recording: str | os.PathLike, out: str | os.PathLike,
                                 eye_distance_m: float = 0.5) -> dict[str, int]:
    """Write ``out`` (a raw recording folder) from one HoloAssist recording; returns the counts converted."""
    export = Path(recording) / "Export_py"
    video = export / "Video_pitchshift.mp4"
    if not video.is_file():
        raise FileNotFoundError(f"{video}: missing (HoloAssist Export_py layout)")
    timing = _rows(export / "Video" / "VideoMp4Timing.txt", 1)
    start_ticks = timing[0][0]
    K, width, height = read_intrinsics(export / "Video" / "Intrinsics.txt")
    pose_path = export / "Video" / "Pose_sync.txt"
    pose_rows = _rows(pose_path, 18)
    times = np.array([(r[1] - start_ticks) / TICKS_PER_SECOND for r in pose_rows])
    poses = np.stack([np.asarray(r[2:18]).reshape(4, 4) for r in pose_rows]) @ HOLO_TO_OPENCV
    finite = np.isfinite(poses).all(axis=(1, 2))  # frames without tracking are dropped, not guessed
    if np.any(np.diff(times[finite]) <= 0):
        raise ClipDataError(pose_path, None, "column 2", "synced times do not increase")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    link_rgb_video(out, video)
    quats = matrix_to_quat(poses[finite][:, :3, :3])
    lines = ["# timestamp tx ty tz qx qy qz qw (PV camera-to-world, OpenCV axes; from HoloAssist Pose_sync.txt)"]
    lines += [" ".join(f"{v:.9f}" for v in (t, *p[:3, 3], *q)) for t, p, q in zip(times[finite], poses[finite], quats)]
    atomic_write_text(out / "camera.txt", "\n".join(lines) + "\n")
    counts = {"poses": int(finite.sum()), "gaze": 0, "gaze_valid": 0}

    eyes_path = export / "Eyes" / "Eyes_sync.txt"
    if eyes_path.is_file():
        eye_rows = _rows(eyes_path, 8)
        if len(eye_rows) != len(pose_rows):
            raise ClipDataError(eyes_path, None, "rows", f"{len(eye_rows)} gaze rows for {len(pose_rows)} poses in "
                                f"{pose_path} (Eyes_sync rows are synced one to one with the video poses)")
        csv_lines = ["timestamp_s,x,y,valid"]
        for values, pose, ok_pose in zip(eye_rows, poses, finite):
            t = (values[1] - start_ticks) / TICKS_PER_SECOND
            origin, direction = np.asarray(values[2:5]), np.asarray(values[5:8])
            norm = np.linalg.norm(direction)
            pixel, valid = None, False
            if ok_pose and np.isfinite(origin).all() and np.isfinite(direction).all() and norm > 1e-9:
                point = origin + direction / norm * eye_distance_m
                in_camera = np.linalg.inv(pose) @ np.append(point, 1.0)
                if in_camera[2] > 1e-9:
                    pixel = (K @ (in_camera[:3] / in_camera[2]))[:2]
                    valid = bool(0 <= pixel[0] < width and 0 <= pixel[1] < height and
                                 all(map(math.isfinite, pixel)))
            csv_lines.append(f"{t:.6f},{pixel[0]:.3f},{pixel[1]:.3f},1" if valid else f"{t:.6f},,,0")
            counts["gaze"] += 1
            counts["gaze_valid"] += int(valid)
        atomic_write_text(out / "gaze.csv", "\n".join(csv_lines) + "\n")
    return counts
