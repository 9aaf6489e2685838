"""Ego-Exo4D body-pose preprocessing, following the official ``dataset_preprocess/preprocess_egoexo_body_pose.py``.

Input (``ROOT`` = the egoexo download):

- ``ROOT/takes.json`` (the download's metadata; ``ROOT/metadata/takes.json`` also works): a list of takes with
  ``take_uid`` and ``take_name``; ``bouldering`` takes are skipped;
- ``ROOT/annotations/ego_pose/<split>/body/{annotation,automatic}/<take_uid>.json``: ``{frame: [{"annotation3D":
  {joint: {"x", "y", "z"}}}, ...]}``; only the first entry of a frame is used, automatic (pseudo) labels are
  preferred when present, and a joint absent from ``annotation3D`` is not visible;
- ``ROOT/annotations/ego_pose/<split>/camera_pose/<take_uid>.json``: ``{camera: {"camera_extrinsics": {frame: 3x4}}}``
  (world -> camera); the first camera whose name contains ``aria`` is the egocentric one; frames without
  extrinsics are dropped.

Output per take: ``OUT/<split>/<take_uid>_<first>-<last>.json`` fragments of 100 frames, each after the first
repeating the previous fragment's last 5 frames, ``{frame: {"pose": 17 x [x, y, z] (missing = [-1, -1, -1]),
"confidence": 17 x {1 visible, 0 not}, "trajectory": [x, y, z]}}``. Training takes need more than 7 (slice
window 5 + 2) frames. Differences from the official script, all deliberate: frames are ordered numerically; the
first frame *with extrinsics* anchors the ``first_frame`` frame (the script crashes otherwise); takes shorter
than 100 frames give one fragment (the script writes none for them); malformed files are reported with file,
frame and field and skipped instead of aborting the whole run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egoforge.data.atomic import atomic_write_json
from egoforge.data.jsonio import DataFormatError, read_json

JOINT_NAMES = ("nose", "left-eye", "right-eye", "left-ear", "right-ear", "left-shoulder", "right-shoulder",
               "left-elbow", "right-elbow", "left-wrist", "right-wrist", "left-hip", "right-hip", "left-knee",
               "right-knee", "left-ankle", "right-ankle")
MISSING = (-1.0, -1.0, -1.0)
SLICE_WINDOW = 5
COORDS = ("camera", "global", "first_frame")
COORD_ALIASES = {"aria": "first_frame", "none": "camera", "default": "camera"}
FRAGMENT_NAME = re.compile(r"^(?P<take>.+)_(?P<first>\d+)-(?P<last>\d+)\.json$")


@dataclass
class PoseOptions:
    coord: str = "camera"
    use_pseudo: bool = True
    splits: tuple[str, ...] = ("train", "val")
    # Training takes need more than slice_window + 2 annotated frames (official filter, train split only).
    min_train_frames: int = SLICE_WINDOW + 2
    skip_take_names: tuple[str, ...] = ("bouldering",)
    fragment_size: int = 100
    fragment_overlap: int = SLICE_WINDOW

    def __post_init__(self) -> None:
        self.coord = COORD_ALIASES.get(str(self.coord).lower(), str(self.coord).lower())
        if self.coord not in COORDS:
            raise ValueError(f"coord must be one of {COORDS} (or the official 'aria'), got {self.coord!r}")


@dataclass
class PoseReport:
    written: dict[str, int] = field(default_factory=dict)  # split -> fragments written
    takes: dict[str, int] = field(default_factory=dict)  # split -> takes written
    skipped: list[str] = field(default_factory=list)  # "take: reason" for takes filtered out on purpose
    errors: list[str] = field(default_factory=list)  # malformed inputs, one line each (file, frame, field)


def load_takes(path: str | os.PathLike) -> dict[str, dict]:
    """``takes.json`` -> {take_uid: take}."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, f"expected a list of takes, got {type(data).__name__}")
    takes = {}
    for row, take in enumerate(data):
        for key in ("take_uid", "take_name"):
            if not isinstance(take, dict) or not isinstance(take.get(key), str):
                raise DataFormatError(path, row, key, "missing or not a string")
        takes[take["take_uid"]] = take
    return takes


def egocentric_extrinsics(camera_json: dict, path: Path) -> dict[int, np.ndarray]:
    """{frame: 4x4 world->camera} of the first camera whose key contains ``aria``."""
    if not isinstance(camera_json, dict):
        raise DataFormatError(path, None, None, "expected an object of cameras")
    key = next((k for k in camera_json if "aria" in k), None)
    if key is None:
        raise DataFormatError(path, None, None, f"no Aria camera (keys: {sorted(camera_json)[:5]})")
    extrinsics = camera_json[key].get("camera_extrinsics") if isinstance(camera_json[key], dict) else None
    if not isinstance(extrinsics, dict):
        raise DataFormatError(path, None, f"{key}.camera_extrinsics", "missing or not an object of frames")
    result = {}
    for frame, matrix in extrinsics.items():
        array = np.asarray(matrix, dtype=np.float64) if isinstance(matrix, list) else None
        if array is None or array.shape != (3, 4) or not np.isfinite(array).all():
            raise DataFormatError(path, _frame_number(frame, path), f"{key}.camera_extrinsics",
                                  "expected a 3x4 matrix of finite numbers")
        full = np.eye(4)
        full[:3] = array
        result[_frame_number(frame, path)] = full
    return result


def _frame_number(frame: str, path: Path) -> int:
    try:
        return int(frame)
    except (TypeError, ValueError):
        raise DataFormatError(path, None, "frame", f"frame key {frame!r} is not an integer") from None


def parse_skeleton(annotation: dict, path: Path, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``annotation3D`` -> (joints [17, 3] with missing joints NaN, visible [17] in {0, 1})."""
    joints = np.full((len(JOINT_NAMES), 3), np.nan)
    visible = np.zeros(len(JOINT_NAMES), dtype=np.int64)
    for j, name in enumerate(JOINT_NAMES):
        if name not in annotation:
            continue
        point = annotation[name]
        try:
            joints[j] = [float(point["x"]), float(point["y"]), float(point["z"])]
        except (TypeError, KeyError, ValueError):
            raise DataFormatError(path, frame, f"annotation3D.{name}", "expected numbers x, y, z") from None
        if not np.isfinite(joints[j]).all():  # a NaN joint would poison every MPJPE and loss it enters
            raise DataFormatError(path, frame, f"annotation3D.{name}", "x, y, z must be finite (NaN or infinity "
                                  "found; leave a missing joint out instead)")
        visible[j] = 1
    return joints, visible


def read_body_annotation(data, path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{frame: (joints, visible)} from the first entry of each frame; frames with no entry are dropped."""
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None, "expected an object of frames")
    frames = {}
    for key, entries in data.items():
        frame = _frame_number(key, path)
        if not isinstance(entries, list):
            raise DataFormatError(path, frame, None, "expected a list of annotations")
        if not entries:
            continue  # the official script drops empty frames too
        annotation = entries[0].get("annotation3D") if isinstance(entries[0], dict) else None
        if not isinstance(annotation, dict):
            raise DataFormatError(path, frame, "annotation3D", "missing or not an object of joints")
        frames[frame] = parse_skeleton(annotation, path, frame)
    return frames


def to_homogeneous(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1)


def transform_take(frames: dict[int, tuple[np.ndarray, np.ndarray]], extrinsics: dict[int, np.ndarray],
                   coord: str) -> dict[int, dict]:
    """Express joints in ``coord`` and attach the camera trajectory, as the official script does:

    - ``global``: world joints; trajectory = camera centre in the world, inv(E_t)[:3, 3];
    - ``first_frame`` (official ``aria``): joints in the first frame's camera, E_0 @ X; trajectory =
      (E_0 @ inv(E_t))[:3, 3], the camera centre in that frame;
    - ``camera`` (default): joints in the current camera, E_t @ X; trajectory = E_t[:3, 3] (as in the script).

    Frames without extrinsics are dropped. Missing joints are written as (-1, -1, -1) after the transform.
    """
    kept = sorted(f for f in frames if f in extrinsics)
    if not kept:
        return {}
    first = extrinsics[kept[0]]
    result = {}
    for frame in kept:
        joints, visible = frames[frame]
        current = extrinsics[frame]
        if coord == "global":
            points, trajectory = joints, np.linalg.inv(current)[:3, 3]
        elif coord == "first_frame":
            points = (to_homogeneous(joints) @ first.T)[:, :3]
            trajectory = (first @ np.linalg.inv(current))[:3, 3]
        else:
            points, trajectory = (to_homogeneous(joints) @ current.T)[:, :3], current[:3, 3]
        points = np.where(visible[:, None] == 1, points, np.asarray(MISSING))
        result[frame] = {"pose": points.tolist(), "confidence": visible.tolist(), "trajectory": trajectory.tolist()}
    return result


def fragment_ranges(n_frames: int, size: int = 100, overlap: int = SLICE_WINDOW) -> list[tuple[int, int]]:
    """Index ranges [start, end) of the json fragments: 100 frames each, every fragment after the first also
    repeating the previous one's last ``overlap`` frames, the last one taking the remainder."""
    if n_frames <= 0:
        return []
    count = max(1, n_frames // size)
    ranges = []
    for i in range(count):
        start = 0 if i == 0 else i * size - overlap
        end = n_frames if i == count - 1 else (i + 1) * size
        ranges.append((start, end))
    return ranges


def _annotation_dirs(root: Path, split: str) -> tuple[Path, Path, Path]:
    body = root / "annotations" / "ego_pose" / split / "body"
    return body / "annotation", body / "automatic", root / "annotations" / "ego_pose" / split / "camera_pose"


def _uids(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def preprocess_split(root: Path, out: Path, split: str, options: PoseOptions, takes: dict[str, dict],
                     report: PoseReport, progress: bool = True) -> None:
    from tqdm import tqdm

    manual_dir, auto_dir, camera_dir = _annotation_dirs(root, split)
    if not manual_dir.is_dir() and not auto_dir.is_dir():
        raise DataFormatError(manual_dir.parent, None, None, f"no body annotations for split {split!r}")
    manual, automatic, cameras = _uids(manual_dir), _uids(auto_dir), _uids(camera_dir)
    candidates = sorted(automatic | manual if options.use_pseudo else manual)
    written = n_takes = 0
    for uid in tqdm(candidates, desc=f"ego_pose {split}", unit="take", disable=not progress):
        take = takes.get(uid)
        if take is None:
            report.skipped.append(f"{split}/{uid}: not in takes.json")
            continue
        if any(word in take["take_name"] for word in options.skip_take_names):
            report.skipped.append(f"{split}/{uid}: take name {take['take_name']!r} is excluded")
            continue
        if uid not in cameras:
            report.skipped.append(f"{split}/{uid}: no camera_pose file")
            continue
        source = auto_dir / f"{uid}.json" if options.use_pseudo and uid in automatic else manual_dir / f"{uid}.json"
        try:
            frames = read_body_annotation(read_json(source), source)
            camera_path = camera_dir / f"{uid}.json"
            extrinsics = egocentric_extrinsics(read_json(camera_path), camera_path)
        except DataFormatError as exc:
            report.errors.append(str(exc))
            continue
        if split == "train" and len(frames) <= options.min_train_frames:
            report.skipped.append(f"{split}/{uid}: {len(frames)} annotated frames (need > {options.min_train_frames})")
            continue
        motion = transform_take(frames, extrinsics, options.coord)
        if split == "train" and len(motion) <= options.min_train_frames:
            report.skipped.append(f"{split}/{uid}: {len(motion)} frames with extrinsics "
                                  f"(need > {options.min_train_frames})")
            continue
        ordered = sorted(motion)
        for start, end in fragment_ranges(len(ordered), options.fragment_size, options.fragment_overlap):
            chunk = {str(f): motion[f] for f in ordered[start:end]}
            atomic_write_json(out / split / f"{uid}_{ordered[start]}-{ordered[end - 1]}.json", chunk, indent=None)
            written += 1
        n_takes += 1 if ordered else 0
    report.written[split] = written
    report.takes[split] = n_takes


def preprocess(root: str | os.PathLike, out: str | os.PathLike, options: PoseOptions | None = None,
               progress: bool = True) -> PoseReport:
    """Preprocess every split of ``root`` into ``out``; the source tree is only read."""
    options = options or PoseOptions()
    root, out = Path(root), Path(out)
    annotations = (root / "annotations").resolve()
    if out.resolve() in (root.resolve(), annotations) or annotations in out.resolve().parents:
        raise ValueError(f"{out}: write the preprocessed poses outside the download's annotations")
    from egoforge.egoagent.data.takes import find_takes_json

    takes_json = find_takes_json(root)
    if takes_json is None:
        raise FileNotFoundError(f"{root}: no takes.json (looked in {root} and {root / 'metadata'})")
    takes = load_takes(takes_json)
    report = PoseReport()
    for split in options.splits:
        preprocess_split(root, out, split, options, takes, report, progress)
    return report


# --- reading the preprocessed fragments (stage 2 data) -------------------------------------------------------


def read_fragment(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One fragment -> {frame: (pose [17, 3] float32, confidence [17] int64)}, validated."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None, "expected an object of frames")
    frames = {}
    for key, entry in data.items():
        frame = _frame_number(key, path)
        if not isinstance(entry, dict):
            raise DataFormatError(path, frame, None, "expected an object with pose, confidence, trajectory")
        pose = np.asarray(entry.get("pose"), dtype=np.float32) if isinstance(entry.get("pose"), list) else None
        if pose is None or pose.shape != (len(JOINT_NAMES), 3):
            raise DataFormatError(path, frame, "pose", f"expected {len(JOINT_NAMES)} x 3 numbers")
        if not np.isfinite(pose).all():
            raise DataFormatError(path, frame, "pose", "NaN or infinity (missing joints are written as -1, -1, -1)")
        trajectory = entry.get("trajectory")
        if trajectory is not None and (not isinstance(trajectory, list)
                                       or not np.isfinite(np.asarray(trajectory, dtype=np.float64)).all()):
            raise DataFormatError(path, frame, "trajectory", "expected finite numbers")
        confidence = entry.get("confidence")
        if not isinstance(confidence, list) or len(confidence) != len(JOINT_NAMES) or \
                any(c not in (0, 1) for c in confidence):
            raise DataFormatError(path, frame, "confidence", f"expected {len(JOINT_NAMES)} flags 0/1")
        frames[frame] = (pose, np.asarray(confidence, dtype=np.int64))
    return frames


def load_pose_dir(folder: str | os.PathLike, takes: Iterable[str] | None = None
                  ) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Every ``<take>_<first>-<last>.json`` fragment of ``folder`` merged per take (overlaps deduplicated)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, None, None, "pose folder not found (run `egoforge egoagent poses` first)")
    wanted = set(takes) if takes is not None else None
    merged: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for path in sorted(folder.glob("*.json")):
        match = FRAGMENT_NAME.match(path.name)
        if not match:
            continue
        take = match["take"]
        if wanted is None or take in wanted:
            merged.setdefault(take, {}).update(read_fragment(path))
    return merged
