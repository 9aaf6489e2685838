"""Frame extraction (PyAV), the frame index, undistortion adapter and stage-1 / stage-2 datasets."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
import torch
from PIL import Image

from egoforge.egoagent.data import undistort
from egoforge.egoagent.data.egoexo_pose import preprocess
from egoforge.egoagent.data.frames import INDEX_NAME, VideoError, extract_video, extract_videos
from egoforge.egoagent.data.images import FrameDataset, frame_paths
from egoforge.egoagent.data.sampler import ResumableSampler
from egoforge.egoagent.data.sequences import JointSequenceDataset, SequenceSpec, window_starts
from egoforge.egoagent.data.transforms import MultiCrop, MultiCropSpec
from egoforge.egoagent.data.undistort import (
    MissingDependencyError,
    find_take_media,
    require_projectaria,
    undistort_takes,
    undistort_video,
)
from egoforge.testing.egoagent_data import make_egoexo, make_walking_tours


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    return make_walking_tours(tmp_path_factory.mktemp("tour"), cities=("Venice",), seconds=3, fps=10)[0]


def test_one_frame_per_second_named_by_source_index(tour, tmp_path):
    result = extract_video(tour, tmp_path, progress=False)
    assert (result.fps, result.every, result.frames) == (10.0, 10, 3)
    names = sorted(p.name for p in (tmp_path / tour.stem).glob("*.jpg"))
    assert names == ["frame_0000000.jpg", "frame_0000010.jpg", "frame_0000020.jpg"]
    again = extract_video(tour, tmp_path, progress=False)
    assert again.skipped  # a finished video is not decoded twice
    five = extract_video(tour, tmp_path, every=5, max_side=48, progress=False)  # new settings: re-extracted
    assert not five.skipped and five.frames == 6
    assert Image.open(tmp_path / tour.stem / "frame_0000005.jpg").size == (48, 32)


def test_index_and_dataset(tour, tmp_path):
    extract_videos([tour], tmp_path, progress=False)
    assert (tmp_path / INDEX_NAME).read_text().splitlines()[0] == f"{tour.stem}/frame_0000000.jpg"
    spec = MultiCropSpec(global_size=32, local_size=16, local_crops=3, init_crop_size=None)
    dataset = FrameDataset([tmp_path], MultiCrop(spec))
    item = dataset[(1, 1234)]
    assert item["global_crops"].shape == (2, 3, 32, 32) and item["local_crops"].shape == (3, 3, 16, 16)
    torch.testing.assert_close(dataset[(1, 1234)]["local_crops"], item["local_crops"])  # seeded crops
    assert not torch.equal(dataset[(1, 99)]["local_crops"], item["local_crops"])


def test_bad_videos_and_index_entries(tmp_path):
    with pytest.raises(VideoError, match="file not found"):
        extract_video(tmp_path / "missing.mp4", tmp_path / "out", progress=False)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="fake.mp4: cannot open as a video"):
        extract_video(fake, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "fake").exists()  # nothing half-written
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / INDEX_NAME).write_text("a.jpg\n../../etc/passwd\n")
    with pytest.raises(ValueError, match=r"frames_index.txt, line 2: .*escapes the data root"):
        frame_paths(tmp_path / "frames")
    (tmp_path / "frames" / INDEX_NAME).write_text("broken.jpg\n")
    (tmp_path / "frames" / "broken.jpg").write_bytes(b"\x00" * 10)
    dataset = FrameDataset([tmp_path / "frames"], MultiCrop(MultiCropSpec(init_crop_size=None)))
    with pytest.raises(ValueError, match="broken.jpg: cannot decode image"):
        dataset[0]


def test_sampler_shards_and_resumes():
    full = [i for i, _ in ResumableSampler(10, seed=3)]
    assert sorted(full) == list(range(10))
    ranks = [[i for i, _ in ResumableSampler(10, 3, rank=r, world_size=3)] for r in range(3)]
    assert sum(map(len, ranks)) == 9 and not set(ranks[0]) & set(ranks[1])  # disjoint, tail dropped
    sampler = ResumableSampler(10, seed=3)
    sampler.set_position(epoch=0, start=4)
    assert list(sampler) == list(ResumableSampler(10, seed=3))[4:]  # same indices and augmentation seeds
    sampler.set_position(epoch=1, start=0)
    assert [i for i, _ in sampler] != full


def test_undistortion_needs_projectaria(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_projectaria(name, *args, **kwargs):
        if name.startswith("projectaria_tools"):
            raise ImportError("No module named 'projectaria_tools'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_projectaria)
    with pytest.raises(MissingDependencyError, match="pip install projectaria-tools"):
        require_projectaria()
    with pytest.raises(MissingDependencyError):
        undistort_takes(tmp_path, tmp_path / "out", progress=False)


def test_undistortion_loop_and_take_layout(tour, tmp_path):
    """The frame loop with a known remap (a horizontal flip), and the Ego-Exo4D take layout lookup."""
    count = undistort_video(tour, tmp_path / "take" / "aria01_214-1", remap=lambda frame: frame[:, ::-1], every=5)
    assert count == 6
    first = np.asarray(Image.open(tmp_path / "take" / "aria01_214-1" / "frame_0.jpg")).astype(int)
    with __import__("av").open(str(tour)) as container:
        original = np.asarray(next(container.decode(video=0)).to_image()).astype(int)
    assert np.abs(first - original[:, ::-1]).mean() < 8  # JPEG round trip of the flipped frame


@pytest.fixture()
def known_remap(monkeypatch):
    """Undistortion without projectaria_tools: the identity remap stands in for the calibrated one."""
    monkeypatch.setattr(undistort, "require_projectaria", lambda: None)
    monkeypatch.setattr(undistort, "aria_pinhole_remap", lambda vrs, size: (lambda frame: frame))


def test_undistort_real_take_layout_feeds_stage2(known_remap, tmp_path):
    """A real download names take folders by take_name (takes.json root_dir ``takes/<take_name>``) while the poses
    are keyed by take_uid: undistortion writes <take_uid> folders, so every training take gets its windows."""
    layout = make_egoexo(tmp_path / "egoexo4d", train_takes=2, val_takes=1, frames=40, videos=True)
    takes = json.loads((layout.root / "metadata" / "takes.json").read_text())
    assert all((layout.root / take["root_dir"]).is_dir() for take in takes)  # folders by name, not uid
    written = undistort_takes(layout.root / "takes", tmp_path / "frames", progress=False)
    assert not preprocess(layout.root, tmp_path / "poses", progress=False).errors
    spec = SequenceSpec(history=3, stride=5, action_frames=1)
    dataset = JointSequenceDataset(tmp_path / "poses" / "train", tmp_path / "frames", spec, image_size=32)
    assert {take for take, _ in dataset.windows} == set(layout.takes["train"])
    assert written == {take["take_uid"]: (8 if take["take_name"] != "walk_short" else 2) for take in takes}
    uid = layout.takes["train"][0]
    frames = sorted(p.name for p in (tmp_path / "frames" / uid / "aria01_214-1").iterdir())
    assert frames[:3] == [".egoforge-output", "frame_0.jpg", "frame_10.jpg"]  # the marker: egoforge wrote it
    # frames 0, 5, ..., 35 kept; frame 10 has no extrinsics (no pose), so windows start at 10, 15 and 20
    assert sorted(dataset.windows) == sorted((take, start) for take in layout.takes["train"] for start in (10, 15, 20))
    # a selection by take name, and a re-run that skips finished takes
    name = next(t["take_name"] for t in takes if t["take_uid"] == uid)
    assert undistort_takes(layout.root / "takes", tmp_path / "frames", [name], progress=False) == {}


def test_frames_named_by_take_name_need_takes_json(known_remap, tmp_path):
    """Frame folders named by take (e.g. written by another tool): found through takes.json, else a loud error."""
    layout = make_egoexo(tmp_path / "egoexo4d", train_takes=2, val_takes=1, frames=40)
    takes = json.loads((layout.root / "metadata" / "takes.json").read_text())
    for take in takes:  # rename <uid> -> <take_name>
        if (layout.frames_root / take["take_uid"]).is_dir():
            (layout.frames_root / take["take_uid"]).rename(layout.frames_root / take["take_name"])
    preprocess(layout.root, tmp_path / "poses", progress=False)
    spec = SequenceSpec(history=3, stride=5, action_frames=1)
    with pytest.raises(ValueError, match=r"no usable windows.*have no frame folder.*named like \['bouldering_wall_0'"
                                         r".*takes.json"):
        JointSequenceDataset(tmp_path / "poses" / "train", layout.frames_root, spec, image_size=32)
    dataset = JointSequenceDataset(tmp_path / "poses" / "train", layout.frames_root, spec, image_size=32,
                                   takes_json=layout.root / "metadata" / "takes.json")
    assert {take for take, _ in dataset.windows} == set(layout.takes["train"])


def test_take_lookup_errors(known_remap, tmp_path):
    layout = make_egoexo(tmp_path / "egoexo4d", train_takes=1, val_takes=0, frames=12, videos=True)
    takes_root = layout.root / "takes"
    moved = tmp_path / "elsewhere" / "takes"
    moved.parent.mkdir()
    takes_root.rename(moved)
    with pytest.raises(FileNotFoundError, match=r"no takes.json .* --takes-json"):
        find_take_media(moved)
    (moved / "stray_folder").mkdir()
    (moved / "walk_train_0" / "aria01_noimagestreams.vrs").unlink()
    with pytest.raises(FileNotFoundError) as error:
        find_take_media(moved, index=undistort.take_index_for(moved, layout.root / "metadata" / "takes.json"))
    assert "stray_folder: not a take of" in str(error.value)
    assert "walk_train_0: no egocentric VRS" in str(error.value)
    media = find_take_media(moved, ["bouldering_wall_0"],
                            undistort.take_index_for(moved, layout.root / "metadata" / "takes.json"))
    assert [m.take_name for m in media] == ["bouldering_wall_0"] and media[0].video.name == "aria01_214-1.mp4"
    with pytest.raises(FileNotFoundError, match="nope: not a take of"):
        find_take_media(moved, ["nope"], undistort.take_index_for(moved, layout.root / "metadata" / "takes.json"))


def test_sequence_windows_and_items(egoagent_data):
    spec = SequenceSpec(history=3, stride=5, action_frames=1)
    # states need images, actions need poses at the next state frame
    assert window_starts({0, 5, 10, 15, 20}, {5, 10, 15, 20}, spec) == [0, 5]
    assert window_starts({0, 5, 10, 15}, {5, 15}, spec) == []
    with pytest.raises(ValueError, match="multiple of action_frames"):
        SequenceSpec(stride=5, action_frames=2)
    dataset = JointSequenceDataset(egoagent_data / "body_pose" / "train", egoagent_data / "egoexo4d" /
                                   "processed_data", spec, image_size=32)
    item = dataset[(0, 7)]
    assert item["student"].shape == (3, 3, 32, 32) and item["observer"].shape == (4, 3, 32, 32)
    assert item["actions"].shape == (3, 1, 17, 3) and item["visible"].shape == (3, 1, 17)
    take, start = dataset.windows[0]
    expected = json.loads(next((egoagent_data / "body_pose" / "train").glob(f"{take}_*.json")).read_text())
    np.testing.assert_allclose(item["actions"][0, 0].numpy(), expected[str(start + 5)]["pose"], rtol=1e-6)
    evaluation = JointSequenceDataset(egoagent_data / "body_pose" / "val", egoagent_data / "egoexo4d" /
                                      "processed_data", spec, image_size=32, train=False)
    item = evaluation[0]
    torch.testing.assert_close(item["student"], item["observer"][:-1])  # one centre crop for both


def test_extraction_progress_bar_reaches_100_percent(tour, tmp_path, capsys):
    from egoforge.egoagent.data.frames import expected_frames

    assert expected_frames(30, 1) == 30 and expected_frames(31, 5) == 7 and expected_frames(0, 5) is None
    for every in (1, 7):
        result = extract_video(tour, tmp_path / str(every), every=every, progress=True)
        final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
        assert "100%" in final and f"{result.frames}/{result.frames}" in final, final
