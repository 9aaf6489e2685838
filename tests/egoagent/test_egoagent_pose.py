"""Ego-Exo4D body-pose preprocessing: coordinates against hand-computed values, fragments, filters, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egoforge.data.jsonio import DataFormatError
from egoforge.egoagent.data.egoexo_pose import (
    JOINT_NAMES,
    PoseOptions,
    fragment_ranges,
    load_pose_dir,
    preprocess,
    read_fragment,
)

# world -> camera: rotate 90 degrees about z (x -> y), then translate by (1, 2, 3)
ROTATION = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def extrinsics(shift: float) -> list[list[float]]:
    matrix = np.zeros((3, 4))
    matrix[:, :3] = ROTATION
    matrix[:, 3] = [1.0, 2.0, 3.0 + shift]
    return matrix.tolist()


def write_layout(root, n_frames=9, drop_camera_frame=None, body_override=None, split="train"):
    uid = "take0"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "takes.json").write_text(json.dumps([{"take_uid": uid, "take_name": "cooking_1"}]))
    body, cameras = {}, {}
    for f in range(n_frames):
        joints = {"nose": {"x": 1.0, "y": 0.0, "z": 0.0}, "left-wrist": {"x": 0.0, "y": 1.0, "z": 2.0 + f}}
        body[str(f)] = [{"annotation3D": joints}, {"annotation3D": {}}]  # only the first entry counts
        if f != drop_camera_frame:
            cameras[str(f)] = extrinsics(f)
    pose_root = root / "annotations" / "ego_pose" / split
    (pose_root / "body" / "annotation").mkdir(parents=True)
    (pose_root / "camera_pose").mkdir(parents=True)
    (pose_root / "body" / "annotation" / f"{uid}.json").write_text(json.dumps(body_override or body))
    (pose_root / "camera_pose" / f"{uid}.json").write_text(json.dumps({"aria01": {"camera_extrinsics": cameras}}))
    return uid


def run(root, out, coord, split="train"):
    report = preprocess(root, out, PoseOptions(coord=coord, splits=(split,)), progress=False)
    assert not report.errors, report.errors
    return report


@pytest.mark.parametrize("coord", ["camera", "global", "first_frame", "aria"])
def test_coordinates_by_hand(tmp_path, coord):
    uid = write_layout(tmp_path / "src")
    run(tmp_path / "src", tmp_path / "out", coord)
    frames = json.loads((tmp_path / "out" / "train" / f"{uid}_0-8.json").read_text())
    frame = frames["2"]
    nose, wrist = frame["pose"][JOINT_NAMES.index("nose")], frame["pose"][JOINT_NAMES.index("left-wrist")]
    if coord == "camera":  # E_2 @ X: R (1, 0, 0) + (1, 2, 5) = (0, 1, 0) + (1, 2, 5)
        assert nose == pytest.approx([1.0, 3.0, 5.0])
        assert wrist == pytest.approx([0.0, 2.0, 9.0])  # R (0, 1, 4) = (-1, 0, 4), + (1, 2, 5)
        assert frame["trajectory"] == pytest.approx([1.0, 2.0, 5.0])  # E_2's translation, as the official script
    elif coord == "global":  # world joints; trajectory = camera centre = -R^T t
        assert nose == pytest.approx([1.0, 0.0, 0.0])
        assert frame["trajectory"] == pytest.approx((-ROTATION.T @ np.array([1.0, 2.0, 5.0])).tolist())
    else:  # first frame's camera: E_0 @ X, trajectory = (E_0 inv(E_2))[:3, 3] = (0, 0, -2)
        assert nose == pytest.approx([1.0, 3.0, 3.0])
        assert frame["trajectory"] == pytest.approx([0.0, 0.0, -2.0])
    # joints not in annotation3D are missing: (-1, -1, -1) with confidence 0
    assert frame["pose"][JOINT_NAMES.index("right-ankle")] == [-1.0, -1.0, -1.0]
    assert frame["confidence"] == [1 if j in ("nose", "left-wrist") else 0 for j in JOINT_NAMES]


def test_frames_without_extrinsics_are_dropped_and_short_takes_skipped(tmp_path):
    uid = write_layout(tmp_path / "src", n_frames=9, drop_camera_frame=4)
    run(tmp_path / "src", tmp_path / "out", "camera")
    frames = json.loads(next((tmp_path / "out" / "train").glob(f"{uid}_*.json")).read_text())
    assert "4" not in frames and len(frames) == 8
    # 8 frames > 7 passes; 7 frames do not (train split only)
    short = tmp_path / "short"
    write_layout(short / "src", n_frames=7)
    report = preprocess(short / "src", short / "out", PoseOptions(splits=("train",)), progress=False)
    assert report.takes["train"] == 0 and "need > 7" in report.skipped[0]
    val = tmp_path / "val"
    write_layout(val / "src", n_frames=3, split="val")
    assert run(val / "src", val / "out", "camera", split="val").takes["val"] == 1


def test_fragments_of_100_with_5_overlap():
    assert fragment_ranges(250) == [(0, 100), (95, 250)]
    assert fragment_ranges(300) == [(0, 100), (95, 200), (195, 300)]
    assert fragment_ranges(60) == [(0, 60)]  # the official script writes nothing below 100 frames
    assert fragment_ranges(0) == []


def test_generated_layout_end_to_end(tmp_path):
    """The generated Ego-Exo4D layout: the skipped takes, the chosen Aria camera, readable fragments."""
    from egoforge.testing.egoagent_data import make_egoexo

    layout = make_egoexo(tmp_path / "src", train_takes=1, val_takes=1, frames=20)
    report = preprocess(layout.root, tmp_path / "out", progress=False)
    assert not report.errors
    assert report.takes == {"train": 1, "val": 1}
    reasons = " ".join(report.skipped)
    for uid in layout.skipped:
        assert uid in reasons
    poses = load_pose_dir(tmp_path / "out" / "train")
    (take,) = poses
    pose, visible = poses[take][0]
    assert pose.shape == (17, 3) and visible.shape == (17,)
    assert 10 not in poses[take]  # no extrinsics for frame 10 in the generated camera file


@pytest.mark.parametrize(
    "body, field",
    [
        ({"0": [{"annotation3D": {"nose": {"x": 1, "y": "a", "z": 0}}}]}, "annotation3D.nose"),
        ({"0": [{"no_annotation": {}}]}, "annotation3D"),
        ({"zero": [{"annotation3D": {}}]}, "frame"),
    ],
)
def test_bad_annotations_name_file_frame_and_field(tmp_path, body, field):
    write_layout(tmp_path / "src", body_override=body)
    report = preprocess(tmp_path / "src", tmp_path / "out", PoseOptions(splits=("train",)), progress=False)
    assert len(report.errors) == 1
    assert "take0.json" in report.errors[0] and f"field '{field}'" in report.errors[0]
    assert not (tmp_path / "out" / "train").exists() or not list((tmp_path / "out" / "train").iterdir())


def test_bad_camera_and_fragment_files(tmp_path):
    write_layout(tmp_path / "src")
    camera = tmp_path / "src" / "annotations" / "ego_pose" / "train" / "camera_pose" / "take0.json"
    camera.write_text(json.dumps({"aria01": {"camera_extrinsics": {"0": [[1, 0, 0]]}}}))
    report = preprocess(tmp_path / "src", tmp_path / "out", PoseOptions(splits=("train",)), progress=False)
    assert "row 0" in report.errors[0] and "3x4" in report.errors[0]
    camera.write_text("{not json")
    report = preprocess(tmp_path / "src", tmp_path / "out", PoseOptions(splits=("train",)), progress=False)
    assert "not valid JSON" in report.errors[0]
    fragment = tmp_path / "frag_0-0.json"
    fragment.write_text(json.dumps({"0": {"pose": [[0, 0, 0]] * 16, "confidence": [1] * 17}}))
    with pytest.raises(DataFormatError, match=r"frag_0-0.json, row 0, field 'pose'"):
        read_fragment(fragment)


def test_source_is_never_written(tmp_path):
    write_layout(tmp_path / "src")
    before = {p: p.read_bytes() for p in (tmp_path / "src").rglob("*") if p.is_file()}
    run(tmp_path / "src", tmp_path / "out", "camera")
    assert before == {p: p.read_bytes() for p in (tmp_path / "src").rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="outside the download"):
        preprocess(tmp_path / "src", tmp_path / "src" / "annotations" / "x", progress=False)


def test_takes_json_at_the_download_root(tmp_path):
    """A real Ego-Exo4D download keeps takes.json at its root (metadata/takes.json is accepted too)."""
    uid = write_layout(tmp_path / "src")
    (tmp_path / "src" / "metadata" / "takes.json").rename(tmp_path / "src" / "takes.json")
    report = run(tmp_path / "src", tmp_path / "out", "camera")
    assert report.takes["train"] == 1 and (tmp_path / "out" / "train" / f"{uid}_0-8.json").is_file()
