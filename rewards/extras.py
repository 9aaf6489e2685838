"""Video-R1's optional group bonuses, which the official Ego3S scripts switch on (on in preset ``official``).

* Temporal (T-GRPO): besides the G ordered rollouts, G/2 rollouts see the frames shuffled. If the ordered group is
  at least ``ratio`` times as accurate as the shuffled one, the model is using the temporal order, and every
  ordered rollout with accuracy above ``min_accuracy`` earns ``bonus``.
* Length control: when more than one rollout of a group is accurate (> ``min_accuracy``), each accurate rollout
  whose length lies in [``min_tokens``, ``max_tokens``] earns ``bonus``.

The official trainer makes these decisions on float32 tensors (accuracies are stored in float32, the means and the
``ratio`` product are float32), so the thresholds compare float32-rounded values here too: in float64, for
example, ordered 0.6 against 0.8 * shuffled 0.75 would miss the bonus that the official code pays.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (as ``torch.tensor(x, dtype=torch.float32)`` stores it)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def f32_mean(values: Sequence[float]) -> float:
    """Mean accumulated and divided in float32, in order."""
    total = 0.0
    for value in values:
        total = f32(total + f32(value))
    return f32(total / len(values))


def _above(value: float, threshold: float) -> bool:
    return f32(value) > f32(threshold)


@dataclass(frozen=True)
class TemporalBonus:
    bonus: float = 0.3
    ratio: float = 0.8
    min_accuracy: float = 0.1

    def __call__(self, ordered_accuracy: Sequence[float], shuffled_accuracy: Sequence[float]) -> list[float]:
        """Bonus per ordered rollout (0 for all of them when the shuffled group is as good)."""
        if not ordered_accuracy:
            return []
        if not shuffled_accuracy:  # the official mean of no shuffled rollouts is NaN: the test fails, no bonus
            return [0.0] * len(ordered_accuracy)
        if not f32_mean(ordered_accuracy) >= f32(f32(self.ratio) * f32_mean(shuffled_accuracy)):
            return [0.0] * len(ordered_accuracy)
        return [self.bonus if _above(acc, self.min_accuracy) else 0.0 for acc in ordered_accuracy]


@dataclass(frozen=True)
class LengthBonus:
    bonus: float = 0.2
    min_tokens: int = 320
    max_tokens: int = 512
    min_accuracy: float = 0.1

    def __call__(self, accuracy: Sequence[float], lengths: Sequence[int]) -> list[float]:
        """Bonus per rollout of one group, given accuracies and response lengths in tokens."""
        accurate = [_above(acc, self.min_accuracy) for acc in accuracy]
        if sum(accurate) <= 1:
            return [0.0] * len(accuracy)
        return [
            self.bonus if ok and self.min_tokens <= n <= self.max_tokens else 0.0 for ok, n in zip(accurate, lengths)
        ]

    def for_member(self, accuracy: float, length: int, group_accuracy: Sequence[float]) -> float:
        """The bonus of one rollout, given the accuracies of its whole group (itself included)."""
        accurate = sum(_above(acc, self.min_accuracy) for acc in group_accuracy)
        if accurate <= 1 or not _above(accuracy, self.min_accuracy):
            return 0.0
        return self.bonus if self.min_tokens <= length <= self.max_tokens else 0.0
