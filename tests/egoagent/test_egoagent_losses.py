"""Losses and schedules against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from egoforge.egoagent import schedules
from egoforge.egoagent.losses import (
    batch_center,
    dino_loss,
    masked_mse,
    matched_dino_loss,
    mpjpe,
    teacher_targets,
    update_center,
)


def test_dino_loss_matches_the_written_out_sum():
    torch.manual_seed(0)
    student, teacher, center = torch.randn(4, 3, 5), torch.randn(2, 3, 5), torch.randn(5) * 0.1
    expected, pairs = 0.0, 0
    for t in range(2):
        q = torch.softmax((teacher[t] - center) / 0.04, dim=-1)
        for v in range(4):
            if v == t:
                continue  # a global crop does not supervise itself
            expected += (-(q * torch.log_softmax(student[v] / 0.1, dim=-1)).sum(-1)).mean()
            pairs += 1
    torch.testing.assert_close(dino_loss(student, teacher, center, 0.1, 0.04), expected / pairs)
    assert pairs == 6


def test_dino_loss_on_two_classes_by_hand():
    # teacher logits (2, 0) centred by (1, 1), temperature 1 -> softmax(1, -1) = (e/(e+1/e), ...)
    teacher = torch.tensor([[[2.0, 0.0]]])
    student = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]]])  # uniform student: cross-entropy = log 2
    loss = dino_loss(student, teacher, torch.tensor([1.0, 1.0]), student_temp=1.0, teacher_temp=1.0)
    assert loss.item() == pytest.approx(math.log(2))
    q = teacher_targets(teacher[0], torch.tensor([1.0, 1.0]), 1.0)
    assert q[0, 0].item() == pytest.approx(math.e / (math.e + 1 / math.e))


def test_matched_dino_loss_weights_rows():
    student, teacher = torch.zeros(2, 4), torch.tensor([[4.0, 0, 0, 0], [0, 0, 0, 4.0]])
    full = matched_dino_loss(student, teacher, torch.zeros(4), 1.0, 1.0)
    assert full.item() == pytest.approx(math.log(4))  # uniform student
    student = torch.tensor([[8.0, 0, 0, 0], [0, 0, 0, 0]])
    only_first = matched_dino_loss(student, teacher, torch.zeros(4), 1.0, 1.0, weights=torch.tensor([1, 0]))
    assert only_first < full


def test_centering_is_an_ema_of_the_batch_mean():
    teacher = torch.tensor([[[1.0, 3.0], [3.0, 5.0]]])  # one view, two samples
    assert batch_center(teacher).tolist() == [2.0, 4.0]
    updated = update_center(torch.tensor([0.0, 10.0]), torch.tensor([2.0, 4.0]), 0.9)
    assert updated.tolist() == pytest.approx([0.2, 9.4])


def test_mpjpe_by_hand_and_masking():
    pred = torch.zeros(1, 3, 3)
    target = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [-1.0, -1.0, -1.0]]])  # errors 5, 2, (missing)
    visible = torch.tensor([[1, 1, 0]])
    assert mpjpe(pred, target, visible).item() == pytest.approx(3.5)
    assert mpjpe(pred, target).item() == pytest.approx((5 + 2 + math.sqrt(3)) / 3)
    assert masked_mse(pred, target, visible).item() == pytest.approx((25 + 4) / 2)
    assert mpjpe(pred, target, torch.zeros(1, 3)).item() == 0.0  # nothing visible: no signal, no NaN


def test_schedules():
    assert schedules.cosine(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert schedules.cosine(50, 100, 0.04, 0.4) == pytest.approx(0.22)
    assert schedules.cosine(100, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert schedules.teacher_momentum(0, 1000) == pytest.approx(0.996)
    assert schedules.teacher_momentum(1000, 1000) == pytest.approx(1.0)
    # lr: 10% linear warm-up to 5e-4, then cosine to 5e-6
    assert schedules.warmup_cosine(5, 100, 5e-4, 5e-6, 10) == pytest.approx(2.5e-4)
    assert schedules.warmup_cosine(10, 100, 5e-4, 5e-6, 10) == pytest.approx(5e-4)
    assert schedules.warmup_cosine(100, 100, 5e-4, 5e-6, 10) == pytest.approx(5e-6)
    assert schedules.WarmupCosineLR(100, 10, 0.01)(55) == pytest.approx(0.505)
    assert schedules.teacher_temperature(0, 30, 0.02, 0.04) == pytest.approx(0.02)
    assert schedules.teacher_temperature(15, 30, 0.02, 0.04) == pytest.approx(0.03)
    assert schedules.teacher_temperature(99, 30, 0.02, 0.04) == pytest.approx(0.04)
