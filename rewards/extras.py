"""Video-R1's optional group bonuses, which the official Ego3S scripts switch on (on in preset ``official``).

* Temporal (T-GRPO): besides the G ordered rollouts, G/2 rollouts see the frames shuffled. If the ordered group is
  at least ``ratio`` times as accurate as the shuffled one, the model is using the temporal order, and every
  ordered rollout with accuracy above ``min_accuracy`` earns ``bonus``.
* Length control: when more than one rollout of a group is accurate (> ``min_accuracy``), each accurate rollout
  whose length lies in [``min_tokens``, ``max_tokens``] earns ``bonus``.

The official trainer makes these decisions on float32 torch tensors (accuracies stored in float32, float32 means,
the ``ratio`` product in float32); they are made here with the same tensor operations, so ties decide alike: in
float64, for example, ordered 0.6 against 0.8 * shuffled 0.75 would miss the bonus that the official code pays.
(The official run reduces on CUDA, whose summation order can differ from the CPU's in the last float32 bit; only
exact ties can tell the two apart.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def _f32(values: Sequence[float]):
    import torch

    return torch.tensor(list(values), dtype=torch.float32)


def _above(values: Sequence[float], threshold: float) -> list[bool]:
    """``tensor(values, float32) > threshold``, as the official masks are built."""
    return (_f32(values) > threshold).tolist()


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
        if not bool(_f32(ordered_accuracy).mean() >= self.ratio * _f32(shuffled_accuracy).mean()):
            return [0.0] * len(ordered_accuracy)
        return [self.bonus if ok else 0.0 for ok in _above(ordered_accuracy, self.min_accuracy)]


@dataclass(frozen=True)
class LengthBonus:
    bonus: float = 0.2
    min_tokens: int = 320
    max_tokens: int = 512
    min_accuracy: float = 0.1

    def __call__(self, accuracy: Sequence[float], lengths: Sequence[int]) -> list[float]:
        """Bonus per rollout of one group, given accuracies and response lengths in tokens."""
        accurate = _above(accuracy, self.min_accuracy)
        if sum(accurate) <= 1:
            return [0.0] * len(accuracy)
        return [
            self.bonus if ok and self.min_tokens <= n <= self.max_tokens else 0.0 for ok, n in zip(accurate, lengths)
        ]

    def for_member(self, accuracy: float, length: int, group_accuracy: Sequence[float]) -> float:
        """The bonus of one rollout, given the accuracies of its whole group (itself included)."""
        if sum(_above(group_accuracy, self.min_accuracy)) <= 1 or not _above([accuracy], self.min_accuracy)[0]:
            return 0.0
        return self.bonus if self.min_tokens <= length <= self.max_tokens else 0.0
