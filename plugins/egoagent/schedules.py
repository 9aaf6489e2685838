"""Per-step schedules as pure functions of the optimiser step (DINO's cosine schedules, teacher temperature)."""

from __future__ import annotations

import math


def cosine(step: int, total: int, start: float, end: float) -> float:
    """Half-cosine from ``start`` (step 0) to ``end`` (step ``total``), constant afterwards."""
    if total <= 0:
        return end
    progress = min(max(step, 0), total) / total
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(step: int, total: int, peak: float, final: float, warmup_steps: int,
                  warmup_start: float = 0.0) -> float:
    """Linear warm-up from ``warmup_start`` to ``peak`` over ``warmup_steps``, then cosine to ``final``."""
    if step < warmup_steps:
        return warmup_start + (peak - warmup_start) * step / warmup_steps
    return cosine(step - warmup_steps, total - warmup_steps, peak, final)


def teacher_temperature(step: int, warmup_steps: int, warmup_temp: float, temp: float) -> float:
    """DINO's teacher temperature: linear from ``warmup_temp`` to ``temp`` over ``warmup_steps``, then constant."""
    if step >= warmup_steps or warmup_steps <= 0:
        return temp
    return warmup_temp + (temp - warmup_temp) * step / warmup_steps


def teacher_momentum(step: int, total: int, base: float = 0.996, final: float = 1.0) -> float:
    """EMA momentum, cosine from 0.996 to 1 over training (DINO)."""
    return cosine(step, total, base, final)


class WarmupCosineLR:
    """LambdaLR multiplier: warm-up then cosine from 1 to ``final / peak``; a picklable object so the
    scheduler's ``state_dict`` records its settings (a lambda would not be saved)."""

    def __init__(self, total_steps: int, warmup_steps: int, final_ratio: float) -> None:
        self.total_steps, self.warmup_steps, self.final_ratio = total_steps, warmup_steps, final_ratio

    def __call__(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, 1.0, self.final_ratio, self.warmup_steps)
