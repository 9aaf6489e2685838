"""Convolutional stem: an image becomes (size / patch)^2 tokens (224 px, patch 16 -> 196; 112 px crops -> 49).

The official configs switch on ``enable_conv_stem`` (img 224, patch 16) but its code is not public; this follows
"Early convolutions help transformers see better" (Xiao et al. 2021): log2(patch) stride-2 3x3 convolutions with
widths hidden/8 .. hidden, then a 1x1 projection. GroupNorm(1, C) stands in for BatchNorm so that the EMA teacher
has no running statistics to track and per-GPU batch sizes do not matter. A learned 2-D position embedding at the
base grid is resized bicubically for other crop sizes, as DINO does for its local crops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def stem_widths(hidden_size: int, patch_size: int) -> list[int]:
    stages = int(math.log2(patch_size))
    if 2**stages != patch_size or stages < 1:
        raise ValueError(f"patch_size must be a power of two >= 2, got {patch_size}")
    return [max(hidden_size // 2 ** (stages - 1 - i), 1) for i in range(stages)]


class ConvStem(nn.Module):
    def __init__(self, hidden_size: int, image_size: int, patch_size: int, in_channels: int = 3) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size, self.base_grid = patch_size, image_size // patch_size
        layers: list[nn.Module] = []
        channels = in_channels
        for width in stem_widths(hidden_size, patch_size):
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False), nn.GroupNorm(1, width),
                       nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, hidden_size, 1))
        self.convs = nn.Sequential(*layers)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.base_grid**2, hidden_size))

    def position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        if (grid_h, grid_w) == (self.base_grid, self.base_grid):
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        table = self.pos_embed.reshape(1, self.base_grid, self.base_grid, dim).permute(0, 3, 1, 2)
        table = F.interpolate(table.float(), size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        return table.to(self.pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> ``[N, (H/patch)*(W/patch), hidden]``."""
        height, width = pixel_values.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image {height}x{width} is not a multiple of patch_size {self.patch_size}")
        features = self.convs(pixel_values)
        tokens = features.flatten(2).transpose(1, 2)
        return tokens + self.position_embedding(features.shape[-2], features.shape[-1])
