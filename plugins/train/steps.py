"""Epochs <-> optimizer steps: the arithmetic every trainer's schedule and resume position rests on."""

from __future__ import annotations

import math


def global_batch(per_device: int, gradient_accumulation_steps: int, processes: int) -> int:
    """Samples per optimizer step over all processes."""
    return per_device * gradient_accumulation_steps * processes


def epochs_to_steps(epochs: float, samples: int, batch: int) -> int:
    """Optimizer steps that cover ``epochs`` passes over ``samples`` at ``batch`` samples a step (at least 1)."""
    return max(1, math.ceil(epochs * samples / batch))


def steps_per_epoch(batches_per_epoch: int, gradient_accumulation_steps: int) -> int:
    """Whole optimizer steps in an epoch of ``batches_per_epoch`` micro-batches (a partial last step is dropped)."""
    return batches_per_epoch // gradient_accumulation_steps


def epoch_position(step: int, per_epoch: int) -> tuple[int, int]:
    """(epoch, optimizer steps already done in it) after ``step`` steps: where a resumed run picks the data up."""
    if per_epoch < 1:
        raise ValueError(f"an epoch must hold at least one optimizer step, got {per_epoch}")
    return divmod(step, per_epoch)
