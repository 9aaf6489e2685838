"""Stage-2 data: windows of egocentric frames (states) interleaved with body motion (actions) per take.

A window starting at frame f0 has states at ``f_t = f0 + t * stride`` (t = 0..history) and, between state t and
t + 1, the action ``a_t`` = the body pose at ``action_frames`` evenly spaced frames after f_t, the last being
f_{t+1}. A window is used only when every state has an image and every action frame has a pose (joints may
still be invisible; they are masked). [INFERENCE] The paper's stride, history length and action definition are
not public; these are recipe options (``data.history``, ``data.stride``, ``data.action_frames``).

Frames come from ``FRAMES_ROOT/<take_uid>/**/frame_<index>.jpg`` (what ``egoforge egoagent undistort`` writes, and
the official ``processed_data`` layout); poses from the fragments of ``egoforge egoagent poses``, named by take uid.
Given the download's ``takes.json``, frame folders named by the take name (``FRAMES_ROOT/<take_name>/``, the name of
the take's folder in ``takes/``) are found too. Takes whose frames are not found are counted and named in the
error when no window is left, so a layout mismatch is never a silent empty or partial dataset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from egoforge.egoagent.data.egoexo_pose import load_pose_dir
from egoforge.egoagent.data.images import open_rgb
from egoforge.egoagent.data.takes import TakeIndex, load_take_index
from egoforge.egoagent.data.transforms import TwoViews, eval_transform, seeded

FRAME_FILE = re.compile(r"^frame_(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class SequenceSpec:
    history: int = 4
    stride: int = 5
    action_frames: int = 1
    window_step: int = 1  # keep every n-th valid window start
    pose_scale: float = 1.0  # multiply coordinates (Ego-Exo4D poses are in metres)

    def __post_init__(self) -> None:
        if self.history < 1 or self.stride < 1 or self.action_frames < 1 or self.window_step < 1:
            raise ValueError("history, stride, action_frames and window_step must be >= 1")
        if self.stride % self.action_frames:
            raise ValueError(f"stride {self.stride} must be a multiple of action_frames {self.action_frames}")

    def state_frames(self, start: int) -> list[int]:
        return [start + t * self.stride for t in range(self.history + 1)]

    def action_frame_offsets(self) -> list[int]:
        step = self.stride // self.action_frames
        return [step * (j + 1) for j in range(self.action_frames)]


def frame_folder(frames_root: str | os.PathLike, take_uid: str, index: TakeIndex | None = None) -> Path | None:
    """The folder holding a take's frames: ``frames_root/<take_uid>``, else (with ``index``) the folder named by
    the take's folder or take name; None when there is none."""
    for name in index.aliases(take_uid) if index is not None else [take_uid]:
        folder = Path(frames_root) / name
        if folder.is_dir():
            return folder
    return None


def find_frame_files(frames_root: str | os.PathLike, take: str, index: TakeIndex | None = None) -> dict[int, Path]:
    """{frame index: image path} below the take's frame folder (see :func:`frame_folder`)."""
    found = {}
    folder = frame_folder(frames_root, take, index)
    if folder is None:
        return found
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            match = FRAME_FILE.match(name)
            if match:
                found.setdefault(int(match.group(1)), Path(dirpath, name))
    return found


def window_starts(image_frames: set[int], pose_frames: set[int], spec: SequenceSpec) -> list[int]:
    """Window start frames whose states all have images and whose actions all have poses."""
    offsets = spec.action_frame_offsets()
    starts = []
    for start in sorted(image_frames):
        states = spec.state_frames(start)
        if not all(f in image_frames for f in states):
            continue
        if all(f + o in pose_frames for f in states[:-1] for o in offsets):
            starts.append(start)
    return starts[:: spec.window_step]


def missing_frames_hint(takes: list[str], frames_root: str | os.PathLike, index: TakeIndex | None) -> str:
    """Why takes have no frames: which ones, and what the frame folders are named instead."""
    if not takes:
        return ""
    root = Path(frames_root)
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    hint = f"; {len(takes)} takes have no frame folder (first: {takes[0]})"
    if present:
        hint += f"; the frame folders there are named like {present[:3]}"
        if index is None:
            hint += (": if they are take names (takes/<take_name>), pass the download's takes.json "
                     "(data.takes_json / --takes-json), or re-run `egoforge egoagent undistort`, which writes "
                     "<take_uid> folders")
    return hint


class JointSequenceDataset(Dataset):
    """Item -> ``student [H, 3, S, S]`` (the student's view of states 0..H-1), ``observer [H+1, 3, S, S]`` (the EMA
    observer's view of states 0..H), ``actions [H, k, 17, 3]``, ``visible [H, k, 17]``, ``frame_ids [H+1]``.

    Training draws two DINO global crops per frame (student / observer); evaluation uses one centre crop for both.
    """

    def __init__(self, pose_dir: str | os.PathLike, frames_root: str | os.PathLike, spec: SequenceSpec,
                 image_size: int, train: bool = True, view_scale: tuple[float, float] = (0.4, 1.0),
                 photometric: bool = True, takes_json: str | os.PathLike | None = None) -> None:
        self.spec, self.train = spec, train
        poses = load_pose_dir(pose_dir)
        index = load_take_index(takes_json) if takes_json else None
        no_frames = []
        self.poses: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.images: dict[str, dict[int, Path]] = {}
        self.windows: list[tuple[str, int]] = []
        for take in sorted(poses):
            images = find_frame_files(frames_root, take, index)
            if not images:
                no_frames.append(take)
            starts = window_starts(set(images), set(poses[take]), spec)
            if starts:
                self.poses[take], self.images[take] = poses[take], images
                self.windows += [(take, s) for s in starts]
        if not self.windows:
            raise ValueError(f"no usable windows: {len(poses)} takes in {pose_dir}, frames under {frames_root} "
                             f"(history {spec.history}, stride {spec.stride}, action_frames {spec.action_frames})"
                             + missing_frames_hint(no_frames, frames_root, index))
        if no_frames:
            import warnings

            warnings.warn(f"{len(no_frames)} of {len(poses)} takes in {pose_dir} have no frames under {frames_root}"
                          + missing_frames_hint(no_frames, frames_root, index), stacklevel=2)
        # Every state frame gets a stable id, so retrieval can name the true future frame among candidates.
        frames = sorted({(take, f) for take, s in self.windows for f in spec.state_frames(s)})
        self.frame_ids = {key: i for i, key in enumerate(frames)}
        self.views = TwoViews(image_size, view_scale, photometric) if train else eval_transform(image_size)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, item)
        take, start = self.windows[index]
        states = self.spec.state_frames(start)
        images = [open_rgb(self.images[take][f]) for f in states]
        if self.train:
            with seeded(seed):
                views = torch.stack([self.views(image) for image in images])  # [H+1, 2, 3, S, S]
            student, observer = views[:-1, 0], views[:, 1]
        else:
            observer = torch.stack([self.views(image) for image in images])
            student = observer[:-1]
        offsets = self.spec.action_frame_offsets()
        joints = np.stack([[self.poses[take][f + o][0] for o in offsets] for f in states[:-1]])
        visible = np.stack([[self.poses[take][f + o][1] for o in offsets] for f in states[:-1]])
        return {
            "student": student,
            "observer": observer,
            "actions": torch.from_numpy(joints * self.spec.pose_scale).float(),
            "visible": torch.from_numpy(visible).long(),
            "frame_ids": torch.tensor([self.frame_ids[(take, f)] for f in states]),
        }
