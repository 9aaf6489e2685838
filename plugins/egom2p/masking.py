"""4M-style multimodal masking with Dirichlet token budgets (as in 4M and EgoM2P; docs/egom2p.md "Model and training"),
as pure functions of a numpy Generator.

Per sample: pick one mixture component uniformly (or by ``mixture_weights``); its concentration ``alpha`` is shared
by every modality (the paper's {0.01, 0.1, 1, 10}). Input budget: ``floor(Dir(alpha) * N_in)`` over the modalities
available as *inputs*, the remainder handed out one token at a time to the argmax of fresh Dirichlet draws (so
near-zero shares stay zero), then capped at each modality's token count. Target budget: the same over the modalities
available as *targets* with ``N_tgt``, capped at what the input left of each modality. Unavailable modalities get
exactly zero. Tokens are then chosen uniformly at random inside each modality ("a video is a big image"): the
first ``input`` of a random permutation are inputs, the next ``target`` are targets, so the two never overlap.

The caps are applied without redistribution, as in the official implementation: a component that puts most of
the budget on a 30-token modality yields a sample with fewer than ``N_in`` inputs (the model pads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MaskingConfig:
    num_input_tokens: int = 2048
    num_target_tokens: int = 2048
    alphas: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    mixture_weights: list[float] | None = None  # None: uniform over the alphas

    def __post_init__(self) -> None:
        if self.num_input_tokens < 1 or self.num_target_tokens < 1:
            raise ValueError("num_input_tokens and num_target_tokens must be >= 1")
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"alphas must be positive, got {self.alphas}")
        if self.mixture_weights is not None and (
            len(self.mixture_weights) != len(self.alphas) or min(self.mixture_weights) < 0
            or sum(self.mixture_weights) <= 0
        ):
            raise ValueError(f"mixture_weights must be {len(self.alphas)} non-negative weights, "
                             f"got {self.mixture_weights}")


def dirichlet_budget(rng: np.random.Generator, total: int, alpha: float, caps: np.ndarray,
                     eligible: np.ndarray) -> np.ndarray:
    """Split ``total`` tokens over the eligible modalities with a symmetric Dirichlet(alpha), capped at ``caps``."""
    caps = np.asarray(caps, dtype=np.int64)
    eligible = np.asarray(eligible, bool) & (caps > 0)
    budget = np.zeros(len(caps), dtype=np.int64)
    idx = np.flatnonzero(eligible)
    if len(idx) == 0 or total <= 0:
        return budget
    share = rng.dirichlet(np.full(len(idx), alpha))
    part = np.floor(share * total).astype(np.int64)
    remainder = int(total - part.sum())
    if remainder > 0:  # argmax of fresh draws: modalities with ~zero share almost never get the leftovers
        winners = rng.dirichlet(np.full(len(idx), alpha), size=remainder).argmax(axis=1)
        part += np.bincount(winners, minlength=len(idx))
    budget[idx] = np.minimum(part, caps[idx])
    return budget


def sample_budgets(rng: np.random.Generator, cfg: MaskingConfig, num_tokens: np.ndarray, input_ok: np.ndarray,
                   target_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input budget, target budget) per modality for one sample."""
    weights = np.ones(len(cfg.alphas)) if cfg.mixture_weights is None else np.asarray(cfg.mixture_weights, float)
    alpha = cfg.alphas[rng.choice(len(cfg.alphas), p=weights / weights.sum())]
    num_tokens = np.asarray(num_tokens, dtype=np.int64)
    inputs = dirichlet_budget(rng, cfg.num_input_tokens, alpha, num_tokens, input_ok)
    targets = dirichlet_budget(rng, cfg.num_target_tokens, alpha, num_tokens - inputs, target_ok)
    return inputs, targets


def random_masks(rng: np.random.Generator, num_tokens: int, n_input: int,
                 n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (input_mask, target_mask) over one modality's tokens; True = hidden (4M's convention)."""
    if n_input + n_target > num_tokens:
        raise ValueError(f"{n_input} input + {n_target} target tokens exceed the modality's {num_tokens}")
    order = rng.permutation(num_tokens)
    input_mask = np.ones(num_tokens, bool)
    target_mask = np.ones(num_tokens, bool)
    input_mask[order[:n_input]] = False
    target_mask[order[n_input: n_input + n_target]] = False
    return input_mask, target_mask


def mask_sample(rng: np.random.Generator, cfg: MaskingConfig, num_tokens: list[int], input_ok: np.ndarray,
                target_ok: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Budgets then per-modality masks for one sample, in the order of ``num_tokens``."""
    inputs, targets = sample_budgets(rng, cfg, np.asarray(num_tokens), input_ok, target_ok)
    return [random_masks(rng, n, int(i), int(t)) for n, i, t in zip(num_tokens, inputs, targets)]
