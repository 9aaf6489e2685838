"""The trainable EgoAgent network: backbone + DINO head, plus stage 2's pose embedding and action head.

Stage 2 lays out each sample as an interleaved sequence ``s_0, a_0, s_1, a_1, ..., s_{H-1}, a_{H-1}`` where a
state ``s_t`` is a frame's patch tokens followed by its CLS token and an action ``a_t`` is one token embedding the
body motion from state t to state t+1. Under causal attention:

- the CLS of ``s_t`` sees ``s_<=t`` and ``a_<t``: it is the state representation (L_rep) and predicts the next
  action ``a_t`` (L_act, the policy);
- the token of ``a_t`` sees ``s_<=t`` and ``a_<=t``: it predicts the embedding of the next state ``s_{t+1}``
  (L_pred, the world model), which the EMA observer computes from the real future frame.

[INFERENCE] from the paper's abstract (the stage-2 code is not public): one action token per step and these read-out
positions are egoforge's choices, each a recipe option (``stage2`` section of the recipes).
"""

from __future__ import annotations

import torch
from torch import nn

from egoforge.egoagent.backbone import EgoAgentModel
from egoforge.egoagent.heads import ActionHead, DINOHead, PoseEmbedding


class EgoAgentNetwork(nn.Module):
    def __init__(self, backbone: EgoAgentModel, head: DINOHead, action_frames: int | None = None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        if action_frames:
            hidden = backbone.config.hidden_size
            self.pose_embed = PoseEmbedding(hidden, action_frames)
            self.action_head = ActionHead(hidden, action_frames)

    def forward(self, crops: list[torch.Tensor] | None = None, frames: torch.Tensor | None = None,
                actions: torch.Tensor | None = None, visible: torch.Tensor | None = None,
                history_attention: bool = True):
        """One entry point (DDP hooks run on ``forward``): ``crops`` -> multi-crop logits; otherwise the stage-2
        sequence -> state / prediction logits, the predicted next-state embedding and the predicted actions."""
        if crops is not None:
            return self.multicrop_logits(crops)
        state_hidden, action_hidden = self.sequence(frames, actions, visible, history_attention)
        steps = state_hidden.shape[1]
        embeddings, logits = self.head.project(torch.cat([state_hidden, action_hidden], dim=1))
        return {
            "state_logits": logits[:, :steps],
            "pred_logits": logits[:, steps:],
            "pred_embedding": embeddings[:, steps:],
            "actions": self.action_head(state_hidden),
        }

    def cls_features(self, images: torch.Tensor) -> torch.Tensor:
        """Each image encoded on its own (stage 1, the teacher, kNN): the CLS hidden state ``[N, hidden]``."""
        return self.backbone(images).pooler_output

    def multicrop_logits(self, crops: list[torch.Tensor]) -> torch.Tensor:
        """DINO's multi-crop forward: crops of one resolution share a backbone pass. ``crops`` holds one
        ``[B, 3, S, S]`` tensor per view; returns head outputs ``[views, B, out_dim]`` in the same order."""
        features, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            features.append(self.cls_features(torch.cat(crops[start:end])))
            start = end
        logits = self.head(torch.cat(features))
        return logits.view(len(crops), crops[0].shape[0], -1)

    def sequence(self, frames: torch.Tensor, actions: torch.Tensor, visible: torch.Tensor,
                 history_attention: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: ``frames [B, H, 3, S, S]``, ``actions [B, H, frames, 17, 3]``, ``visible [B, H, frames, 17]``.

        Returns ``(state_hidden, action_hidden)``, each ``[B, H, hidden]``: the CLS of every state and the output
        at every action token. ``history_attention=False`` limits attention to one state/action step.
        """
        batch, steps = frames.shape[:2]
        state_tokens = self.backbone.embed_images(frames.flatten(0, 1))
        per_state = state_tokens.shape[1]
        state_tokens = state_tokens.view(batch, steps, per_state, -1)
        action_tokens = self.pose_embed(actions, visible).to(state_tokens.dtype).unsqueeze(2)
        sequence = torch.cat([state_tokens, action_tokens], dim=2)  # [B, H, P + 2, D]
        per_step = per_state + 1
        segment_ids = torch.arange(steps, device=frames.device).repeat_interleave(per_step).expand(batch, -1)
        hidden = self.backbone.encode(sequence.flatten(1, 2), segment_ids=segment_ids,
                                      perframe=not history_attention)
        hidden = hidden.view(batch, steps, per_step, -1)
        return hidden[:, :, per_state - 1], hidden[:, :, per_state]
