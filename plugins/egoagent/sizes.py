"""Named model sizes (timm-style: one name, every dimension). 300m and 1b are the official configs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSize:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    # SwiGLU width rounding (InternLM rounds hidden * 8/3 up to a multiple of 256).
    multiple_of: int = 256
    # DINO head: MLP hidden width, bottleneck width, prototypes (out_dim 65536 in the official configs).
    head_hidden_size: int = 2048
    head_bottleneck_size: int = 256
    out_dim: int = 65536


SIZES: dict[str, ModelSize] = {
    # hidden 1024, 22 layers, 8 heads (InternLM/configs/dino_pretrain/lr5e-4_tmp004_300m.py)
    "300m": ModelSize(1024, 22, 8),
    # hidden 2048, 22 layers, 16 heads (lr5e-4_tmp004_1b.py)
    "1b": ModelSize(2048, 22, 16),
    # CPU tests and the offline demo: trains a few steps in seconds.
    "tiny": ModelSize(32, 2, 2, multiple_of=8, head_hidden_size=64, head_bottleneck_size=32, out_dim=256),
}


def get_size(name: str) -> ModelSize:
    if name not in SIZES:
        raise KeyError(f"unknown EgoAgent size {name!r}; known: {', '.join(SIZES)}")
    return SIZES[name]
