"""Frame extraction (PyAV), the frame index, undistortion adapter and stage-1 / stage-2 datasets."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
import torch
from PIL import Image

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
from egoforge.testing.egoagent_data import make_walking_tours


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
    takes = tmp_path / "takes"
    (takes / "uid1" / "frame_aligned_videos" / "downscaled" / "448").mkdir(parents=True)
    (takes / "uid1" / "frame_aligned_videos" / "downscaled" / "448" / "aria01_214-1.mp4").write_bytes(b"")
    (takes / "uid1" / "aria01_noimagestreams.vrs").write_bytes(b"")
    (takes / "uid2").mkdir()
    with pytest.raises(FileNotFoundError, match=r"uid2: no egocentric video"):
        find_take_media(takes)
    (media,) = find_take_media(takes, ["uid1"])
    assert media.video.name == "aria01_214-1.mp4" and media.vrs.name == "aria01_noimagestreams.vrs"


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
