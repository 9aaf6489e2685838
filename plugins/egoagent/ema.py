"""The EMA teacher ("observer"): a frozen copy of the student updated as t <- m * t + (1 - m) * s."""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_teacher(student: nn.Module) -> nn.Module:
    """A detached copy with gradients off, in eval mode (no dropout; the stem uses GroupNorm, not BatchNorm)."""
    teacher = copy.deepcopy(student)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher.eval()


def paired_parameters(teacher: nn.Module, student: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Teacher and student tensors matched by name (the student may own extra modules, e.g. the action head)."""
    student_params = dict(student.named_parameters())
    teacher_list, student_list = [], []
    for name, param in teacher.named_parameters():
        if name not in student_params:
            raise KeyError(f"teacher parameter {name!r} has no student counterpart")
        teacher_list.append(param)
        student_list.append(student_params[name])
    return teacher_list, student_list


@torch.no_grad()
def ema_update_(teacher_params: list[torch.Tensor], student_params: list[torch.Tensor], momentum: float) -> None:
    """In place: teacher = momentum * teacher + (1 - momentum) * student (one fused multi-tensor op)."""
    student_detached = [p.detach().to(t.dtype) for t, p in zip(teacher_params, student_params)]
    torch._foreach_mul_(teacher_params, momentum)
    torch._foreach_add_(teacher_params, student_detached, alpha=1.0 - momentum)
