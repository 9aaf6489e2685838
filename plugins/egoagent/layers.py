"""InternLM-style transformer layers: RMSNorm, SwiGLU MLP, rotary attention with causal / per-frame masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 as InternLM does: the mean of squares under-/overflows in fp16.
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x.float() * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def swiglu_hidden_size(hidden_size: int, mlp_ratio: float, multiple_of: int) -> int:
    """InternLM's SwiGLU width: ``hidden * mlp_ratio`` rounded up to ``multiple_of`` (8/3 * 1024 -> 2816)."""
    width = int(hidden_size * mlp_ratio)
    return multiple_of * ((width + multiple_of - 1) // multiple_of)


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden_size, intermediate_size, bias=False)  # gate
        self.w3 = nn.Linear(hidden_size, intermediate_size, bias=False)  # up
        self.w2 = nn.Linear(intermediate_size, hidden_size, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def rotary_tables(length: int, head_dim: int, theta: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables ``[length, head_dim]`` for 1-D rotary embeddings over token positions 0..length-1."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, heads, L, head_dim]`` by the position tables (rotate-half convention)."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def attention_mask(segment_ids: torch.Tensor | None, length: int, causal: bool, perframe: bool,
                   device) -> torch.Tensor | None:
    """Boolean ``[B or 1, 1, L, L]`` mask (True = may attend), or None when SDPA's own flags suffice.

    ``perframe`` keeps attention inside each frame (segment) of a packed sequence, as InternLM's per-frame
    attention does for stage 1; without it tokens see earlier frames too (stage 2's interleaved sequence).
    """
    if not perframe or segment_ids is None:
        return None  # plain causal (is_causal=True) or full attention
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    if causal:
        same = same & torch.ones(length, length, dtype=torch.bool, device=device).tril()
    return same[:, None]


class Attention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.wqkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                causal: bool) -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.wqkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = apply_rotary(qkv[0], cos, sin), apply_rotary(qkv[1], cos, sin), qkv[2]
        # Fast path (FlashAttention on GPU) when only causality is needed; an explicit mask otherwise.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, -1))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)); x + mlp(norm(x)) (no post-LN, as in the official config)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, eps: float) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(hidden_size, eps)
        self.attention = Attention(hidden_size, num_heads)
        self.ffn_norm = RMSNorm(hidden_size, eps)
        self.feed_forward = SwiGLU(hidden_size, intermediate_size)

    def forward(self, x, cos, sin, mask, causal):
        x = x + self.attention(self.attention_norm(x), cos, sin, mask, causal)
        return x + self.feed_forward(self.ffn_norm(x))
