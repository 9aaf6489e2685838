"""Pose geometry as pure numpy functions: quaternions, 6D rotations, canonicalisation, interpolation, Sim(3).

Conventions: poses are 4x4 camera-to-world matrices (OpenCV camera axes), quaternions are (x, y, z, w) as in the TUM
trajectory format. Every function accepts a leading batch of poses.
"""

from __future__ import annotations

import numpy as np


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (x, y, z, w) -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) quaternions (x, y, z, w) with w >= 0 (Shepperd's method, stable)."""
    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):
        trace = np.trace(m)
        if trace > 0:
            s = 2.0 * np.sqrt(trace + 1.0)
            out[i] = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
        else:
            k = int(np.argmax(np.diag(m)))
            j, n = (k + 1) % 3, (k + 2) % 3
            s = 2.0 * np.sqrt(1.0 + m[k, k] - m[j, j] - m[n, n])
            q = np.empty(4)
            q[k] = 0.25 * s
            q[j] = (m[j, k] + m[k, j]) / s
            q[n] = (m[n, k] + m[k, n]) / s
            q[3] = (m[n, j] - m[j, n]) / s
            out[i] = q
    out *= np.where(out[:, 3:4] < 0, -1.0, 1.0)
    return out.reshape(R.shape[:-2] + (4,))


def make_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rotation (..., 3, 3) and translation (..., 3) -> (..., 4, 4)."""
    R, t = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64)
    T = np.zeros(R.shape[:-2] + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    R, t = T[..., :3, :3], T[..., :3, 3]
    Rt = np.swapaxes(R, -1, -2)
    return make_pose(Rt, -np.einsum("...ij,...j->...i", Rt, t))


def canonicalize(poses: np.ndarray) -> np.ndarray:
    """Express a trajectory relative to its first pose: T'_t = T_0^-1 T_t (so T'_0 is the identity)."""
    poses = np.asarray(poses, dtype=np.float64)
    return invert_pose(poses[..., :1, :, :]) @ poses


def poses_to_9d(poses: np.ndarray) -> np.ndarray:
    """(..., 4, 4) -> (..., 9): the first two rotation columns (the continuous 6D rotation) then the translation."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.concatenate([poses[..., :3, 0], poses[..., :3, 1], poses[..., :3, 3]], axis=-1)


def rotation_from_6d(six: np.ndarray) -> np.ndarray:
    """(..., 6) two (not necessarily orthonormal) columns -> (..., 3, 3) rotation by Gram-Schmidt."""
    six = np.asarray(six, dtype=np.float64)
    a, b = six[..., :3], six[..., 3:6]
    c0 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b - np.sum(c0 * b, axis=-1, keepdims=True) * c0
    c1 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    c2 = np.cross(c0, c1)
    return np.stack([c0, c1, c2], axis=-1)


def poses_from_9d(nine: np.ndarray) -> np.ndarray:
    nine = np.asarray(nine, dtype=np.float64)
    return make_pose(rotation_from_6d(nine[..., :6]), nine[..., 6:9])


def slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation between (..., 4) quaternions with weights w in [0, 1] (shortest arc)."""
    q0, q1 = np.asarray(q0, dtype=np.float64), np.asarray(q1, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    small = theta < 1e-6
    sin = np.where(small, 1.0, np.sin(theta))
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / sin)
    b = np.where(small, w, np.sin(w * theta) / sin)
    q = a * q0 + b * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def interpolate_poses(times: np.ndarray, poses: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Poses at ``query`` times: linear translation, slerp rotation. Query times must lie within ``times``."""
    times, query = np.asarray(times, dtype=np.float64), np.asarray(query, dtype=np.float64)
    if query.min() < times[0] - 1e-9 or query.max() > times[-1] + 1e-9:
        raise ValueError(f"query times [{query.min():.3f}, {query.max():.3f}] s leave the trajectory's "
                         f"[{times[0]:.3f}, {times[-1]:.3f}] s")
    idx = np.clip(np.searchsorted(times, query, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[idx + 1] - times[idx], 1e-12)
    w = np.clip((query - times[idx]) / span, 0.0, 1.0)
    quats = matrix_to_quat(poses[:, :3, :3])
    q = slerp(quats[idx], quats[idx + 1], w)
    t = poses[idx, :3, 3] * (1 - w)[:, None] + poses[idx + 1, :3, 3] * w[:, None]
    return make_pose(quat_to_matrix(q), t)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (s, R, t) with dst ~= s R src + t for (N, 3) point sets (Umeyama 1991)."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"umeyama needs two (N>=3, 3) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0  # a reflection would fit better: force a proper rotation
    R = U @ S @ Vt
    var_s = np.sum(xs**2) / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def apply_sim3(poses: np.ndarray, s: float, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Map camera-to-world poses into another world frame: R_new = R R_p, t_new = s R t_p + t."""
    poses = np.asarray(poses, dtype=np.float64)
    out = poses.copy()
    out[..., :3, :3] = R @ poses[..., :3, :3]
    out[..., :3, 3] = s * np.einsum("ij,...j->...i", R, poses[..., :3, 3]) + t
    return out


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angle of (..., 3, 3) rotations in degrees."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
