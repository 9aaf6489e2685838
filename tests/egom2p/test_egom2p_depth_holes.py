"""Sensor depth holes (0) stay invalid through resizing, normalisation, preparation and the depth metrics: a hole
never bleeds into a valid neighbour (Lanczos did: this test's 2 m plane with a hole had 430 "valid" pixels off by
more than 5 cm) and never counts as the nearest depth of the clip."""

from __future__ import annotations

import io

import numpy as np
import pytest

from egoforge.egom2p.clips import ClipSettings, normalize_depth, prepare_clips, resize_depth
from egoforge.egom2p.metrics import depth_metrics


def _plane_with_hole(height=480, width=640, depth=2.0):
    frame = np.full((height, width), depth, np.float32)
    frame[200:260, 300:380] = 0.0  # a sensor hole in the middle of the crop
    return frame


@pytest.mark.parametrize("method", ["min", "nearest"])
def test_resizing_a_plane_with_a_hole_leaves_no_valid_pixel_off(method):
    out = resize_depth(_plane_with_hole(), 256, method)
    valid = out > 0
    assert out.shape == (256, 256) and (~valid).any()  # the hole survives as 0
    assert np.abs(out[valid] - 2.0).max() <= 0.05  # (exactly 2.0: no value is interpolated)
    # the hole covers 60x80 source pixels of a 480x480 crop: about 32x43 output pixels, not the whole footprint
    assert 0.8 * 32 * 43 < (~valid).sum() < 1.2 * 32 * 43


def test_min_pool_keeps_the_nearest_surface_and_enlarging_is_nearest():
    frame = np.array([[1.0, 3.0, 0.0, 0.0], [5.0, 7.0, 0.0, 0.0], [2.0, 0.0, np.nan, 4.0], [9.0, 8.0, -1.0, 6.0]])
    assert resize_depth(frame, 2).tolist() == [[1.0, 0.0], [2.0, 4.0]]
    assert resize_depth(frame, 2, "nearest").tolist() == [[7.0, 0.0], [8.0, 6.0]]
    assert resize_depth(frame, 8)[::2, ::2].tolist() == np.where(np.isfinite(frame) & (frame > 0), frame, 0).tolist()
    with pytest.raises(ValueError, match="'min' or 'nearest'"):
        resize_depth(frame, 2, "lanczos")


def test_normalisation_ignores_holes_and_keeps_them_invalid():
    clip = np.stack([np.linspace(2.0, 3.0, 16, dtype=np.float32).reshape(4, 4)] * 2)
    clip[0, 0, 1] = 0.0
    clip[1, 2, 2] = np.nan
    out = normalize_depth(clip)
    assert np.isnan(out[0, 0, 1]) and np.isnan(out[1, 2, 2]) and np.isfinite(out).sum() == 30
    assert np.nanmin(out) == 0.0 and np.nanmax(out) == 1.0  # 2 m is the nearest depth, not the hole
    assert out[0, 0, 0] == 0.0 and out[0, 3, 3] == 1.0
    assert np.isnan(normalize_depth(np.zeros((2, 2)))).all()


def test_depth_metrics_ignore_holes_in_metric_and_normalised_ground_truth():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 4.0, (4, 8, 8))
    pred = 0.5 * gt + 0.1  # exact up to scale and shift
    holes = rng.random(gt.shape) < 0.2
    pred_with_garbage = np.where(holes, 100.0, pred)
    for hole_value in (0.0, np.nan):
        scores = depth_metrics(pred_with_garbage, np.where(holes, hole_value, gt))
        assert scores["abs_rel"] == pytest.approx(0.0, abs=1e-9) and scores["delta1"] == 1.0


def test_prepared_clips_keep_sensor_holes_invalid(tmp_path):
    from egoforge.testing.egom2p_data import write_recording

    rec = write_recording(tmp_path / "raw" / "rec", seconds=2.2, width=80, height=60, modalities=("rgb", "depth"))
    with np.load(rec / "depth.npz") as data:
        depth, times = data["depth"], data["timestamps"]
    depth = np.full_like(depth, 2.0)
    depth[:, 20:40, 30:50] = 0.0  # a 20x20 hole in every frame (the crop is x 10..70)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, depth=depth, timestamps=times)
    (rec / "depth.npz").write_bytes(buffer.getvalue())
    prepare_clips(tmp_path / "raw", tmp_path / "clips", "ds", ClipSettings(size=32), progress=False)
    clip = tmp_path / "clips" / "ds" / "rec__0000"
    metric = np.load(clip / "depth_metric.npy").astype(np.float32)
    normalised = np.load(clip / "depth.npy").astype(np.float32)
    valid = metric > 0
    assert (~valid).sum() >= 16 * 8 * 8 and np.abs(metric[valid] - 2.0).max() <= 0.05
    assert np.array_equal(np.isnan(normalised), ~valid) and (normalised[valid] == 0).all()
