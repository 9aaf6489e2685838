"""The VLLM conditioning of LEGO's diffusion model.

The VLLM image features and the hidden states of its generated text are projected to the UNet's cross-attention
width (5120 -> 768 in the paper: ``projection_img`` / ``projection_txt``); the projected text tokens are mixed by
a 2-layer pre-norm self-attention encoder (``self_attn_mix``). The cross-attention context is the CLIP text
embedding of the prompt followed by the projected image tokens and the mixed text tokens.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class VLLMConditioner(ModelMixin, ConfigMixin):
    """Projects VLLM features into cross-attention tokens; saved/loaded like any diffusers model (safetensors)."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        image_dim: int = 5120,
        text_dim: int = 5120,
        context_dim: int = 768,
        image_tokens: int = 256,
        text_tokens: int = 77,
        mixer_layers: int = 2,
        mixer_heads: int = 8,
        mixer_ff: int = 2048,
        mixer_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.projection_img = nn.Linear(image_dim, context_dim)
        self.projection_txt = nn.Linear(text_dim, context_dim)
        # PyTorch's defaults (feed-forward 2048, dropout 0.1) are what the paper's TransformerEncoderLayer used.
        layer = nn.TransformerEncoderLayer(d_model=context_dim, nhead=mixer_heads, dim_feedforward=mixer_ff,
                                           dropout=mixer_dropout, batch_first=True, norm_first=True)
        self.self_attn_mix = nn.TransformerEncoder(layer, num_layers=mixer_layers, enable_nested_tensor=False)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, image_tokens + text_tokens, context_dim); rows with ``keep`` False are all zeros.

        Zeroing happens after projection and mixing, as the paper's model does when the prompt is dropped.
        """
        image = self.projection_img(image_features)
        text = self.self_attn_mix(self.projection_txt(text_features))
        tokens = torch.cat([image, text], dim=1)
        if keep is not None:
            tokens = tokens * keep.to(tokens.dtype).view(-1, 1, 1)
        return tokens


def fit_tokens(features: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Truncate or zero-pad a ``(tokens, dim)`` feature matrix to ``n_tokens`` rows (the paper's 77 for text)."""
    if features.dim() != 2:
        raise ValueError(f"expected (tokens, dim) features, got shape {tuple(features.shape)}")
    if features.shape[0] >= n_tokens:
        return features[:n_tokens]
    pad = features.new_zeros(n_tokens - features.shape[0], features.shape[1])
    return torch.cat([features, pad], dim=0)


def fit_image_tokens(features: torch.Tensor, n_tokens: int, key: str = "") -> torch.Tensor:
    """Zero-pad ``(tokens, dim)`` visual tokens to ``n_tokens`` rows; never truncate: the tokens are the frame's
    patches in raster order, so keeping the first ``n_tokens`` would silently drop the bottom of the frame."""
    from egoforge.lego.config import LegoSetupError

    if features.dim() != 2:
        raise ValueError(f"expected (tokens, dim) features, got shape {tuple(features.shape)}")
    if features.shape[0] > n_tokens:
        raise LegoSetupError(f"the image features{f' of {key!r}' if key else ''} have {features.shape[0]} visual "
                             f"tokens but the model takes model.image_tokens = {n_tokens}: keeping the first "
                             f"{n_tokens} would drop the rest of the frame; re-train stage B with image_tokens: "
                             f"{features.shape[0]} (or null: read from the features), or extract features with the "
                             "stage-A pixel budget the model was trained with")
    return fit_tokens(features, n_tokens)


def build_context(clip_text: torch.Tensor, vllm_tokens: torch.Tensor | None) -> torch.Tensor:
    """[CLIP text tokens, projected image tokens, mixed text tokens] along the token axis."""
    return clip_text if vllm_tokens is None else torch.cat([clip_text, vllm_tokens.to(clip_text.dtype)], dim=1)
