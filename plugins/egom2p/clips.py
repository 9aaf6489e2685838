"""Clip preparation: raw egocentric recordings -> aligned 2 s clips of every available modality.

Input, one folder per recording (all times in seconds on the video's clock, first frame at its stream time)::

    RAW/<recording>/rgb.mp4      any video PyAV decodes (required: it defines the clips)
    RAW/<recording>/depth.npz    ``depth`` (N, H, W) float and ``timestamps`` (N,), registered to the rgb view
      or depth/NNNNNN.png        16-bit PNG frames + depth/timestamps.txt (one time per line); meta.json
                                 ``depth_scale`` converts PNG units to metres (default 0.001)
    RAW/<recording>/gaze.csv     header ``timestamp_s,x,y[,valid]``: gaze in rgb pixel coordinates
    RAW/<recording>/camera.txt   TUM trajectory ``timestamp tx ty tz qx qy qz qw``, camera-to-world (OpenCV axes)

Output, one folder per clip (``<recording>__<index>``; dots become underscores so WebDataset keys stay intact)::

    CLIPS/<dataset>/<key>/rgb.npy           (16, S, S, 3) uint8: nearest frame at 8 fps (ffmpeg ``fps=8``
                                            rounding), centre square crop, lanczos resize to S (256)
    CLIPS/<dataset>/<key>/depth.npy         (16, S, S) float16 in [0, 1]: per-clip min-max normalised over the
                                            valid pixels; sensor holes are NaN
    CLIPS/<dataset>/<key>/depth_metric.npy  (16, S, S) float16: the same frames before normalisation (evaluation);
                                            sensor holes are 0

Depth is resized with a masked min-pool (or nearest; ``ClipSettings.depth_resize``), never interpolated: a hole
(0, negative or non-finite in the source) never blends into a valid neighbour, an output pixel is the nearest valid
surface in its footprint and is a hole only when its whole footprint is.
    CLIPS/<dataset>/<key>/gaze.npy          (60, 3) float32: (x, y) in the crop's [0, 1] frame + validity, 30 Hz
    CLIPS/<dataset>/<key>/cam.npy           (60, 4, 4) float32: camera-to-world poses at 30 Hz (slerp)
    CLIPS/<dataset>/<key>/meta.json         recording, start time, modalities present

A modality a recording lacks, or that does not cover a clip (camera), or has no valid sample in it (gaze), is
simply absent from the clip folder: downstream it is "unavailable" for that sample. Source files are only read;
each clip folder is written atomically and skipped when it already exists, so an interrupted run resumes: a
recording whose clips all exist is not decoded at all, and one interrupted midway is decoded from the keyframe
before its first missing clip. Memory is bounded per recording: video frames are decoded and resampled one clip at
a time, and ``depth.npz`` is never loaded whole (memory-mapped when stored uncompressed, else streamed frame by
frame); gaze and camera files are small text tables and are read whole.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from egoforge.data.atomic import atomic_dir
from egoforge.data.errors import InputError
from egoforge.data.video import VideoError, duration_by_decoding, iter_nearest_frames, video_info
from egoforge.egom2p.geometry import interpolate_poses, make_pose, quat_to_matrix
from egoforge.egom2p.modalities import CLIP_SECONDS, MODALITIES


class ClipDataError(ValueError):
    """A raw input file is malformed; the message names the file, the row and the field."""

    def __init__(self, file: str | os.PathLike, row: int | None, field: str, message: str):
        self.file, self.row, self.field = str(file), row, field
        where = f"{file}" + (f", row {row}" if row is not None else "") + f", field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class ClipSettings:
    size: int = 256  # output side (paper: 256)
    stride_s: float = CLIP_SECONDS  # seconds between clip starts (2.0: non-overlapping)
    gaze_max_gap_s: float = 0.1  # interpolate gaze only across gaps shorter than this
    depth_scale: float = 0.001  # PNG depth units -> metres, unless meta.json says otherwise
    depth_resize: str = "min"  # "min": masked min-pool over each output pixel's footprint; "nearest"


# ---- readers (never write) ----

def read_tum(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """TUM trajectory -> (times (N,), poses (N, 4, 4)), sorted by time."""
    times, poses = [], []
    with open(path, encoding="utf-8") as handle:
        for row, line in enumerate(handle, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.replace(",", " ").split()
            if len(parts) != 8:
                raise ClipDataError(path, row, "line", f"expected 8 values (timestamp tx ty tz qx qy qz qw), "
                                    f"got {len(parts)}")
            try:
                values = [float(p) for p in parts]
            except ValueError:
                raise ClipDataError(path, row, "line", f"non-numeric value in {line!r}") from None
            q = np.array(values[4:8])
            if not np.isfinite(values).all() or np.linalg.norm(q) < 1e-8:
                raise ClipDataError(path, row, "qx qy qz qw", "quaternion is zero or not finite")
            times.append(values[0])
            poses.append(make_pose(quat_to_matrix(q), values[1:4]))
    if len(times) < 2:
        raise ClipDataError(path, None, "timestamp", "a trajectory needs at least two poses")
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.stack(poses)[order]


def read_gaze_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gaze.csv -> (times, xy pixels (N, 2), valid (N,)); NaN coordinates are invalid samples."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp_s", "x", "y"} - set(reader.fieldnames or [])
        if missing:
            raise ClipDataError(path, 1, ",".join(sorted(missing)),
                                f"missing column(s); header is {reader.fieldnames}")
        times, xy, valid = [], [], []
        for row, record in enumerate(reader, start=2):
            try:
                t = float(record["timestamp_s"])
            except (TypeError, ValueError):
                raise ClipDataError(path, row, "timestamp_s", f"not a number: {record['timestamp_s']!r}") from None
            if not math.isfinite(t):  # a NaN time sorts anywhere and interpolates NaN into every clip
                raise ClipDataError(path, row, "timestamp_s", f"not a finite number: {record['timestamp_s']!r}")
            point = []
            for field in ("x", "y"):
                try:
                    point.append(float(record[field]) if record[field] not in ("", None) else math.nan)
                except ValueError:
                    raise ClipDataError(path, row, field, f"not a number: {record[field]!r}") from None
                if math.isinf(point[-1]):  # NaN / empty is the tracker's "no sample"; infinity is a broken file
                    raise ClipDataError(path, row, field, f"infinite coordinate: {record[field]!r}")
            flag = record.get("valid")
            flagged = flag in (None, "") or flag.strip().lower() in ("1", "true", "yes")
            ok = flagged and all(map(math.isfinite, point))
            times.append(t)
            xy.append(point)
            valid.append(ok)
    if not times:
        raise ClipDataError(path, None, "timestamp_s", "no gaze samples")
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.asarray(xy, dtype=np.float64)[order], np.asarray(valid)[order]


class NpzDepthFrames:
    """Frames of the ``depth`` array inside ``depth.npz`` without loading the array: memory-mapped when the member
    is stored uncompressed (``np.savez``), otherwise decompressed frame by frame in a forward-only stream (clips ask
    for frames in increasing order; asking for an earlier frame restarts the stream). Memory: one frame."""

    def __init__(self, path: Path, member: str = "depth.npy"):
        import zipfile

        self.path, self.member = path, member
        with zipfile.ZipFile(path) as archive:
            self.info = archive.getinfo(member)
            with archive.open(member) as handle:
                self.shape, self.dtype, fortran, self.offset = _npy_header(handle, path)
        if len(self.shape) != 3:
            raise ClipDataError(path, None, "depth", f"expected (N, H, W), got shape {self.shape}")
        if fortran:
            raise ClipDataError(path, None, "depth", "Fortran-ordered arrays cannot be streamed; save it C-ordered")
        self.frame_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._mmap = None
        if self.info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as raw:  # the member's data starts after its local header (own name/extra sizes)
                raw.seek(self.info.header_offset)
                local = raw.read(30)
                name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            start = self.info.header_offset + 30 + name_len + extra_len + self.offset
            self._mmap = np.memmap(path, dtype=self.dtype, mode="r", offset=start, shape=self.shape)
        self._stream = None
        self._next = 0

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if self._mmap is not None:
            return np.asarray(self._mmap[index], dtype=np.float32)
        if self._stream is None or index < self._next:
            self.close()
            import zipfile

            self._archive = zipfile.ZipFile(self.path)
            self._stream = self._archive.open(self.member)
            self._stream.read(self.offset)
            self._next = 0
        while self._next < index:  # skip forward without keeping anything
            self._stream.read(self.frame_bytes)
            self._next += 1
        data = self._stream.read(self.frame_bytes)
        if len(data) != self.frame_bytes:
            raise ClipDataError(self.path, None, "depth", f"frame {index} is truncated")
        self._next += 1
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape[1:]).astype(np.float32)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._archive.close()
            self._stream = None


def _npy_header(handle, path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran order, header length) of an .npy stream, read without the data."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(handle)
        read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read(handle)
    except ValueError as exc:
        raise ClipDataError(path, None, "depth", f"not a readable .npy member ({exc})") from None
    if dtype.hasobject:
        raise ClipDataError(path, None, "depth", "object arrays are refused (pickles)")
    return tuple(shape), dtype, fortran, handle.tell()


class DepthSource:
    """Depth frames with timestamps, from ``depth.npz`` or a folder of 16-bit PNGs, read one frame at a time."""

    def __init__(self, recording: Path, scale: float):
        npz, folder = recording / "depth.npz", recording / "depth"
        self.frames: NpzDepthFrames | None = None
        if npz.is_file():
            import zipfile

            try:
                with zipfile.ZipFile(npz) as archive:
                    names = archive.namelist()
            except zipfile.BadZipFile as exc:
                raise ClipDataError(npz, None, "depth", f"not a readable .npz ({exc})") from None
            for key in ("depth", "timestamps"):
                if f"{key}.npy" not in names:
                    raise ClipDataError(npz, None, key, f"missing array; has {[n[:-4] for n in names]}")
            with np.load(npz, allow_pickle=False) as data:
                self.times = np.asarray(data["timestamps"], dtype=np.float64)  # small: one number per frame
            self.frames = NpzDepthFrames(npz)
            if len(self.frames) != len(self.times):
                raise ClipDataError(npz, None, "depth", f"expected (N, H, W) with N = len(timestamps) = "
                                    f"{len(self.times)}, got {self.frames.shape}")
            self.source = npz
        elif folder.is_dir():
            self.files = sorted(folder.glob("*.png"))
            stamps = folder / "timestamps.txt"
            if not stamps.is_file():
                raise ClipDataError(stamps, None, "timestamps", "a PNG depth folder needs timestamps.txt")
            lines = [ln.strip() for ln in stamps.read_text().splitlines() if ln.strip()]
            try:
                self.times = np.asarray([float(v) for v in lines])
            except ValueError as exc:
                raise ClipDataError(stamps, None, "timestamps", str(exc)) from None
            if len(self.times) != len(self.files):
                raise ClipDataError(stamps, None, "timestamps", f"{len(self.times)} times for {len(self.files)} PNGs")
            self.scale, self.source = scale, folder
        else:
            raise FileNotFoundError(recording / "depth.npz")

    def frame(self, index: int) -> np.ndarray:
        if self.frames is not None:
            return self.frames[index]
        with Image.open(self.files[index]) as image:
            if image.mode not in ("I;16", "I;16B", "I", "F"):
                raise ClipDataError(self.files[index], None, "mode", f"expected a 16-bit depth PNG, got {image.mode}")
            return np.asarray(image, dtype=np.float32) * self.scale

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()


# ---- pure helpers ----

def link_rgb_video(recording: Path, video: Path) -> Path:
    """``recording/rgb.mp4`` as a link to ``video`` (converters never copy or re-encode the source video); an existing
    ``rgb.mp4`` that is something else is refused."""
    link = recording / "rgb.mp4"
    if link.is_symlink() or link.exists():
        if link.resolve() != video.resolve():
            raise FileExistsError(f"{link} exists and is not a link to {video}")
    else:
        link.symlink_to(video.resolve())
    return link


def clip_starts(duration: float, stride: float, length: float = CLIP_SECONDS) -> list[float]:
    """Start times of the clips that fit entirely in [0, duration)."""
    count = int(math.floor((duration - length) / stride + 1e-9)) + 1 if duration >= length else 0
    return [round(i * stride, 9) for i in range(count)]


def nearest_indices(source_times: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each query time, the index of the nearest source time (ties go to the earlier frame)."""
    idx = np.clip(np.searchsorted(source_times, query), 1, len(source_times) - 1)
    left, right = source_times[idx - 1], source_times[idx]
    return np.where(query - left <= right - query, idx - 1, idx)


def centre_crop_box(width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the centred square crop."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def crop_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop then lanczos resize (RGB; depth goes through :func:`resize_depth`)."""
    h, w = image.shape[:2]
    x0, y0, side = centre_crop_box(w, h)
    crop = np.ascontiguousarray(image[y0: y0 + side, x0: x0 + side])
    if crop.dtype != np.uint8:
        crop = crop.astype(np.float32)
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.LANCZOS))


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Sensor depth convention: 0 (or negative, or non-finite) marks a hole."""
    depth = np.asarray(depth)
    return np.isfinite(depth) & (depth > 0)


def resize_depth(depth: np.ndarray, size: int, method: str = "min") -> np.ndarray:
    """Centre square crop and resize of one metric depth frame that keeps holes invalid (0 in the output).

    ``min``: each output pixel is the minimum valid depth of its source footprint (the nearest surface; rows and
    columns are split into ``size`` contiguous runs), 0 when the footprint has no valid pixel; when enlarging, this
    is the nearest source pixel. ``nearest``: the source pixel under the output pixel's centre. No interpolation,
    so no value is ever made up between a surface and a hole (or between two surfaces at an occlusion edge).
    """
    if method not in ("min", "nearest"):
        raise ValueError(f"depth resize method must be 'min' or 'nearest', got {method!r}")
    depth = np.asarray(depth, dtype=np.float32)
    h, w = depth.shape[:2]
    x0, y0, side = centre_crop_box(w, h)
    crop = depth[y0: y0 + side, x0: x0 + side]
    values = np.where(valid_depth(crop), crop, np.inf)
    if method == "min" and side >= size:
        starts = (np.arange(size) * side) // size
        pooled = np.minimum.reduceat(np.minimum.reduceat(values, starts, axis=0), starts, axis=1)
    else:
        centres = np.minimum(((np.arange(size) + 0.5) * side / size).astype(int), side - 1)
        pooled = values[np.ix_(centres, centres)]
    return np.where(np.isfinite(pooled), pooled, 0.0).astype(np.float32)


def normalize_depth(depth: np.ndarray) -> np.ndarray:
    """Per-clip min-max to [0, 1] over the valid pixels (> 0, finite); holes stay invalid as NaN (a constant clip
    becomes zeros). Holes must not count as the nearest depth: that would compress every valid value."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_depth(depth)
    if not valid.any():
        return np.full(depth.shape, np.nan, np.float32)
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    out = np.clip((depth - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return np.where(valid, out, np.nan).astype(np.float32)


def sample_gaze(times: np.ndarray, xy: np.ndarray, valid: np.ndarray, query: np.ndarray,
                max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of gaze at ``query`` between valid neighbours closer than ``max_gap`` seconds."""
    t, p = times[valid], xy[valid]
    out, ok = np.zeros((len(query), 2)), np.zeros(len(query), bool)
    if len(t) == 0:
        return out, ok
    idx = np.searchsorted(t, query)
    for i, (q, j) in enumerate(zip(query, idx)):
        if j < len(t) and abs(t[j] - q) < 1e-9:
            out[i], ok[i] = p[j], True
        elif 0 < j < len(t) and t[j] - t[j - 1] <= max_gap:
            w = (q - t[j - 1]) / (t[j] - t[j - 1])
            out[i], ok[i] = (1 - w) * p[j - 1] + w * p[j], True
    return out, ok


# ---- video ----

def probe_video(path: Path) -> tuple[int, int, float]:
    """(width, height, duration in seconds) of the first video stream; a stream whose container states no duration
    is timed by decoding it (frames over the average rate)."""
    try:
        info = video_info(path)
    except VideoError as exc:
        raise ClipDataError(path, None, "streams", str(exc).removeprefix(f"{path}: ")) from None
    duration = info.duration if info.duration is not None else duration_by_decoding(path)
    return info.width, info.height, duration


def iter_resampled_frames(path: Path, query: np.ndarray, size: int, seek_s: float | None = None,
                          stats: dict | None = None) -> Iterator[np.ndarray]:
    """Yield, for each query time (ascending, seconds from the stream start), the nearest frame cropped and resized.

    One decoding pass (:func:`egoforge.data.video.iter_nearest_frames`); only the picked frames are converted and
    nothing else is kept, so memory does not grow with the recording. ``seek_s``: start decoding at the keyframe
    before this time (a resumed run does not replay the stream from the beginning; H.264 decodes identically from a
    keyframe). ``stats["frames_decoded"]`` counts.
    """
    try:
        for frame in iter_nearest_frames(path, query, seek_s, stats):
            yield crop_resize(frame, size)
    except VideoError:
        raise ClipDataError(path, None, "frames", "the video has no decodable frames") from None


def resample_video(path: Path, query: np.ndarray, size: int) -> np.ndarray:
    """Frames nearest to each query time (seconds from the stream start), cropped and resized: (Q, S, S, 3)."""
    query = np.asarray(query, dtype=np.float64)
    order = np.argsort(query, kind="stable")
    out = np.zeros((len(query), size, size, 3), np.uint8)
    for i, frame in zip(order, iter_resampled_frames(path, query[order], size)):
        out[i] = frame
    return out


# ---- recordings -> clips ----

def recording_clips(recording: Path, settings: ClipSettings, done: Callable[[str], bool] | None = None,
                    stats: dict | None = None) -> Iterator[tuple[str, float, dict[str, np.ndarray]]]:
    """Yield (key, start time, {file name: array}) for every clip of one recording folder, one clip at a time.

    ``done(key)``: clips already written are not yielded; when every clip is done nothing is decoded, otherwise
    decoding starts at the keyframe before the first missing clip.
    """
    video = recording / "rgb.mp4"
    if not video.is_file():
        raise FileNotFoundError(f"{video}: every recording needs rgb.mp4 (it defines the clips)")
    width, height, duration = probe_video(video)
    starts = clip_starts(duration, settings.stride_s)
    base = recording.name.replace(".", "_")
    keys = [f"{base}__{i:04d}" for i in range(len(starts))]
    todo = [i for i, key in enumerate(keys) if done is None or not done(key)]
    if not todo:
        return
    first = todo[0]
    meta_path = recording / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    depth = None
    if (recording / "depth.npz").is_file() or (recording / "depth").is_dir():
        depth = DepthSource(recording, float(meta.get("depth_scale", settings.depth_scale)))
    gaze = read_gaze_csv(recording / "gaze.csv") if (recording / "gaze.csv").is_file() else None
    cam = read_tum(recording / "camera.txt") if (recording / "camera.txt").is_file() else None

    video_spec, traj_spec = MODALITIES["rgb"], MODALITIES["cam"]
    offsets = np.arange(video_spec.frames) / video_spec.fps
    # with an overlapping stride the frame times of consecutive clips interleave: decode them in time order
    video_t = np.asarray([s + o for s in starts[first:] for o in offsets])
    order = np.argsort(video_t, kind="stable")
    seek = max(0.0, starts[first] - 1.0) if first > 0 else None  # a margin so the nearest earlier frame is seen
    frames_by_query: dict[int, np.ndarray] = {}
    consumed = 0
    frames = iter_resampled_frames(video, video_t[order], settings.size, seek, stats)
    x0, y0, side = centre_crop_box(width, height)
    todo_set = set(todo)
    try:
        for n, i in enumerate(range(first, len(starts))):
            wanted = range(n * video_spec.frames, (n + 1) * video_spec.frames)
            while not all(q in frames_by_query for q in wanted):
                frames_by_query[int(order[consumed])] = next(frames)
                consumed += 1
            clip_frames = np.stack([frames_by_query.pop(q) for q in wanted])
            # only frames of later clips stay buffered (one clip's worth at most, more with an overlapping stride)
            if i not in todo_set:
                continue
            start = starts[i]
            arrays: dict[str, np.ndarray] = {"rgb.npy": clip_frames}
            vt = start + offsets
            tt = start + np.arange(traj_spec.frames) / traj_spec.fps
            if depth is not None:
                picks = nearest_indices(depth.times, vt) if len(depth.times) > 1 else np.zeros(len(vt), int)
                if np.all(np.abs(depth.times[picks] - vt) <= 0.5 / video_spec.fps):
                    metric = np.stack([resize_depth(depth.frame(p), settings.size, settings.depth_resize)
                                       for p in picks])
                    arrays["depth.npy"] = normalize_depth(metric).astype(np.float16)
                    arrays["depth_metric.npy"] = metric.astype(np.float16)
            if gaze is not None:
                xy, ok = sample_gaze(*gaze, tt, settings.gaze_max_gap_s)
                if ok.any():
                    uv = (xy - [x0, y0]) / side
                    uv = np.where(ok[:, None], uv, 0.0)
                    arrays["gaze.npy"] = np.concatenate([uv, ok[:, None]], 1).astype(np.float32)
            if cam is not None and cam[0][0] <= tt[0] + 1e-6 and cam[0][-1] >= tt[-1] - 1e-6:
                poses = interpolate_poses(cam[0], cam[1], np.clip(tt, cam[0][0], cam[0][-1]))
                arrays["cam.npy"] = poses.astype(np.float32)
            yield keys[i], start, arrays
    finally:
        frames.close()
        if depth is not None:
            depth.close()


def prepare_clips(raw_root: str | os.PathLike, out_root: str | os.PathLike, dataset: str,
                  settings: ClipSettings | None = None, progress: bool = True) -> dict[str, int]:
    """Cut every recording under ``raw_root`` into clips under ``out_root/dataset``; returns counts."""
    from tqdm import tqdm

    settings = settings or ClipSettings()
    check_dataset_name(dataset)
    raw_root, target = Path(raw_root), Path(out_root) / dataset
    if target.resolve() == raw_root.resolve() or raw_root.resolve() in target.resolve().parents:
        raise ValueError(f"output {target} lies inside the raw data {raw_root}: choose a separate folder")
    recordings = sorted(p for p in raw_root.iterdir() if p.is_dir() and (p / "rgb.mp4").is_file())
    if not recordings:
        raise FileNotFoundError(f"{raw_root}: no recording folders with rgb.mp4")
    counts = {"recordings": len(recordings), "clips": 0, "skipped": 0, "frames_decoded": 0}
    counts.update({m: 0 for m in MODALITIES})

    def done(key: str) -> bool:
        if (target / key / "meta.json").is_file():
            counts["skipped"] += 1
            return True
        return False

    for recording in tqdm(recordings, desc=f"clips {dataset}", disable=not progress):
        for key, start, arrays in recording_clips(recording, settings, done, counts):
            folder = target / key
            present = sorted(name[:-4] for name in arrays if name[:-4] in MODALITIES)
            with atomic_dir(folder) as tmp:
                for name, array in arrays.items():
                    np.save(tmp / name, array)
                meta = {"recording": recording.name, "start_s": start, "modalities": present, "size": settings.size}
                (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
            counts["clips"] += 1
            for m in present:
                counts[m] += 1
    return counts


def list_clips(root: str | os.PathLike) -> list[Path]:
    """Complete clip folders below ``root/<dataset>`` (or directly below ``root``), sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.glob("*/meta.json")) or sorted(p.parent for p in root.glob("*/*/meta.json"))


def has_modality(folder: str | os.PathLike, modality: str) -> bool:
    return (Path(folder) / MODALITIES[modality].clip_file).is_file()


def check_dataset_name(dataset: str) -> str:
    """A dataset name is one plain folder name: ``--dataset ../../x`` (or ``a/b``, ``/abs``) would write clips
    outside the output root."""
    if (not isinstance(dataset, str) or not dataset.strip() or dataset in (".", "..") or "\x00" in dataset
            or any(sep in dataset for sep in ("/", "\\")) or dataset != dataset.strip()):
        raise InputError(None, f"--dataset {dataset!r}: not a plain name (no '/', '\\', '..', surrounding spaces "
                         "or empty name)", fix="a dataset name becomes one folder under --out")
    return dataset


# modality -> values a clip array may hold besides finite numbers (depth holes are NaN by design)
_ALLOWED_NON_FINITE = {"depth": "nan"}


def check_finite(array: np.ndarray, path: str | os.PathLike, modality: str) -> np.ndarray:
    """Refuse NaN / infinity in a float clip array before it is tokenized or trained on (a single NaN pose or gaze
    sample turns every loss and metric into NaN, silently)."""
    if not np.issubdtype(array.dtype, np.floating):
        return array
    bad = np.isinf(array) if _ALLOWED_NON_FINITE.get(modality) == "nan" else ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "infinity" if _ALLOWED_NON_FINITE.get(modality) == "nan" else "NaN or infinity"
        raise ClipDataError(path, None, modality, f"{int(bad.sum())} value(s) are {kind} (first at index {first}); "
                            "re-run `egoforge egom2p prepare` on fixed inputs")
    return array


def load_clip(folder: str | os.PathLike, modality: str) -> np.ndarray | None:
    """One modality of one clip (None when the clip does not have it); refuses pickled arrays and NaN / infinity
    (depth: infinity; its holes are NaN)."""
    path = Path(folder) / MODALITIES[modality].clip_file
    if not path.is_file():
        return None
    return check_finite(np.load(path, allow_pickle=False), path, modality)
