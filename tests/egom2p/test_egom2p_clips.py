"""Clip preparation from generated recordings in the real raw formats: resampling, cropping, alignment of the four
modalities, missing modalities, resumability, untouched sources, and bad input naming file, row and field."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from egoforge.egom2p.clips import (
    ClipDataError,
    ClipSettings,
    centre_crop_box,
    clip_starts,
    crop_resize,
    list_clips,
    load_clip,
    nearest_indices,
    normalize_depth,
    prepare_clips,
    probe_video,
    read_gaze_csv,
    read_tum,
    resize_depth,
    sample_gaze,
)


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_pure_helpers():
    assert clip_starts(4.5, 2.0) == [0.0, 2.0] and clip_starts(1.9, 2.0) == [] and clip_starts(5.0, 1.0)[-1] == 3.0
    times = np.array([0.0, 1 / 30, 2 / 30, 3 / 30])
    assert nearest_indices(times, np.array([0.0, 0.02, 0.05, 0.2])).tolist() == [0, 1, 2, 3]
    assert centre_crop_box(80, 60) == (10, 0, 60) and centre_crop_box(60, 80) == (0, 10, 60)
    depth = np.array([[2.0, 4.0], [np.nan, 3.0]])
    assert np.allclose(normalize_depth(depth), [[0.0, 1.0], [np.nan, 0.5]], equal_nan=True)
    assert (normalize_depth(np.full((2, 2), 5.0)) == 0).all()
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, 10:70] = 200  # the centre square is uniform: the crop must not see the black side bands
    assert (crop_resize(img, 16) == 200).all()
    xy = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]])
    out, ok = sample_gaze(np.array([0.0, 0.1, 0.5]), xy, np.array([True, True, True]), np.array([0.05, 0.3]), 0.2)
    assert ok.tolist() == [True, False] and np.allclose(out[0], [5.0, 5.0])


def test_prepared_clips_have_the_paper_shapes_and_missing_modalities(egom2p_raw_and_clips):
    clips = list_clips(egom2p_raw_and_clips / "clips")
    assert [c.name for c in clips] == ["rec00_take__0000", "rec00_take__0001", "rec01__0000", "rec01__0001",
                                       "rec02__0000", "rec02__0001"]
    for clip in clips:
        meta = json.loads((clip / "meta.json").read_text())
        assert load_clip(clip, "rgb").shape == (16, 32, 32, 3) and load_clip(clip, "cam").shape == (60, 4, 4)
        if clip.name.startswith("rec02"):  # recorded without gaze and depth: unavailable, not faked
            assert meta["modalities"] == ["cam", "rgb"] and load_clip(clip, "gaze") is None
            assert load_clip(clip, "depth") is None
            continue
        depth = load_clip(clip, "depth")
        assert depth.shape == (16, 32, 32) and depth.min() == 0.0 and depth.max() == 1.0
        gaze = load_clip(clip, "gaze")
        assert gaze.shape == (60, 3) and set(np.unique(gaze[:, 2])) <= {0.0, 1.0}


def test_video_frames_are_the_nearest_at_8_fps_centre_cropped(egom2p_raw_and_clips):
    import av

    video = egom2p_raw_and_clips / "raw" / "rec00.take" / "rgb.mp4"
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    width, height, duration = probe_video(video)
    assert (width, height) == (80, 60) and duration == pytest.approx(4.5, abs=0.05)
    clip = load_clip(egom2p_raw_and_clips / "clips" / "synth" / "rec00_take__0001", "rgb")
    picks = nearest_indices(np.arange(len(frames)) / 30.0, 2.0 + np.arange(16) / 8.0)
    expected = np.stack([crop_resize(frames[i], 32) for i in picks])
    assert np.array_equal(clip, expected)


def test_depth_camera_and_gaze_are_aligned_with_their_sources(egom2p_raw_and_clips):
    raw, clips = egom2p_raw_and_clips / "raw", egom2p_raw_and_clips / "clips" / "synth"
    with np.load(raw / "rec00.take" / "depth.npz") as data:
        depth, stamps = data["depth"], data["timestamps"]
    picks = nearest_indices(stamps, 2.0 + np.arange(16) / 8.0)
    metric = np.load(clips / "rec00_take__0001" / "depth_metric.npy")
    assert np.allclose(metric, np.stack([resize_depth(depth[i], 32) for i in picks]), rtol=1e-3)
    png_metric = np.load(clips / "rec01__0000" / "depth_metric.npy").astype(np.float64)
    assert png_metric.min() > 1.0 and png_metric.max() < 5.0  # millimetre PNGs scaled to metres

    times, poses = read_tum(raw / "rec00.take" / "camera.txt")
    cam = load_clip(clips / "rec00_take__0001", "cam")
    assert np.allclose(cam, poses[60:120], atol=1e-5)  # 30 Hz samples from 2.0 s on

    gaze_times, xy, valid = read_gaze_csv(raw / "rec01" / "gaze.csv")
    assert not valid.all()  # the recording has a blink
    query = 2.0 + np.arange(60) / 30.0
    expected, ok = sample_gaze(gaze_times, xy, valid, query, 0.1)
    x0, y0, side = centre_crop_box(80, 60)
    gaze = load_clip(clips / "rec01__0001", "gaze")
    assert np.array_equal(gaze[:, 2] > 0.5, ok)
    assert np.allclose(gaze[ok, :2], (expected[ok] - [x0, y0]) / side, atol=1e-5)


def test_prepare_is_resumable_and_never_touches_the_source(egom2p_raw_and_clips, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(egom2p_raw_and_clips / "raw", raw)
    before = _tree_digest(raw)
    first = prepare_clips(raw, tmp_path / "clips", "synth", ClipSettings(size=32), progress=False)
    assert first["clips"] == 6 and first["gaze"] == 4 and first["depth"] == 4 and first["cam"] == 6
    stamp = (tmp_path / "clips" / "synth" / "rec01__0000" / "rgb.npy").stat().st_mtime_ns
    again = prepare_clips(raw, tmp_path / "clips", "synth", ClipSettings(size=32), progress=False)
    assert again["clips"] == 0 and again["skipped"] == 6
    assert (tmp_path / "clips" / "synth" / "rec01__0000" / "rgb.npy").stat().st_mtime_ns == stamp
    assert _tree_digest(raw) == before
    assert not list((tmp_path / "clips").rglob("*.tmp"))
    with pytest.raises(ValueError, match="inside the raw data"):
        prepare_clips(raw, raw / "clips", "synth", progress=False)


def _recording(tmp_path: Path, source: Path) -> Path:
    rec = tmp_path / "raw" / "bad"
    shutil.copytree(source, rec)
    return rec


@pytest.mark.parametrize("file, content, row, field", [
    ("camera.txt", "# header\n0.0 0 0 0 0 0 0 1\n0.1 0 0 0 0 0 1\n", 3, "line"),
    ("camera.txt", "0.0 0 0 0 0 0 0 1\n0.1 0 0 0 0 0 0 0\n", 2, "qx qy qz qw"),
    ("camera.txt", "0.0 0 0 x 0 0 0 1\n", 1, "line"),
    ("gaze.csv", "timestamp_s,x,y\n0.0,1,2\n0.1,abc,2\n", 3, "x"),
    ("gaze.csv", "time,x,y\n0.0,1,2\n", 1, "timestamp_s"),
])
def test_bad_input_names_file_row_and_field(tmp_path, egom2p_raw_and_clips, file, content, row, field):
    rec = _recording(tmp_path, egom2p_raw_and_clips / "raw" / "rec00.take")
    (rec / file).write_text(content)
    with pytest.raises(ClipDataError) as info:
        prepare_clips(rec.parent, tmp_path / "clips", "x", ClipSettings(size=32), progress=False)
    assert info.value.file == str(rec / file) and info.value.row == row and info.value.field == field
    assert str(rec / file) in str(info.value) and f"row {row}" in str(info.value)


def test_bad_depth_files(tmp_path, egom2p_raw_and_clips):
    rec = _recording(tmp_path, egom2p_raw_and_clips / "raw" / "rec00.take")
    np.savez(rec / "depth.npz", frames=np.zeros((3, 4, 4)))
    with pytest.raises(ClipDataError, match="depth.npz.*'depth'.*missing array"):
        prepare_clips(rec.parent, tmp_path / "c1", "x", ClipSettings(size=32), progress=False)
    rec = _recording(tmp_path / "png", egom2p_raw_and_clips / "raw" / "rec01")
    (rec / "depth" / "timestamps.txt").unlink()
    with pytest.raises(ClipDataError, match="timestamps.txt"):
        prepare_clips(rec.parent, tmp_path / "c2", "x", ClipSettings(size=32), progress=False)
    with pytest.raises(FileNotFoundError, match="no recording folders"):
        prepare_clips(tmp_path / "png" / "raw" / "bad" / "depth", tmp_path / "c3", "x", progress=False)
