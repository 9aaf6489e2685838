"""Video-R1's optional group bonuses, which the official Ego3S scripts switch on (off by default here).

* Temporal (T-GRPO): besides the G ordered rollouts, G/2 rollouts see the frames shuffled. If the ordered group is
  at least ``ratio`` times as accurate as the shuffled one, the model is using the temporal order, and every
  ordered rollout with accuracy above ``min_accuracy`` earns ``bonus``.
* Length control: when more than one rollout of a group is accurate (> ``min_accuracy``), each accurate rollout
  whose length lies in [``min_tokens``, ``max_tokens``] earns ``bonus``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TemporalBonus:
    bonus: float = 0.3
    ratio: float = 0.8
    min_accuracy: float = 0.1

    def __call__(self, ordered_accuracy: Sequence[float], shuffled_accuracy: Sequence[float]) -> list[float]:
        """Bonus per ordered rollout (0 for all of them when the shuffled group is as good)."""
        if not ordered_accuracy:
            return []
        mean_ordered = sum(ordered_accuracy) / len(ordered_accuracy)
        mean_shuffled = sum(shuffled_accuracy) / len(shuffled_accuracy) if shuffled_accuracy else 0.0
        if mean_ordered < self.ratio * mean_shuffled:
            return [0.0] * len(ordered_accuracy)
        return [self.bonus if acc > self.min_accuracy else 0.0 for acc in ordered_accuracy]


@dataclass(frozen=True)
class LengthBonus:
    bonus: float = 0.2
    min_tokens: int = 320
    max_tokens: int = 512
    min_accuracy: float = 0.1

    def __call__(self, accuracy: Sequence[float], lengths: Sequence[int]) -> list[float]:
        """Bonus per rollout of one group, given accuracies and response lengths in tokens."""
        accurate = [acc > self.min_accuracy for acc in accuracy]
        if sum(accurate) <= 1:
            return [0.0] * len(accuracy)
        return [
            self.bonus if ok and self.min_tokens <= n <= self.max_tokens else 0.0 for ok, n in zip(accurate, lengths)
        ]

    def for_member(self, accuracy: float, length: int, group_accuracy: Sequence[float]) -> float:
        """The bonus of one rollout, given the accuracies of its whole group (itself included)."""
        if sum(acc > self.min_accuracy for acc in group_accuracy) <= 1 or accuracy <= self.min_accuracy:
            return 0.0
        return self.bonus if self.min_tokens <= length <= self.max_tokens else 0.0
