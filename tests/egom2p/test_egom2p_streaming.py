"""Streaming clip preparation: depth.npz read one frame at a time (memory-mapped when stored, streamed when
compressed), and a resumed run that decodes nothing for finished recordings and starts an interrupted one at the
keyframe before its first missing clip, with byte-identical clips."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from egoforge.egom2p.clips import ClipSettings, NpzDepthFrames, prepare_clips
from egoforge.testing.egom2p_data import write_recording


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.npy"))}


@pytest.mark.parametrize("compressed", [True, False])
def test_npz_depth_frames_are_read_one_at_a_time(tmp_path, compressed):
    depth = np.random.default_rng(0).uniform(0.5, 4.0, (7, 6, 5)).astype(np.float32)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "depth.npz", depth=depth, timestamps=np.arange(7.0))
    frames = NpzDepthFrames(tmp_path / "depth.npz")
    assert (frames._mmap is None) == compressed  # stored members are memory-mapped, never read whole
    assert len(frames) == 7
    for i in (0, 1, 4, 6, 2, 2, 5):  # forward, then backwards (the stream restarts)
        assert np.array_equal(frames[i], depth[i])
    frames.close()
    with pytest.raises(IndexError):
        frames[7]


def test_resume_decodes_only_what_is_missing_and_matches_a_fresh_run(tmp_path):
    raw = tmp_path / "raw"
    write_recording(raw / "rec", seed=3, seconds=8.2, gop=15, depth_format="npz_stored")  # 246 frames, 4 clips
    fresh = prepare_clips(raw, tmp_path / "clips", "ds", ClipSettings(size=16), progress=False)
    assert fresh["clips"] == 4 and fresh["depth"] == 4 and fresh["frames_decoded"] >= 6 * 30
    before = _digests(tmp_path / "clips")

    again = prepare_clips(raw, tmp_path / "clips", "ds", ClipSettings(size=16), progress=False)
    assert again["clips"] == 0 and again["skipped"] == 4 and again["frames_decoded"] == 0  # nothing decoded

    import shutil

    shutil.rmtree(tmp_path / "clips" / "ds" / "rec__0003")  # interrupted before the last clip (6.0 s - 8.0 s)
    resumed = prepare_clips(raw, tmp_path / "clips", "ds", ClipSettings(size=16), progress=False)
    assert resumed["clips"] == 1 and resumed["skipped"] == 3
    assert resumed["frames_decoded"] <= 3 * 30  # from the keyframe before 5.0 s, not from the start
    assert _digests(tmp_path / "clips") == before
