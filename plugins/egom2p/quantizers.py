"""Discrete bottlenecks: a cosine-similarity VQ with EMA codebook updates, and finite scalar quantisation (FSQ).

The VQ is the trajectory tokenizers' (EgoM2P's official tokenizer code; docs/egom2p.md "Tokenizers"): l2-normalised
inputs and codes, EMA decay 0.99, no k-means initialisation, dead codes (EMA usage below a threshold) restarted from
random vectors of the current batch, and a commitment loss with weight 1.0. Under ``torch.distributed`` the EMA
statistics are summed over ranks and restarts are broadcast from rank 0, so every rank keeps the same codebook.

FSQ rounds each of ``len(levels)`` bounded channels to ``levels[i]`` values; the code index is the mixed-radix
number of the digits. Levels (8, 8, 8, 5, 5, 5) give Cosmos DV's 64,000-entry vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class CosineEMAQuantizer(nn.Module):
    def __init__(self, num_codes: int = 256, dim: int = 32, decay: float = 0.99, dead_code_threshold: float = 32.0,
                 commitment: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.dim, self.decay = num_codes, dim, decay
        self.dead_code_threshold, self.commitment, self.eps = dead_code_threshold, commitment, eps
        codes = F.normalize(torch.randn(num_codes, dim), dim=-1)
        self.register_buffer("codebook", codes)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("code_sum", codes.clone())

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.codebook)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices of the most similar codes for (..., dim) inputs (cosine similarity)."""
        return (F.normalize(z, dim=-1) @ self.codebook.t()).argmax(dim=-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., dim) -> (quantised with a straight-through gradient, indices, commitment loss)."""
        z = F.normalize(z.float(), dim=-1)
        indices = (z @ self.codebook.t()).argmax(dim=-1)
        if self.training:
            self._ema_update(z.detach().reshape(-1, self.dim), indices.reshape(-1))
        quantized = self.lookup(indices)
        loss = self.commitment * F.mse_loss(z, quantized.detach())
        return z + (quantized - z).detach(), indices, loss

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, indices: torch.Tensor) -> None:
        onehot = F.one_hot(indices, self.num_codes).type(z.dtype)
        counts, sums = onehot.sum(0), onehot.t() @ z
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.codebook.copy_(F.normalize(self.code_sum, dim=-1))
        self._restart_dead_codes(z)

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        dead = self.cluster_size < self.dead_code_threshold
        if _distributed():
            dist.broadcast(dead, src=0)
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        picks = z[torch.randint(len(z), (n_dead,), device=z.device)]
        if _distributed():
            dist.broadcast(picks, src=0)
        self.codebook[dead] = picks
        self.code_sum[dead] = picks * self.dead_code_threshold
        self.cluster_size[dead] = self.dead_code_threshold


class FSQ(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2023) with a straight-through rounding gradient."""

    def __init__(self, levels: list[int] | tuple[int, ...]):
        super().__init__()
        if not levels or any(int(level) < 2 for level in levels):
            raise ValueError(f"FSQ levels must be integers >= 2, got {levels}")
        self.levels = [int(level) for level in levels]
        self.register_buffer("_levels", torch.tensor(self.levels), persistent=False)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1]), dim=0)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        half = (self._levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., len(levels)) -> (codes scaled to [-1, 1], indices)."""
        bounded = self._bound(z.float())
        rounded = bounded + (bounded.round() - bounded).detach()
        half_width = self._levels // 2
        codes = rounded / half_width
        return codes, self.codes_to_indices(codes)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        half_width = self._levels // 2
        digits = (codes * half_width + half_width).round().long()
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices.long()[..., None] // self._basis) % self._levels
        half_width = self._levels // 2
        return (digits - half_width).float() / half_width
