"""A sharded, resumable sampler: an epoch's order depends only on (seed, epoch), and a run can start mid-epoch.

Each item is ``(dataset index, augmentation seed)``; datasets seed their random crops with the second value, so a
resumed run reproduces the uninterrupted one exactly, independent of data-loader workers and prefetching.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from egoforge.egoagent.data.transforms import sample_seed


class ResumableSampler(Sampler):
    def __init__(self, num_samples: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        if num_samples < world_size:
            raise ValueError(f"{num_samples} samples cannot be shared by {world_size} processes")
        self.num_samples, self.seed, self.rank, self.world_size, self.shuffle = (
            num_samples, seed, rank, world_size, shuffle)
        self.epoch, self.start = 0, 0

    @property
    def per_rank(self) -> int:
        """Samples each process sees per epoch (the tail that does not divide evenly is dropped)."""
        return self.num_samples // self.world_size

    def set_position(self, epoch: int, start: int) -> None:
        """Continue ``epoch`` after the first ``start`` samples of this process's share."""
        self.epoch, self.start = epoch, start

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            order = torch.arange(self.num_samples)
        else:
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + epoch))
        return order[self.rank: self.per_rank * self.world_size: self.world_size]

    def __len__(self) -> int:
        return max(self.per_rank - self.start, 0)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order(self.epoch)[self.start:].tolist():
            yield index, sample_seed(self.seed, self.epoch, index)
