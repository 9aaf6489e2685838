"""EgoAgent's losses as pure functions of tensors: DINO multi-crop cross-entropy, centering, MPJPE.

Shapes: ``student_logits [views, B, out_dim]``, ``teacher_logits [teacher_views, B, out_dim]``. Nothing here
touches the network, the optimiser or the process group; the trainer all-reduces the batch centre first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_targets(teacher_logits: torch.Tensor, center: torch.Tensor, temperature: float) -> torch.Tensor:
    """Centred, sharpened teacher distribution softmax((t - c) / tau_t), without gradient."""
    return F.softmax((teacher_logits.detach().float() - center) / temperature, dim=-1)


def cross_entropy_pairs(targets: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``[T, V]`` matrix of mean-over-batch H(targets[t], softmax(student[v] / tau_s))."""
    log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return -torch.einsum("tbd,vbd->tv", targets, log_probs) / targets.shape[1]


def dino_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO multi-crop loss: every teacher (global) view supervises every student view except itself.

    The first ``teacher_views`` student views must be the same global crops the teacher saw, in the same order
    (DINO's ``MultiCropWrapper`` layout): those (t, t) pairs are skipped.
    """
    targets = teacher_targets(teacher_logits, center, teacher_temp)
    pairs = cross_entropy_pairs(targets, student_logits, student_temp)
    n_teacher, n_student = pairs.shape
    keep = ~torch.eye(n_teacher, n_student, dtype=torch.bool, device=pairs.device)
    return pairs[keep].mean()


def matched_dino_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: torch.Tensor,
                      student_temp: float = 0.1, teacher_temp: float = 0.04,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """DINO cross-entropy between matched rows ``student[i]`` and ``teacher[i]`` (``[N, out_dim]`` each).

    Stage 2 uses it for L_rep (a frame's in-context CLS vs the observer's view of that frame) and L_pred (the
    predicted next state vs the observer's encoding of the real future frame). ``weights [N]`` masks rows.
    """
    targets = teacher_targets(teacher_logits, center, teacher_temp)
    per_row = -(targets * F.log_softmax(student_logits.float() / student_temp, dim=-1)).sum(-1)
    if weights is None:
        return per_row.mean()
    weights = weights.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp_min(1.0)


def batch_center(teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean teacher output over every view and sample of this process's batch, ``[out_dim]``."""
    return teacher_logits.detach().float().reshape(-1, teacher_logits.shape[-1]).mean(0)


def update_center(center: torch.Tensor, new_batch_center: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """EMA of the teacher's batch mean (DINO's centering, momentum 0.9); returns the new centre."""
    return center * momentum + new_batch_center * (1.0 - momentum)


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint, ``[..., J, 3]`` -> ``[..., J]``."""
    return torch.linalg.vector_norm(pred.float() - target.float(), dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint position error over the visible joints (same unit as the inputs).

    Joints with ``visible == 0`` (Ego-Exo4D's missing joints, stored as -1, -1, -1) are left out of the mean.
    """
    errors = joint_errors(pred, target)
    if visible is None:
        return errors.mean()
    mask = visible.to(errors.dtype)
    return (errors * mask).sum() / mask.sum().clamp_min(1.0)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Squared error per visible joint (an alternative L_act, ``action_loss: mse``)."""
    squared = (pred.float() - target.float()).pow(2).sum(-1)
    mask = visible.to(squared.dtype)
    return (squared * mask).sum() / mask.sum().clamp_min(1.0)
