"""Hostile inputs to ``egoforge egoagent``: each case's exit code and message, sources unchanged, no partial output.

Covers issue 17's egoagent findings: frames of two videos with the same name (``a/tour.mp4 b/tour.mp4``) keyed by
their relative path, never served from each other's folder; ``frames T/take1.mp4 --out T`` never swaps away the
user's ``T/take1/``; NaN joints in pose inputs; an empty ImageFolder for ``knn``; missing ``--model`` /
``--checkpoint`` folders; input errors that exited 1.
"""

from __future__ import annotations

import json
import shutil

import pytest
from case_runner import Case, check, digest, run_cli


@pytest.fixture(scope="module")
def ego(tmp_path_factory) -> dict:
    from egoforge.testing.egoagent_data import make_egoexo, make_walking_tours

    work = tmp_path_factory.mktemp("hostile_egoagent")
    venice = make_walking_tours(work / "gen_a", cities=("Venice",), seconds=2, fps=5, size=(48, 32))[0]
    amsterdam = make_walking_tours(work / "gen_b", cities=("Amsterdam",), seconds=2, fps=5, size=(48, 32), seed=3)[0]
    for folder, video in (("a", venice), ("b", amsterdam)):  # two different videos, one name
        (work / "videos" / folder).mkdir(parents=True)
        shutil.copy(video, work / "videos" / folder / "tour.mp4")
    take = work / "T"
    (take / "take1").mkdir(parents=True)
    shutil.copy(venice, take / "take1.mp4")
    (take / "take1" / "notes.txt").write_text("the user's own notes\n")
    # an Ego-Exo4D miniature whose body annotation holds a NaN joint
    layout = make_egoexo(work / "egoexo", train_takes=1, val_takes=1, frames=30)
    annotation = next((layout.root / "annotations" / "ego_pose" / "val" / "body").rglob("*.json"))
    data = json.loads(annotation.read_text())
    first = next(k for k, v in data.items() if v)
    joint = next(iter(data[first][0]["annotation3D"]))
    data[first][0]["annotation3D"][joint]["x"] = float("nan")
    annotation.write_text(json.dumps(data))
    (work / "empty_images" / "class_a").mkdir(parents=True)
    (work / "model").mkdir()
    return {"work": work, "videos": work / "videos", "take": take, "egoexo": layout.root, "annotation": annotation,
            "joint": joint, "frame": first, "empty_images": work / "empty_images", "model": work / "model"}


def _frames(*videos, out: str, extra=()):
    return lambda f: ["egoagent", "frames", *[f["videos"] / v for v in videos], "--out", f["work"] / out, *extra]


CASES = [
    Case("frames T/take1.mp4 --out T over the user's T/take1/",
         lambda f: ["egoagent", "frames", f["take"] / "take1.mp4", "--out", f["take"]], 2,
         "is a folder egoforge did not write", lambda f: [f["take"] / "take1", f["take"] / "take1.mp4"]),
    Case("frames: one video given twice", _frames("a/tour.mp4", "a/tour.mp4", out="twice"), 2,
         "would be extracted into the same folder", lambda f: [f["videos"]], lambda f: [f["work"] / "twice"]),
    Case("frames: a missing video", _frames("a/nothing.mp4", out="missing"), 2, "nothing.mp4: file not found",
         absent=lambda f: [f["work"] / "missing"]),
    Case("knn --model missing", lambda f: ["egoagent", "knn", "--model", f["work"] / "no_model", "--train",
                                           f["empty_images"], "--val", f["empty_images"], "--out", f["work"] / "k1"],
         2, "no_model: model folder not found", absent=lambda f: [f["work"] / "k1"]),
    Case("knn with an ImageFolder without images", lambda f: ["egoagent", "knn", "--model", f["model"], "--train",
                                                              f["empty_images"], "--val", f["empty_images"], "--out",
                                                              f["work"] / "k2"],
         2, "empty_images: no images (1 class folders", absent=lambda f: [f["work"] / "k2"]),
    Case("world --checkpoint missing", lambda f: ["egoagent", "world", "--checkpoint", f["work"] / "no_ckpt",
                                                  "--pose-dir", f["work"], "--frames-root", f["work"], "--out",
                                                  f["work"] / "w"], 2, "no_ckpt: model folder not found",
         absent=lambda f: [f["work"] / "w"]),
    Case("export --checkpoint missing", lambda f: ["egoagent", "export", "--checkpoint", f["work"] / "no_ckpt",
                                                   "--out", f["work"] / "exp"], 2, "no_ckpt: model folder not found",
         absent=lambda f: [f["work"] / "exp"]),
    Case("export of a folder that is no checkpoint", lambda f: ["egoagent", "export", "--checkpoint", f["model"],
                                                                "--out", f["work"] / "exp2"], 2,
         "not an EgoAgent trainer checkpoint", absent=lambda f: [f["work"] / "exp2"]),
    Case("poses with a missing root", lambda f: ["egoagent", "poses", "--root", f["work"] / "no_root", "--out",
                                                 f["work"] / "p0"], 2, "no takes.json",
         absent=lambda f: [f["work"] / "p0"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_egoagent(case, ego, capsys):
    check(case, ego, capsys)


def test_frames_of_same_named_videos_are_kept_apart(ego, capsys):
    out = ego["work"] / "both"
    code, stdout, err = run_cli(["egoagent", "frames", ego["videos"] / "a" / "tour.mp4", ego["videos"] / "b" /
                                 "tour.mp4", "--out", out], capsys)
    assert code == 0, err
    assert "already extracted" not in stdout
    a, b = out / "a" / "tour", out / "b" / "tour"
    assert sorted(p.name for p in a.glob("*.jpg")) == sorted(p.name for p in b.glob("*.jpg")) != []
    assert digest(a / "frame_0000000.jpg") != digest(b / "frame_0000000.jpg")  # b's frames, not a's
    index = (out / "frames_index.txt").read_text().splitlines()
    assert "a/tour/frame_0000000.jpg" in index and "b/tour/frame_0000000.jpg" in index
    # a rerun finds both, each its own
    code, stdout, _ = run_cli(["egoagent", "frames", ego["videos"] / "a" / "tour.mp4", ego["videos"] / "b" /
                               "tour.mp4", "--out", out], capsys)
    assert code == 0 and stdout.count("already extracted") == 2


def test_frames_folder_of_another_video_is_refused(ego, capsys):
    """``frames a/tour.mp4 --out G`` then ``frames b/tour.mp4 --out G``: both key to ``G/tour``; the second run
    used to say "already extracted" and serve a's frames for b."""
    out = ego["work"] / "one_by_one"
    assert run_cli(["egoagent", "frames", ego["videos"] / "a" / "tour.mp4", "--out", out], capsys)[0] == 0
    before = digest(out / "tour")
    case = Case("frames b/tour.mp4 into a/tour.mp4's folder",
                lambda f: ["egoagent", "frames", f["videos"] / "b" / "tour.mp4", "--out", out], 2,
                "holds the frames of another video", lambda f: [f["videos"]])
    err = check(case, ego, capsys)
    assert str((ego["videos"] / "a" / "tour.mp4").resolve()) in err and digest(out / "tour") == before


def test_nan_joint_in_a_body_annotation_is_named(ego, capsys):
    out = ego["work"] / "poses"
    before = digest(ego["egoexo"])
    code, _, err = run_cli(["egoagent", "poses", "--root", ego["egoexo"], "--out", out, "--splits", "val"], capsys)
    assert code == 1 and "Traceback" not in err  # the take is reported as an error; the others are written
    assert f"{ego['annotation']}, row {ego['frame']}, field 'annotation3D.{ego['joint']}': x, y, z must be finite" \
        in err, err
    assert digest(ego["egoexo"]) == before
    assert not list(out.rglob(f"{ego['annotation'].stem}_*.json"))


@pytest.mark.parametrize("field, value", [("pose", float("nan")), ("trajectory", float("inf"))])
def test_non_finite_pose_fragment_is_refused(tmp_path, field, value):
    from egoforge.data.jsonio import DataFormatError
    from egoforge.egoagent.data.egoexo_pose import JOINT_NAMES, read_fragment

    entry = {"pose": [[0.0, 0.0, 1.0]] * len(JOINT_NAMES), "confidence": [1] * len(JOINT_NAMES),
             "trajectory": [0.0, 0.0, 0.0]}
    path = tmp_path / "take_0-0.json"
    path.write_text(json.dumps({"0": entry}))
    assert set(read_fragment(path)) == {0}
    if field == "pose":
        entry["pose"] = [[value, 0.0, 1.0]] + entry["pose"][1:]
    else:
        entry["trajectory"] = [value, 0.0, 0.0]
    path.write_text(json.dumps({"0": entry}))
    with pytest.raises(DataFormatError, match=f"row 0, field '{field}'"):
        read_fragment(path)


def test_stage2_init_from_missing_folder_is_not_found(tmp_path):
    """The stage-2 recipe's ``stage2.init_from`` goes through ``resolve_model_path``: "not found" at once."""
    from types import SimpleNamespace

    from egoforge.data.models import ModelNotFoundError
    from egoforge.egoagent.train.stage2 import Stage2Trainer

    trainer = SimpleNamespace(config=SimpleNamespace(stage2=SimpleNamespace(init_from=str(tmp_path / "no_stage1"))))
    with pytest.raises(ModelNotFoundError, match="stage2.init_from .*no_stage1: model folder not found"):
        Stage2Trainer.initialise(trainer, None, None, None)
