"""Project Aria MPS outputs (Ego-Exo4D, HOT3D-Aria, Aria Everyday Activities, ...) -> the raw recording layout that
``egoforge egom2p prepare`` reads (see :mod:`egoforge.egom2p.clips`).

Inputs, as MPS writes them (public Project Aria docs, "MPS output - Trajectory" and "MPS output - Eye gaze"):

- ``closed_loop_trajectory.csv``: ``tracking_timestamp_us`` and ``{tx,ty,tz,qx,qy,qz,qw}_world_device`` (the device
  pose T_world_device in a gravity-aligned world frame, about 1 kHz); other columns are ignored.
- ``general_eye_gaze.csv`` (or ``personalized_eye_gaze.csv``): ``tracking_timestamp_us``, ``pitch_rads_cpf`` and
  either ``yaw_rads_cpf`` (first eye gaze model) or ``left_yaw_rads_cpf`` / ``right_yaw_rads_cpf`` (later model;
  the combined yaw is their mean), optional ``depth_m`` (gaze depth; 0, empty or NaN -> ``default_gaze_depth_m``).
  Angles are in the Central Pupil Frame (CPF); the ray is ``[tan(yaw), tan(pitch), 1]``.
- the device calibration as JSON (``projectaria_tools``' device calibration JSON, or one record of MPS
  ``online_calibration.jsonl``): the ``CameraCalibrations`` entry labelled ``camera-rgb`` gives ``T_Device_Camera``
  (``Translation`` + ``UnitQuaternion`` ``[w, [x, y, z]]``) and the ``FisheyeRadTanThinPrism`` projection
  (``Params``: f, cx, cy, k0..k5, p0, p1, s0..s3, or fx, fy, ... with 16 values). The CPF pose in the device frame
  (T_Device_CPF, ``device_calibration.get_transform_device_cpf()`` in projectaria_tools) comes from the JSON's
  ``T_Device_CPF`` when present or is passed explicitly; without it gaze is not converted (said loudly).
- the RGB video and its clock: the device time of its first frame (``video_start_us``, frames then assumed evenly
  spaced), or for an Ego-Exo4D take the capture's ``captures/<capture_name>/timesync.csv`` (one row per
  frame-aligned video frame, the Aria RGB stream's device time in ``<aria>_214-1_capture_timestamp_ns``; the take's
  rows are ``timesync_start_idx`` .. ``timesync_end_idx`` of ``takes.json``): :func:`egoexo4d_video_clock` maps
  every device time to seconds on the video through those per-frame stamps (:class:`VideoClock`), so dropped or
  unevenly spaced frames do not shift gaze and poses.

Outputs in ``OUT/<recording>/``: ``rgb.mp4`` (a symbolic link to the source video, never a modified copy),
``camera.txt`` (TUM, the RGB camera's pose T_world_device @ T_device_rgb at up to ``max_pose_hz``, seconds on the
video's clock) and ``gaze.csv`` (the gaze point projected into the RGB image in pixels; ``valid=0`` when the point
is behind the camera, outside the image or the projection does not converge). Poses and pixels are in the video's
native sensor orientation: if you rotate the video upright, rotate gaze and camera the same way.

The CSVs are read row by row (a 1 kHz trajectory of a long recording is never held whole), and every bad value is
an error naming file, row and column.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoforge.data.atomic import atomic_write_text
from egoforge.egom2p.clips import ClipDataError, link_rgb_video
from egoforge.egom2p.geometry import invert_pose, make_pose, matrix_to_quat, quat_to_matrix

POSE_COLUMNS = [f"{c}_world_device" for c in ("tx", "ty", "tz", "qx", "qy", "qz", "qw")]


def _float(path: Path, row: int, record: dict, column: str) -> float:
    value = record.get(column)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ClipDataError(path, row, column, f"not a number: {value!r}") from None


def _reader(handle, path: Path, required: list[str]) -> csv.DictReader:
    reader = csv.DictReader(handle)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ClipDataError(path, 1, ",".join(missing), f"missing column(s); header is {reader.fieldnames}")
    return reader


def read_closed_loop_trajectory(path: str | os.PathLike, min_step_us: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(device times in microseconds (N,), T_world_device (N, 4, 4)), keeping rows at least ``min_step_us`` apart."""
    path = Path(path)
    times, poses = [], []
    last = None
    with open(path, encoding="utf-8", newline="") as handle:
        for row, record in enumerate(_reader(handle, path, ["tracking_timestamp_us", *POSE_COLUMNS]), start=2):
            t = int(_float(path, row, record, "tracking_timestamp_us"))
            if last is not None and t <= last:
                raise ClipDataError(path, row, "tracking_timestamp_us", f"{t} does not increase (previous {last})")
            if last is not None and t - last < min_step_us:
                continue
            values = [_float(path, row, record, c) for c in POSE_COLUMNS]
            if not all(map(math.isfinite, values)) or np.linalg.norm(values[3:]) < 1e-8:
                raise ClipDataError(path, row, "qx_world_device..qw_world_device", "pose is not finite or zero")
            times.append(t)
            poses.append(make_pose(quat_to_matrix(values[3:]), values[:3]))
            last = t
    if len(times) < 2:
        raise ClipDataError(path, None, "tracking_timestamp_us", "a trajectory needs at least two poses")
    return np.asarray(times, np.int64), np.stack(poses)


IPD_M = 0.063  # the fixed interpupillary distance projectaria_tools intersects left and right gaze rays with


def gaze_direction(yaw: float, pitch: float) -> np.ndarray:
    """Unit gaze direction in CPF from yaw and pitch (the direction of [tan(yaw), tan(pitch), 1])."""
    v = np.array([math.tan(yaw), math.tan(pitch), 1.0])
    return v / np.linalg.norm(v)


def vergence_point(left_yaw: float, right_yaw: float, pitch: float) -> np.ndarray | None:
    """Where the left (x = +IPD/2) and right (x = -IPD/2) eyes' rays meet in CPF; None when they do not converge."""
    tl, tr = math.tan(left_yaw), math.tan(right_yaw)
    if tr - tl <= 1e-9:
        return None
    z = IPD_M / (tr - tl)
    return np.array([IPD_M / 2 * (tl + tr) / (tr - tl), z * math.tan(pitch), z])


def read_eye_gaze(path: str | os.PathLike, default_depth_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(device times in microseconds (N,), gaze points in CPF (N, 3)) from either MPS gaze schema.

    ``yaw_rads_cpf`` rows: the unit ray times ``depth_m`` (``default_depth_m`` when missing, 0 or NaN), as
    projectaria_tools' ``get_eyegaze_point_at_depth``. ``left_/right_yaw_rads_cpf`` rows: the point where the two
    eyes' rays meet; when they do not converge, the ray of the mean yaw at ``depth_m`` or the default depth.
    """
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = _reader(handle, path, ["tracking_timestamp_us", "pitch_rads_cpf"])
        fields = set(reader.fieldnames)
        binocular = "yaw_rads_cpf" not in fields
        if binocular and not {"left_yaw_rads_cpf", "right_yaw_rads_cpf"} <= fields:
            raise ClipDataError(path, 1, "yaw_rads_cpf", f"needs yaw_rads_cpf or left_/right_yaw_rads_cpf; header "
                                f"is {reader.fieldnames}")
        times, points = [], []
        for row, record in enumerate(reader, start=2):
            times.append(int(_float(path, row, record, "tracking_timestamp_us")))
            pitch = _float(path, row, record, "pitch_rads_cpf")
            depth = record.get("depth_m")
            depth = float(depth) if depth not in (None, "") else math.nan
            depth = depth if math.isfinite(depth) and depth > 0 else default_depth_m
            if binocular:
                left, right = (_float(path, row, record, f"{side}_yaw_rads_cpf") for side in ("left", "right"))
                point = vergence_point(left, right, pitch)
                points.append(point if point is not None else gaze_direction((left + right) / 2, pitch) * depth)
            else:
                points.append(gaze_direction(_float(path, row, record, "yaw_rads_cpf"), pitch) * depth)
    if not times:
        raise ClipDataError(path, None, "tracking_timestamp_us", "no gaze samples")
    order = np.argsort(times, kind="stable")
    return np.asarray(times, np.int64)[order], np.asarray(points)[order]


FISHEYE624_NAMES = ("FisheyeRadTanThinPrism", "Fisheye624", "FISHEYE624")  # the JSON's name, projectaria_tools'


@dataclass
class AriaCamera:
    """One calibrated Aria camera: T_device_camera and the FisheyeRadTanThinPrism (Fisheye624) parameters."""

    T_device_camera: np.ndarray
    params: np.ndarray  # fx, fy, cx, cy, k0..k5, p0, p1, s0..s3
    width: int | None = None
    height: int | None = None

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame points (N, 3) -> (pixels (N, 2), valid (N,)): in front of the camera and, when the image size
        is known, inside it."""
        fx, fy, cx, cy = self.params[:4]
        k, p, s = self.params[4:10], self.params[10:12], self.params[12:16]
        points = np.asarray(points, np.float64)
        z = points[:, 2]
        front = z > 1e-9
        ab = points[:, :2] / np.where(front, z, 1.0)[:, None]
        r = np.linalg.norm(ab, axis=1)
        theta = np.arctan(r)
        theta2 = theta**2
        radial = theta * (1 + sum(k[i] * theta2 ** (i + 1) for i in range(6)))
        scale = np.where(r > 1e-12, radial / np.maximum(r, 1e-12), 1.0)
        uv = ab * scale[:, None]
        r2 = np.sum(uv**2, axis=1)
        tangential = 2 * (uv @ p)
        uv = uv + tangential[:, None] * uv + r2[:, None] * p[None]
        uv = uv + np.stack([s[0] * r2 + s[1] * r2**2, s[2] * r2 + s[3] * r2**2], 1)
        pixels = uv * [fx, fy] + [cx, cy]
        valid = front & np.isfinite(pixels).all(1)
        if self.width and self.height:
            valid &= (pixels[:, 0] >= 0) & (pixels[:, 0] < self.width) & (pixels[:, 1] >= 0) & \
                (pixels[:, 1] < self.height)
        return pixels, valid


def _pose_from_json(path: Path, field: str, value) -> np.ndarray:
    try:
        translation = np.asarray(value["Translation"], np.float64)
        w, xyz = value["UnitQuaternion"]
        q = np.array([*xyz, w], np.float64)
        if translation.shape != (3,) or q.shape != (4,):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ClipDataError(path, None, field, "expected {'Translation': [x, y, z], 'UnitQuaternion': "
                            "[w, [x, y, z]]}") from None
    return make_pose(quat_to_matrix(q), translation)


def read_aria_calibration(path: str | os.PathLike, label: str = "camera-rgb") -> tuple[AriaCamera, np.ndarray | None]:
    """(the camera ``label``, T_device_CPF or None) from a device calibration JSON or the first record of
    ``online_calibration.jsonl``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        record = json.loads(text) if path.suffix != ".jsonl" else json.loads(text.splitlines()[0])
    except (json.JSONDecodeError, IndexError) as exc:
        raise ClipDataError(path, 1, "json", f"not valid JSON ({exc})") from None
    cameras = {c.get("Label"): c for c in record.get("CameraCalibrations", [])}
    if label not in cameras:
        raise ClipDataError(path, None, "CameraCalibrations", f"no camera labelled {label!r}; has {sorted(cameras)}")
    camera = cameras[label]
    projection = camera.get("Projection", {})
    if projection.get("Name") not in FISHEYE624_NAMES:
        raise ClipDataError(path, None, f"CameraCalibrations[{label}].Projection.Name",
                            f"{projection.get('Name')!r}: only FisheyeRadTanThinPrism (Aria's Fisheye624) is "
                            "supported")
    try:
        params = np.asarray(projection.get("Params", []), np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ClipDataError(path, None, f"CameraCalibrations[{label}].Projection.Params", "not numbers") from None
    if params.shape == (15,):  # one focal length: f, cx, cy, k0..k5, p0, p1, s0..s3 (the calibration JSON's)
        params = np.concatenate([params[:1], params])
    if params.shape != (16,) or not np.isfinite(params).all():
        raise ClipDataError(path, None, f"CameraCalibrations[{label}].Projection.Params",
                            f"Fisheye624 has 15 parameters (f, cx, cy, k0..k5, p0, p1, s0..s3) or 16 (fx, fy, ...); "
                            f"got {params.size}{'' if np.isfinite(params).all() else ' with non-finite values'}")
    size = camera.get("ImageSize") or {}
    cam = AriaCamera(_pose_from_json(path, "T_Device_Camera", camera.get("T_Device_Camera")), params,
                     size.get("Width"), size.get("Height"))
    cpf = record.get("T_Device_CPF")
    return cam, (_pose_from_json(path, "T_Device_CPF", cpf) if cpf is not None else None)


@dataclass
class VideoClock:
    """Seconds on the video's clock of device times, from the device time of each video frame (NaN where the
    timesync has no stamp: that frame is skipped). Inside the stamped frames the mapping is piecewise linear
    between frames; outside it, device time runs at its own rate from the nearest stamped frame."""

    frame_device_us: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        stamped = np.flatnonzero(np.isfinite(self.frame_device_us))
        if stamped.size == 0:
            raise ValueError("VideoClock: no frame has a device time")
        self._device = np.asarray(self.frame_device_us, np.float64)[stamped]
        self._video = stamped / self.fps

    @classmethod
    def from_start(cls, video_start_us: int) -> VideoClock:
        """Evenly spaced frames from ``video_start_us`` (device time minus start, in seconds)."""
        return cls(np.array([float(video_start_us)]), 1.0)

    def seconds(self, device_us) -> np.ndarray:
        t = np.asarray(device_us, np.float64)
        inside = np.interp(t, self._device, self._video)
        before = self._video[0] + (t - self._device[0]) / 1e6
        after = self._video[-1] + (t - self._device[-1]) / 1e6
        return np.where(t < self._device[0], before, np.where(t > self._device[-1], after, inside))


def _video_fps(video: Path) -> float:
    from egoforge.data.video import video_info

    rate = video_info(video).fps  # average rate, else FFmpeg's guess, else 0.0
    if not rate:
        raise ClipDataError(video, None, "frame rate", "the video stream has no frame rate")
    return float(rate)


def read_timesync_column(path: str | os.PathLike, column: str, start: int, end: int) -> np.ndarray:
    """Device times in microseconds of timesync rows ``start`` .. ``end - 1`` (0-based data rows) of ``column``
    (``*_capture_timestamp_ns``); an empty cell is NaN (a frame without a stamp). Read row by row."""
    path = Path(path)
    values = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = _reader(handle, path, [column])
        for index, record in enumerate(reader):
            if index < start:
                continue
            if index >= end:
                break
            cell = (record.get(column) or "").strip()
            if cell in ("", "nan", "NaN"):
                values.append(math.nan)
                continue
            try:
                values.append(float(cell) / 1000.0)
            except ValueError:
                raise ClipDataError(path, index + 2, column, f"not a number: {cell!r}") from None
            if not math.isfinite(values[-1]):
                raise ClipDataError(path, index + 2, column, f"not finite: {cell!r}")
    if len(values) != end - start:
        raise ClipDataError(path, None, column, f"the take's rows {start}..{end - 1} are past the end of the file "
                            f"({start + len(values)} data rows)")
    times = np.asarray(values)
    stamped = times[np.isfinite(times)]
    if stamped.size == 0:
        raise ClipDataError(path, start + 2, column, f"no device time in the take's rows {start}..{end - 1}")
    steps = np.diff(stamped)
    if (steps <= 0).any():
        first = int(np.flatnonzero(np.isfinite(times))[int(np.flatnonzero(steps <= 0)[0]) + 1])
        raise ClipDataError(path, start + first + 2, column, "device time does not increase")
    return times


def egoexo4d_video_clock(take: str | os.PathLike, video: str | os.PathLike, root: str | os.PathLike | None = None,
                         fps: float | None = None) -> VideoClock:
    """The clock of an Ego-Exo4D take's frame-aligned Aria RGB video from the capture's ``timesync.csv``.

    ``take`` is ``<root>/takes/<take_name>``; ``root`` (default: two folders up) holds ``takes.json`` and
    ``captures/<capture_name>/timesync.csv``. The take's entry gives ``timesync_start_idx`` / ``timesync_end_idx``
    (row i of that range is frame i of every frame-aligned video; the end is exclusive) and the capture's name;
    the column is ``<aria>_214-1_capture_timestamp_ns`` with ``<aria>`` from the video's name. The stamps' spacing
    must match the video's frame rate (a wrong column or range is refused rather than silently mis-timed)."""
    take, video = Path(take), Path(video)
    root = Path(root) if root is not None else take.parent.parent
    takes_json = root / "takes.json"
    if not takes_json.is_file():
        raise FileNotFoundError(f"{takes_json}: Ego-Exo4D takes.json not found (needed for the take's timesync rows;"
                                " or pass --video-start-us)")
    try:
        takes = json.loads(takes_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClipDataError(takes_json, None, "json", f"not valid JSON ({exc})") from None
    entries = [(i, t) for i, t in enumerate(takes if isinstance(takes, list) else [])
               if isinstance(t, dict) and t.get("take_name") == take.name]
    if len(entries) != 1:
        raise ClipDataError(takes_json, None, "take_name", f"{len(entries)} entries for take {take.name!r}")
    index, entry = entries[0]
    fields = {}
    for key in ("timesync_start_idx", "timesync_end_idx"):
        value = entry.get(key)
        if not isinstance(value, int) or value < 0:
            raise ClipDataError(takes_json, index, key, f"expected a row index, got {value!r}")
        fields[key] = value
    start, end = fields["timesync_start_idx"], fields["timesync_end_idx"]
    if end <= start:
        raise ClipDataError(takes_json, index, "timesync_end_idx", f"{end} is not after timesync_start_idx {start}")
    capture = (entry.get("capture") or {}).get("capture_name") or entry.get("capture_name")
    if not capture:
        raise ClipDataError(takes_json, index, "capture.capture_name", "missing")
    aria = video.name.split("_214-1")[0]
    clock = VideoClock(read_timesync_column(root / "captures" / capture / "timesync.csv",
                                            f"{aria}_214-1_capture_timestamp_ns", start, end),
                       fps or _video_fps(video))
    if clock._device.size > 2:
        per_frame = np.median(np.diff(clock._device) / np.diff(clock._video)) / 1e6  # device s per video s
        if abs(per_frame - 1.0) > 0.05:
            raise ClipDataError(root / "captures" / capture / "timesync.csv", None,
                                f"{aria}_214-1_capture_timestamp_ns",
                                f"stamps advance {per_frame:.3f} s per second of {video.name} at "
                                f"{clock.fps:g} fps: not this video's frames")
    return clock


def convert_aria_recording(out: str | os.PathLike, video: str | os.PathLike, video_start_us: int | VideoClock,
                           calibration: str | os.PathLike, trajectory: str | os.PathLike | None = None,
                           eye_gaze: str | os.PathLike | None = None, T_device_cpf: np.ndarray | None = None,
                           max_pose_hz: float = 120.0, default_gaze_depth_m: float = 1.0) -> dict[str, int]:
    """Write ``out`` as a raw recording folder; returns what was converted (poses, gaze samples).
    ``video_start_us``: the device time of the first frame, or a :class:`VideoClock` (e.g. from the timesync)."""
    out, video = Path(out), Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"{video}: RGB video not found")
    out.mkdir(parents=True, exist_ok=True)
    link_rgb_video(out, video)
    clock = video_start_us if isinstance(video_start_us, VideoClock) else VideoClock.from_start(video_start_us)
    camera, cpf_from_json = read_aria_calibration(calibration)
    from egoforge.egom2p.clips import probe_video

    video_size = tuple(probe_video(video)[:2])
    if camera.width is None:  # gaze outside the image is invalid: take the size from the video itself
        camera.width, camera.height = video_size
    elif (camera.width, camera.height) != video_size:
        # the intrinsics are in the calibrated image's pixels (e.g. 2880x2880 full resolution vs a 1408x1408
        # recording): projecting with them into this video would put every gaze point in the wrong place
        raise ClipDataError(calibration, None, "CameraCalibrations[camera-rgb].ImageSize",
                            f"{camera.width}x{camera.height}, but {video.name} is {video_size[0]}x{video_size[1]}; "
                            "use the calibration of the recorded resolution (projectaria_tools "
                            "CameraCalibration.rescale)")
    counts = {"poses": 0, "gaze": 0, "gaze_valid": 0}
    if trajectory is not None:
        times, T_world_device = read_closed_loop_trajectory(trajectory, int(1e6 / max_pose_hz))
        poses = T_world_device @ camera.T_device_camera
        quats = matrix_to_quat(poses[:, :3, :3])
        lines = ["# timestamp tx ty tz qx qy qz qw (RGB camera-to-world; from MPS closed_loop_trajectory)"]
        lines += [" ".join(f"{v:.9f}" for v in (s, *p[:3, 3], *q))
                  for s, p, q in zip(clock.seconds(times), poses, quats)]
        atomic_write_text(out / "camera.txt", "\n".join(lines) + "\n")
        counts["poses"] = len(times)
    if eye_gaze is not None:
        T_device_cpf = T_device_cpf if T_device_cpf is not None else cpf_from_json
        if T_device_cpf is None:
            warnings.warn(f"{calibration}: no T_Device_CPF and none given: gaze of {out.name} NOT converted "
                          "(pass the CPF pose, projectaria_tools device_calibration.get_transform_device_cpf())",
                          stacklevel=2)
        else:
            times, points = read_eye_gaze(eye_gaze, default_gaze_depth_m)
            T_camera_cpf = invert_pose(camera.T_device_camera) @ T_device_cpf
            in_camera = points @ T_camera_cpf[:3, :3].T + T_camera_cpf[:3, 3]
            pixels, valid = camera.project(in_camera)
            rows = ["timestamp_s,x,y,valid"]
            rows += [f"{s:.6f},{x:.3f},{y:.3f},{int(ok)}" if ok else f"{s:.6f},,,0"
                     for s, (x, y), ok in zip(clock.seconds(times), pixels, valid)]
            atomic_write_text(out / "gaze.csv", "\n".join(rows) + "\n")
            counts["gaze"], counts["gaze_valid"] = len(times), int(valid.sum())
    return counts


def egoexo4d_take_inputs(take: str | os.PathLike, gaze: str = "general") -> dict[str, Path | None]:
    """The MPS files and RGB video of one Ego-Exo4D take folder (``takes/<take_name>/``): ``trajectory/
    closed_loop_trajectory.csv``, ``eye_gaze/<gaze>_eye_gaze.csv`` and ``frame_aligned_videos/<aria>_214-1.mp4``
    (the Aria RGB stream). A missing trajectory or gaze file is None (that modality is then absent); a missing or
    ambiguous video is an error naming the folder."""
    take = Path(take)
    if not take.is_dir():
        raise FileNotFoundError(f"{take}: not a take folder")
    videos = sorted((take / "frame_aligned_videos").glob("*_214-1.mp4"))
    if len(videos) != 1:
        raise FileNotFoundError(f"{take}/frame_aligned_videos: expected one Aria RGB video <aria>_214-1.mp4, "
                                f"found {[v.name for v in videos]}")
    trajectory = take / "trajectory" / "closed_loop_trajectory.csv"
    eye_gaze = take / "eye_gaze" / f"{gaze}_eye_gaze.csv"
    return {"video": videos[0], "trajectory": trajectory if trajectory.is_file() else None,
            "eye_gaze": eye_gaze if eye_gaze.is_file() else None}
