"""Pose geometry and the task metrics against hand-computed values, including a known Sim(3) recovered exactly."""

from __future__ import annotations

import numpy as np
import pytest

from egoforge.egom2p import geometry as geo
from egoforge.egom2p.metrics import align_scale_shift, camera_metrics, depth_metrics, gaze_l2, mse, psnr


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    return geo.quat_to_matrix(q / np.linalg.norm(q))


def test_quaternion_and_6d_round_trips():
    rng = np.random.default_rng(0)
    R = np.stack([_random_rotation(rng) for _ in range(20)])
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(geo.quat_to_matrix(geo.matrix_to_quat(R)), R, atol=1e-10)
    poses = geo.make_pose(R, rng.normal(size=(20, 3)))
    assert np.allclose(geo.poses_from_9d(geo.poses_to_9d(poses)), poses, atol=1e-10)
    # 90 degrees about z: (x, y, z, w) = (0, 0, sin 45, cos 45)
    Rz = geo.quat_to_matrix(np.array([0, 0, np.sqrt(0.5), np.sqrt(0.5)]))
    assert np.allclose(Rz, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_rotation_from_6d_orthonormalises_noisy_columns():
    R = geo.rotation_from_6d(np.array([2.0, 0.1, 0.0, 0.3, 3.0, 0.0]))
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(R[:, 0], [2, 0.1, 0] / np.linalg.norm([2, 0.1, 0]))


def test_canonicalize_starts_at_identity_and_keeps_relative_motion():
    rng = np.random.default_rng(1)
    poses = geo.make_pose(np.stack([_random_rotation(rng) for _ in range(5)]), rng.normal(size=(5, 3)))
    canon = geo.canonicalize(poses)
    assert np.allclose(canon[0], np.eye(4), atol=1e-12)
    for i in range(4):
        rel = geo.invert_pose(poses[i]) @ poses[i + 1]
        assert np.allclose(geo.invert_pose(canon[i]) @ canon[i + 1], rel, atol=1e-10)


def test_interpolate_poses_hits_samples_and_midpoints():
    R0, R1 = np.eye(3), geo.quat_to_matrix(np.array([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)]))  # 0 and 90 deg
    poses = geo.make_pose(np.stack([R0, R1]), np.array([[0, 0, 0], [2, 0, 0]]))
    out = geo.interpolate_poses(np.array([0.0, 1.0]), poses, np.array([0.0, 0.5, 1.0]))
    assert np.allclose(out[0], poses[0]) and np.allclose(out[2], poses[1], atol=1e-12)
    assert np.allclose(out[1, :3, 3], [1, 0, 0])
    assert np.isclose(geo.rotation_angle_deg(out[1, :3, :3]), 45.0)
    with pytest.raises(ValueError, match="leave the trajectory"):
        geo.interpolate_poses(np.array([0.0, 1.0]), poses, np.array([1.5]))


def test_umeyama_recovers_a_known_similarity_exactly():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    R, s, t = _random_rotation(rng), 2.5, np.array([1.0, -3.0, 0.5])
    dst = s * src @ R.T + t
    s_hat, R_hat, t_hat = geo.umeyama(src, dst)
    assert np.isclose(s_hat, s) and np.allclose(R_hat, R) and np.allclose(t_hat, t)
    _, R_se3, _ = geo.umeyama(src, dst, with_scale=False)
    assert np.allclose(R_se3, R)
    with pytest.raises(ValueError, match="point sets"):
        geo.umeyama(src[:2], dst[:2])


def test_camera_metrics_are_zero_after_a_sim3_of_the_ground_truth():
    rng = np.random.default_rng(3)
    gt = geo.make_pose(np.stack([_random_rotation(rng) for _ in range(12)]), np.cumsum(rng.normal(size=(12, 3)), 0))
    R, s, t = _random_rotation(rng), 0.4, np.array([3.0, 1.0, -2.0])
    pred = geo.apply_sim3(gt, s, R, t)  # the same trajectory in another frame and scale
    m = camera_metrics(pred, gt)
    assert m["ate"] < 1e-9 and m["rpe_trans"] < 1e-9 and m["rpe_rot_deg"] < 1e-5
    assert np.isclose(m["scale"], 1 / s)
    assert camera_metrics(pred, gt, align="none")["ate"] > 0.1


def test_camera_metrics_hand_computed():
    # ground truth: straight line x = 0, 1, 2, 3; prediction: the same with y offset +1 at the last pose only
    gt = geo.make_pose(np.tile(np.eye(3), (4, 1, 1)), np.array([[i, 0.0, 0.0] for i in range(4)]))
    pred = gt.copy()
    pred[3, 1, 3] = 1.0
    m = camera_metrics(pred, gt, align="none")
    assert np.isclose(m["ate"], np.sqrt(1 / 4))  # one of four positions off by 1
    # relative motions: only the last step differs, by (0, 1, 0): RMSE over 3 steps
    assert np.isclose(m["rpe_trans"], np.sqrt(1 / 3)) and m["rpe_rot_deg"] == 0.0
    # a 10-degree yaw error on every relative step
    yaw = geo.quat_to_matrix(np.array([0, np.sin(np.radians(5)), 0, np.cos(np.radians(5))]))
    rotated = gt.copy()
    for i in range(4):
        rotated[i, :3, :3] = np.linalg.matrix_power(yaw, i)
    assert np.isclose(camera_metrics(rotated, gt, align="none")["rpe_rot_deg"], 10.0)


def test_depth_metrics_hand_computed_and_affine_invariant():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    assert depth_metrics(2 * gt + 1, gt) == {"abs_rel": pytest.approx(0.0, abs=1e-12), "delta1": 1.0}
    pred = np.array([[1.0, 2.0], [4.0, 4.0]])  # last pixel off by half
    m = depth_metrics(pred, gt, align="none")
    assert np.isclose(m["abs_rel"], 0.5 / 4) and m["delta1"] == 0.75
    # disparity-space alignment: predictions affine in 1/depth are recovered exactly
    m = depth_metrics(3.0 / gt + 0.5, gt, space="disparity")
    assert m["abs_rel"] < 1e-9 and m["delta1"] == 1.0
    assert depth_metrics(pred, gt, mask=np.array([[1, 1], [1, 0]], bool), align="none")["abs_rel"] == 0.0
    s, b = align_scale_shift(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]))
    assert np.isclose(s, 2.0) and np.isclose(b, 1.0)
    with pytest.raises(ValueError, match="shape"):
        depth_metrics(np.zeros((2, 3)), gt)


def test_gaze_and_image_metrics_hand_computed():
    gt = np.array([[0.5, 0.5], [0.1, 0.2], [0.9, 0.9]])
    pred = np.array([[0.8, 0.9], [0.1, 0.2], [0.0, 0.0]])
    assert np.isclose(gaze_l2(pred, gt), (0.5 + 0.0 + np.hypot(0.9, 0.9)) / 3)
    assert np.isclose(gaze_l2(pred, gt, np.array([True, True, False])), 0.25)
    with pytest.raises(ValueError, match="valid"):
        gaze_l2(pred, gt, np.zeros(3, bool))
    assert mse(np.ones(4), np.zeros(4)) == 1.0
    assert np.isclose(psnr(np.full(4, 0.1), np.zeros(4)), 20.0)
