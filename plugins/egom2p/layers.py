"""Transformer building blocks shared by the trajectory tokenizers and the EgoM2P model.

Pre-LN blocks with optional biases (the tokenizers keep qkv biases, the EgoM2P model has none), GELU, tanh or
SwiGLU feed-forwards, masked self-/cross-attention on top of ``scaled_dot_product_attention``, and fixed sin-cos
position tables (1-D for trajectories, 3-D for video token grids).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sincos_1d(length: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(length, dim) fixed positions: sin of the first half of the frequencies, cos of the second (MoCo v3)."""
    if dim % 2:
        raise ValueError(f"1-D sin-cos positions need an even dimension, got {dim}")
    omega = 1.0 / temperature ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = torch.arange(length, dtype=torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """(t*h*w, dim) fixed positions for a video token grid, row-major over (t, h, w).

    The dimension is split between the axes (t and h get 2*floor(dim/6) each, w the rest), each axis encoded with
    :func:`sincos_1d`.
    """
    if dim % 2:
        raise ValueError(f"3-D sin-cos positions need an even dimension, got {dim}")
    t, h, w = grid
    d_t = d_h = 2 * (dim // 6)
    d_w = dim - d_t - d_h
    pt = sincos_1d(t, d_t)[:, None, None, :].expand(t, h, w, d_t)
    ph = sincos_1d(h, d_h)[None, :, None, :].expand(t, h, w, d_h)
    pw = sincos_1d(w, d_w)[None, None, :, :].expand(t, h, w, d_w)
    return torch.cat([pt, ph, pw], dim=-1).reshape(t * h * w, dim)


def mlp_hidden(dim: int, mlp_ratio: float, act: str) -> int:
    """Feed-forward width; SwiGLU uses 2/3 of it so the three matrices cost what GELU's two do (as in 4M)."""
    return int(dim * mlp_ratio * (2 / 3 if act == "swiglu" else 1))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None, act: str = "gelu", bias: bool = True):
        super().__init__()
        self.gated = act == "swiglu"
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.gate = nn.Linear(dim, hidden, bias=bias) if self.gated else None
        self.act = {"gelu": nn.GELU(), "tanh": nn.Tanh(), "swiglu": nn.SiLU()}[act]
        self.fc2 = nn.Linear(hidden, out or dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.act(self.fc1(x))
        if self.gated:  # SwiGLU: SiLU(x W1) * (x W3)
            hidden = hidden * self.gate(x)
        return self.fc2(hidden)


class Attention(nn.Module):
    """Multi-head attention; ``mask`` is boolean, True where a query may attend a key, shape (B, 1|Nq, Nk)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, proj_bias: bool = False,
                 cross: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.cross = cross
        if cross:
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        return x.view(B, N, self.num_heads, D // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cross:
            q = self._heads(self.q(x))
            k, v = (self._heads(t) for t in self.kv(context).chunk(2, dim=-1))
        else:
            q, k, v = (self._heads(t) for t in self.qkv(x).chunk(3, dim=-1))
        attn_mask = None if mask is None else mask[:, None]  # add the head axis
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        B, _, N, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, N, -1))


def layer_norm(dim: int, bias: bool = True, eps: float = 1e-6) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=eps, bias=bias)


class Block(nn.Module):
    """Pre-LN transformer encoder block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, act: str = "gelu", qkv_bias: bool = True,
                 bias: bool = True, norm_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        self.norm1 = layer_norm(dim, norm_bias, eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=bias)
        self.norm2 = layer_norm(dim, norm_bias, eps)
        self.mlp = Mlp(dim, mlp_hidden(dim, mlp_ratio, act), act=act, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-LN decoder block: masked self-attention, cross-attention to the encoder, feed-forward."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, act: str = "swiglu", bias: bool = False,
                 eps: float = 1e-6):
        super().__init__()
        self.norm1 = layer_norm(dim, bias, eps)
        self.self_attn = Attention(dim, num_heads, qkv_bias=bias, proj_bias=bias)
        self.norm_q = layer_norm(dim, bias, eps)
        self.norm_context = layer_norm(dim, bias, eps)
        self.cross_attn = Attention(dim, num_heads, qkv_bias=bias, proj_bias=bias, cross=True)
        self.norm2 = layer_norm(dim, bias, eps)
        self.mlp = Mlp(dim, mlp_hidden(dim, mlp_ratio, act), act=act, bias=bias)

    def forward(self, y: torch.Tensor, context: torch.Tensor, self_mask: torch.Tensor,
                cross_mask: torch.Tensor) -> torch.Tensor:
        y = y + self.self_attn(self.norm1(y), mask=self_mask)
        y = y + self.cross_attn(self.norm_q(y), context=self.norm_context(context), mask=cross_mask)
        return y + self.mlp(self.norm2(y))
