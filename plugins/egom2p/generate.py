"""ROAR: random-order autoregressive decoding of one target modality from conditioning modalities (4M's scheme).

The target's token positions are put in a random order and decoded in ``steps`` chunks (a linear schedule: equal
chunks; or cosine: small chunks first). At each step the encoder sees the conditioning tokens plus every target token
decoded so far, the decoder queries the next chunk, and the chunk is sampled from the logits with temperature,
classifier-free guidance (logits_uncond + scale * (logits_cond - logits_uncond), where "uncond" hides the conditioning
modalities) and top-k / top-p filtering. The official evaluation scripts' settings (``eval_model_*2*.py``): temperature
0.01, guidance 2.0, top-p 0.8, top-k 0; 3 steps for depth and camera, 5 for gaze, 6 for rgb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from egoforge.egom2p.model import EgoM2P


@dataclass
class GenerationConfig:
    steps: int = 3
    schedule: str = "linear"  # "linear" or "cosine"
    temperature: float = 0.01
    cfg_scale: float = 2.0
    top_p: float = 0.8
    top_k: int = 0


@dataclass(frozen=True)
class Task:
    name: str
    conditions: tuple[str, ...]
    target: str
    steps: int


TASKS = {
    t.name: t
    for t in (
        Task("rgb2depth", ("rgb",), "depth", 3),
        Task("rgb2cam", ("rgb",), "cam", 3),
        Task("rgb2gaze", ("rgb",), "gaze", 5),
        Task("depth2rgb", ("depth",), "rgb", 6),
    )
}


def token_schedule(num_tokens: int, steps: int, schedule: str = "linear") -> list[int]:
    """Tokens decoded at each step; sums to ``num_tokens``, every step at least one token."""
    steps = max(1, min(steps, num_tokens))
    if schedule == "linear":
        edges = np.linspace(0, num_tokens, steps + 1).round().astype(int)
    elif schedule == "cosine":  # fraction decoded after step s: 1 - cos(pi/2 * s/steps)
        edges = np.round(num_tokens * (1 - np.cos(np.linspace(0, math.pi / 2, steps + 1)))).astype(int)
    else:
        raise ValueError(f"schedule must be linear or cosine, got {schedule!r}")
    edges[-1] = num_tokens
    counts = np.diff(edges)
    while (counts < 1).any():  # borrow from the largest chunk so every step decodes something
        counts[np.argmin(counts)] += 1
        counts[np.argmax(counts)] -= 1
    return counts.tolist()


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Top-k then nucleus filtering over the last axis (filtered entries become -inf; the best always stays)."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) > top_p  # keep tokens until the mass reaches top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return logits


def sample(logits: torch.Tensor, temperature: float, top_k: int, top_p: float,
           generator: torch.Generator | None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


def _inputs(model: EgoM2P, batch: int, device: torch.device, conditions: dict[str, torch.Tensor], target: str,
            decoded: torch.Tensor, known: torch.Tensor, query: torch.Tensor, hide_conditions: bool) -> dict:
    mods = {}
    for name, spec in model.table.items():
        n = spec.num_tokens
        tokens = torch.zeros(batch, n, dtype=torch.long, device=device)
        input_mask = torch.ones(batch, n, dtype=torch.bool, device=device)
        target_mask = torch.ones(batch, n, dtype=torch.bool, device=device)
        if name in conditions:
            tokens = conditions[name]
            input_mask = torch.full_like(input_mask, hide_conditions)
        if name == target:
            tokens, input_mask = decoded, ~known
            target_mask[torch.arange(batch, device=device)[:, None], query] = False
        mods[name] = {"tokens": tokens, "input_mask": input_mask, "target_mask": target_mask}
    return mods


def _target_logits(model: EgoM2P, mods: dict, target: str, num_query: int) -> tuple[torch.Tensor, torch.Tensor]:
    visible = sum((~d["input_mask"]).sum(1) for d in mods.values())
    context, keys = model.encode(mods, int(visible.max().clamp_min(1)))
    y, _, _, positions, _ = model.decode(mods, context, keys, num_query)
    return model.logits(target, y).float(), positions


@torch.no_grad()
def roar_generate(model: EgoM2P, conditions: dict[str, torch.Tensor], target: str, cfg: GenerationConfig,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Decode ``target`` tokens (B, N_target) given ``conditions`` {modality: tokens (B, N_m)}."""
    if target not in model.table:
        raise ValueError(f"unknown target modality {target!r}; the model knows {list(model.table)}")
    unknown = sorted(set(conditions) - set(model.table))
    if unknown or target in conditions:
        raise ValueError(f"conditions {sorted(conditions)} must be known modalities other than the target {target}")
    device = next(model.parameters()).device
    batch = next(iter(conditions.values())).shape[0] if conditions else 1
    conditions = {m: t.to(device).long() for m, t in conditions.items()}
    for m, t in conditions.items():
        if t.shape != (batch, model.table[m].num_tokens):
            raise ValueError(f"condition {m}: expected tokens ({batch}, {model.table[m].num_tokens}), "
                             f"got {tuple(t.shape)}")
    n = model.table[target].num_tokens
    order = torch.stack([torch.randperm(n, generator=generator) for _ in range(batch)]).to(device)
    decoded = torch.zeros(batch, n, dtype=torch.long, device=device)
    known = torch.zeros(batch, n, dtype=torch.bool, device=device)
    rows = torch.arange(batch, device=device)[:, None]
    done = 0
    for count in token_schedule(n, cfg.steps, cfg.schedule):
        query = order[:, done: done + count]
        logits, positions = _target_logits(model, _inputs(model, batch, device, conditions, target, decoded, known,
                                                           query, False), target, count)
        if cfg.cfg_scale != 1.0 and conditions:
            uncond, _ = _target_logits(model, _inputs(model, batch, device, conditions, target, decoded, known, query,
                                                      True), target, count)
            logits = uncond + cfg.cfg_scale * (logits - uncond)
        tokens = sample(logits, cfg.temperature, cfg.top_k, cfg.top_p, generator)
        decoded[rows, positions] = tokens.to(device)
        known[rows, positions] = True
        done += count
    return decoded
