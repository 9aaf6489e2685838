"""Heads on top of the backbone: the DINO projection head, and stage 2's pose embedding and action head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_JOINTS = 17  # COCO body keypoints, Ego-Exo4D's order (egoforge.egoagent.data.egoexo_pose.JOINT_NAMES)


class DINOHead(nn.Module):
    """DINO's head: 3-layer MLP -> L2-normalised bottleneck -> weight-normalised prototypes (out_dim).

    The prototype layer keeps unit-norm rows (DINO's ``norm_last_layer=True``), written as a normalised weight
    instead of torch's weight_norm parametrisation so that EMA and checkpoints see one plain tensor.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                # std 1/sqrt(fan_in): DINO's 0.02 at the official widths (1024-2048), and a bottleneck that does
                # not shrink towards zero in narrow test heads (whose normalisation would then blow up gradients).
                nn.init.trunc_normal_(layer.weight, std=layer.in_features ** -0.5)
                nn.init.zeros_(layer.bias)
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        """The L2-normalised bottleneck embedding (future-state retrieval compares these)."""
        return F.normalize(self.mlp(features), dim=-1, eps=1e-6)

    def project(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bottleneck embedding, prototype logits)."""
        embedding = self.bottleneck(features)
        return embedding, F.linear(embedding, F.normalize(self.prototypes, dim=-1, eps=1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.project(features)[1]


class PoseEmbedding(nn.Module):
    """One token per action: ``frames x 17 joints x (x, y, z, visible)`` flattened, then a linear map.

    Missing joints arrive as (-1, -1, -1) with visibility 0; their coordinates are zeroed so the filler value
    carries no signal, and the visibility flag tells the model which joints are real.
    """

    def __init__(self, hidden_size: int, action_frames: int, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.proj = nn.Linear(action_frames * num_joints * 4, hidden_size)
        self.type_embedding = nn.Parameter(torch.zeros(hidden_size))
        nn.init.trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)
        nn.init.trunc_normal_(self.type_embedding, std=0.02)

    def forward(self, joints: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``joints [..., frames, 17, 3]``, ``visible [..., frames, 17]`` -> ``[..., hidden]``."""
        flags = visible.to(joints.dtype).unsqueeze(-1)
        features = torch.cat([joints * flags, flags], dim=-1).flatten(-3)
        return self.proj(features) + self.type_embedding


class ActionHead(nn.Module):
    """Predicts the next action (future joints) from a state's CLS hidden state."""

    def __init__(self, hidden_size: int, action_frames: int, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.action_frames, self.num_joints = action_frames, num_joints
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(),
                                 nn.Linear(hidden_size, action_frames * num_joints * 3))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.mlp(hidden).unflatten(-1, (self.action_frames, self.num_joints, 3))
