"""Evaluation metrics for EgoM2P's tasks as pure numpy functions (no state, no I/O).

- depth (rgb -> depth): AbsRel and delta < 1.25 after least-squares scale and shift alignment, the protocol of
  affine-invariant video depth (DepthCrafter, RollingDepth); alignment in depth or disparity space.
- camera (rgb -> cam): ATE (RMSE of positions) and RPE translation / rotation between consecutive frames after a
  Sim(3) Umeyama alignment of the predicted positions to the ground truth.
- gaze (rgb -> gaze): mean L2 distance in normalised image coordinates over the valid ground-truth samples.

The paper's result tables were not available (the EgoM2P paper reports only aggregate numbers per task), so these are
the standard definitions.
"""

from __future__ import annotations

import numpy as np

from egoforge.egom2p.geometry import apply_sim3, invert_pose, rotation_angle_deg, umeyama


def align_scale_shift(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(s, b) minimising ||s * pred + b - target||^2 over the masked entries."""
    pred, target = np.asarray(pred, dtype=np.float64), np.asarray(target, dtype=np.float64)
    mask = np.ones(pred.shape, bool) if mask is None else np.asarray(mask, bool)
    p, t = pred[mask], target[mask]
    if p.size < 2:
        raise ValueError("scale-shift alignment needs at least two valid values")
    A = np.stack([p, np.ones_like(p)], axis=1)
    (s, b), *_ = np.linalg.lstsq(A, t, rcond=None)
    return float(s), float(b)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, align: str = "scale_shift",
                  space: str = "depth", eps: float = 1e-6) -> dict[str, float]:
    """AbsRel and delta1 of a predicted depth video against metric/relative ground truth.

    ``align``: "scale_shift" (affine-invariant predictions, the default), "scale" (median ratio) or "none".
    ``space``: fit the alignment on depth or on disparity (1/depth; then the aligned disparity is inverted).
    ``mask``: valid ground-truth pixels (default: gt > eps).
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground truth shape {gt.shape}")
    valid = gt > eps if mask is None else np.asarray(mask, bool) & (gt > eps)
    if valid.sum() < 2:
        raise ValueError("depth metrics need at least two valid ground-truth pixels")
    if space not in ("depth", "disparity"):
        raise ValueError(f"space must be 'depth' or 'disparity', got {space!r}")
    target = gt if space == "depth" else 1.0 / np.maximum(gt, eps)
    if align == "scale_shift":
        s, b = align_scale_shift(pred, target, valid)
        aligned = s * pred + b
    elif align == "scale":
        aligned = pred * np.median(target[valid]) / max(np.median(pred[valid]), eps)
    elif align == "none":
        aligned = pred
    else:
        raise ValueError(f"align must be scale_shift, scale or none, got {align!r}")
    aligned = np.maximum(aligned, eps)
    depth = aligned if space == "depth" else 1.0 / aligned
    d, g = depth[valid], gt[valid]
    ratio = np.maximum(d / g, g / d)
    return {"abs_rel": float(np.mean(np.abs(d - g) / g)), "delta1": float(np.mean(ratio < 1.25))}


def camera_metrics(pred: np.ndarray, gt: np.ndarray, align: str = "sim3") -> dict[str, float]:
    """ATE and RPE of (N, 4, 4) camera-to-world predictions after aligning them to the ground truth.

    ``align``: "sim3" (scale, rotation, translation; monocular predictions), "se3" or "none".
    RPE compares consecutive relative motions: E_i = (G_i^-1 G_i+1)^-1 (P_i^-1 P_i+1); ``rpe_trans`` is the RMSE of
    their translations and ``rpe_rot_deg`` the mean rotation angle.
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-2:] != (4, 4) or pred.ndim != 3:
        raise ValueError(f"expected two (N, 4, 4) trajectories, got {pred.shape} and {gt.shape}")
    if align == "none":
        s, R, t = 1.0, np.eye(3), np.zeros(3)
    elif align in ("sim3", "se3"):
        s, R, t = umeyama(pred[:, :3, 3], gt[:, :3, 3], with_scale=align == "sim3")
    else:
        raise ValueError(f"align must be sim3, se3 or none, got {align!r}")
    aligned = apply_sim3(pred, s, R, t)
    ate = float(np.sqrt(np.mean(np.sum((aligned[:, :3, 3] - gt[:, :3, 3]) ** 2, axis=-1))))
    rel_pred = invert_pose(aligned[:-1]) @ aligned[1:]
    rel_gt = invert_pose(gt[:-1]) @ gt[1:]
    err = invert_pose(rel_gt) @ rel_pred
    rpe_trans = float(np.sqrt(np.mean(np.sum(err[:, :3, 3] ** 2, axis=-1))))
    rpe_rot = float(np.mean(rotation_angle_deg(err[:, :3, :3])))
    return {"ate": ate, "rpe_trans": rpe_trans, "rpe_rot_deg": rpe_rot, "scale": float(s)}


def gaze_l2(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between (N, 2) gaze points in normalised [0, 1] image coordinates."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 2:
        raise ValueError(f"expected two (..., 2) gaze arrays, got {pred.shape} and {gt.shape}")
    valid = np.ones(gt.shape[:-1], bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("gaze L2 needs at least one valid ground-truth sample")
    return float(np.mean(np.linalg.norm(pred - gt, axis=-1)[valid]))


def mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the entries selected by ``mask`` (broadcast over trailing dimensions)."""
    diff = (np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)) ** 2
    if mask is None:
        return float(diff.mean())
    mask = np.broadcast_to(np.asarray(mask, bool).reshape(mask.shape + (1,) * (diff.ndim - mask.ndim)), diff.shape)
    return float(diff[mask].mean())


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    err = mse(pred, target)
    return float("inf") if err == 0 else float(10 * np.log10(data_range**2 / err))
