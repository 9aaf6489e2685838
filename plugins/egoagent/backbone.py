"""The EgoAgent backbone as a Hugging Face model: conv stem + CLS token + InternLM-style causal transformer.

``EgoAgentModel`` is what ``egoforge egoagent export`` writes (``config.json`` + ``model.safetensors``) and what
``AutoModel.from_pretrained`` loads once ``egoforge.egoagent`` is imported. The trainers wrap it with the DINO head
(and, in stage 2, the pose embedding and action head), which are not part of the export.

Token layout: an image gives its patch tokens followed by one CLS token. Under causal attention only the last
token sees the whole frame, so the CLS token goes *after* the patches ([INFERENCE]: the official model code is
not public; this is the placement under which a causal CLS summarises the frame).
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers import initialization as hf_init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from egoforge.egoagent.layers import Block, RMSNorm, attention_mask, rotary_tables, swiglu_hidden_size
from egoforge.egoagent.sizes import get_size
from egoforge.egoagent.stem import ConvStem


class EgoAgentConfig(PretrainedConfig):
    model_type = "egoagent"

    def __init__(
        self,
        hidden_size: int = 1024,
        num_hidden_layers: int = 22,
        num_attention_heads: int = 8,
        mlp_ratio: float = 8 / 3,
        multiple_of: int = 256,
        rms_norm_eps: float = 1e-6,
        image_size: int = 224,
        patch_size: int = 16,
        rope_theta: float = 10000.0,
        causal: bool = True,
        perframe_attention: bool = True,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads = (
            hidden_size, num_hidden_layers, num_attention_heads)
        self.mlp_ratio, self.multiple_of, self.rms_norm_eps = mlp_ratio, multiple_of, rms_norm_eps
        self.image_size, self.patch_size, self.rope_theta = image_size, patch_size, rope_theta
        self.causal, self.perframe_attention, self.initializer_range = causal, perframe_attention, initializer_range
        super().__init__(**kwargs)

    @classmethod
    def from_size(cls, size: str, **overrides) -> EgoAgentConfig:
        spec = get_size(size)
        values = dict(hidden_size=spec.hidden_size, num_hidden_layers=spec.num_hidden_layers,
                      num_attention_heads=spec.num_attention_heads, multiple_of=spec.multiple_of)
        values.update(overrides)
        return cls(**values)

    @property
    def intermediate_size(self) -> int:
        return swiglu_hidden_size(self.hidden_size, self.mlp_ratio, self.multiple_of)


class EgoAgentPreTrainedModel(PreTrainedModel):
    config_class = EgoAgentConfig
    base_model_prefix = "egoagent"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Block"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            hf_init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                hf_init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            # He init keeps the patch tokens at unit scale; at std 0.02 the constant CLS token would dominate
            # the CLS output and every image would start with nearly the same feature (DINO then collapses).
            hf_init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                hf_init.zeros_(module.bias)
        elif isinstance(module, (RMSNorm, nn.GroupNorm)):
            hf_init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                hf_init.zeros_(module.bias)
        elif isinstance(module, ConvStem):
            hf_init.trunc_normal_(module.pos_embed, std=std)
        elif isinstance(module, EgoAgentModel):
            # Near zero, as timm's ViTs: the CLS output then starts as a pooling of the image's tokens instead of
            # the same learned vector for every image.
            hf_init.normal_(module.cls_token, std=1e-6)


class EgoAgentModel(EgoAgentPreTrainedModel):
    def __init__(self, config: EgoAgentConfig) -> None:
        super().__init__(config)
        self.stem = ConvStem(config.hidden_size, config.image_size, config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.blocks = nn.ModuleList(
            Block(config.hidden_size, config.num_attention_heads, config.intermediate_size, config.rms_norm_eps)
            for _ in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def embed_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` -> ``[N, patches + 1, hidden]`` (patch tokens, then CLS)."""
        tokens = self.stem(pixel_values)
        return torch.cat([tokens, self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)], dim=1)

    def encode(self, tokens: torch.Tensor, segment_ids: torch.Tensor | None = None,
               perframe: bool | None = None) -> torch.Tensor:
        """Run the transformer over a token sequence ``[B, L, hidden]``; returns the normed hidden states.

        ``segment_ids [B, L]`` marks which frame each token belongs to; with ``perframe`` (default: the config)
        attention stays inside a frame. Without segments a sequence is one frame (stage 1) or an interleaved
        state/action history attended causally (stage 2, ``perframe=False``).
        """
        perframe = self.config.perframe_attention if perframe is None else perframe
        length = tokens.shape[1]
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        cos, sin = rotary_tables(length, head_dim, self.config.rope_theta, tokens.device, tokens.dtype)
        mask = attention_mask(segment_ids, length, self.config.causal, perframe, tokens.device)
        hidden = tokens
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                hidden = torch.utils.checkpoint.checkpoint(block, hidden, cos, sin, mask, self.config.causal,
                                                           use_reentrant=False)
            else:
                hidden = block(hidden, cos, sin, mask, self.config.causal)
        return self.norm(hidden)

    def forward(self, pixel_values: torch.Tensor, return_dict: bool | None = None, **kwargs):
        """Encode each image on its own; ``pooler_output`` is the CLS feature (what kNN evaluation uses)."""
        hidden = self.encode(self.embed_images(pixel_values))
        if return_dict is False:
            return hidden, hidden[:, -1]
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=hidden[:, -1])


def _register_auto_classes() -> None:
    try:
        AutoConfig.register(EgoAgentConfig.model_type, EgoAgentConfig)
        AutoModel.register(EgoAgentConfig, EgoAgentModel)
    except ValueError:  # already registered (module imported twice under different names)
        pass


_register_auto_classes()
