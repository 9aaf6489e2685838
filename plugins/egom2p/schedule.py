"""Learning-rate arithmetic as pure functions (4M / EgoM2P conventions).

- absolute lr = blr * global batch / 256 (global batch = per-device batch x gradient accumulation x processes);
- linear warm-up from ``warmup_start_lr`` to the peak, then cosine decay to ``min_lr`` at ``total_steps``;
- the model's schedule is measured in tokens: steps = tokens / (global batch x (input + target tokens)).
"""

from __future__ import annotations

import math


def absolute_lr(blr: float, global_batch: int) -> float:
    return blr * global_batch / 256


def steps_for_tokens(tokens: float, global_batch: int, tokens_per_sample: int) -> int:
    """Optimizer steps that consume ``tokens`` (rounded up; at least one)."""
    return max(1, math.ceil(tokens / (global_batch * tokens_per_sample)))


def lr_at(step: int, peak: float, total_steps: int, warmup_steps: int, min_lr: float = 0.0,
          warmup_start_lr: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up then half-cosine to ``min_lr``."""
    if step < warmup_steps:
        return warmup_start_lr + (peak - warmup_start_lr) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + math.cos(math.pi * progress))
