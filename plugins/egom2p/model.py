"""The EgoM2P model: a 4M-style multimodal masked encoder-decoder over discrete tokens (EgoM2P paper, model section;
docs/egom2p.md "Model and training").

Every modality contributes a token embedding, a learned modality embedding (shared by encoder and decoder), fixed
sin-cos positions (3-D over the video grid, 1-D over trajectories) and an output head. A training sample gives, per
modality, the visible input tokens and the target positions (see ``masking``). The encoder sees the first
``num_input_tokens`` visible tokens of all modalities (padding masked out); the decoder queries are a shared mask
token plus the target positions' embeddings, attend to each other only within their modality (4M's separate
decoder mask) and cross-attend to the encoder output (projected, with the input embeddings added back). The loss
is cross-entropy on the targets averaged within each modality, then across the modalities present ("mod" loss).

``base`` is egom2p_base_12e_12d_swiglu_nobias (dim 768, 12 + 12 layers, 12 heads, SwiGLU, no biases, LayerNorm
without bias, eps 1e-6: about 400M parameters with the two 64k-vocabulary video modalities); ``tiny`` runs the
same code on CPU tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from egoforge.egom2p.layers import Block, DecoderBlock, layer_norm, sincos_1d, sincos_3d
from egoforge.egom2p.modalities import Modality

SIZES = {
    "base": {"dim": 768, "encoder_depth": 12, "decoder_depth": 12, "num_heads": 12},
    "tiny": {"dim": 64, "encoder_depth": 2, "decoder_depth": 2, "num_heads": 4},
}


@dataclass
class ModelConfig:
    dim: int = 768
    encoder_depth: int = 12
    decoder_depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    act: str = "swiglu"
    bias: bool = False
    norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.act not in ("swiglu", "gelu"):
            raise ValueError(f"act must be swiglu or gelu, got {self.act!r}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")


def positions_for(modality: Modality, dim: int) -> torch.Tensor:
    if modality.positions == "sincos_3d":
        return sincos_3d(tuple(modality.token_grid), dim)
    if modality.positions == "sincos_1d":
        return sincos_1d(modality.num_tokens, dim)
    raise ValueError(f"modality {modality.name}: unknown positional scheme {modality.positions!r}")


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:
        return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
    return torch.gather(x, 1, index)


class EgoM2P(nn.Module):
    def __init__(self, cfg: ModelConfig, table: dict[str, Modality]):
        super().__init__()
        self.cfg = cfg
        self.table = dict(table)
        self.names = list(self.table)
        D = cfg.dim
        self.token_emb = nn.ModuleDict({m: nn.Embedding(spec.vocab_size, D) for m, spec in self.table.items()})
        self.mod_emb = nn.ParameterDict({m: nn.Parameter(torch.zeros(1, 1, D)) for m in self.table})
        self.heads = nn.ModuleDict({m: nn.Linear(D, spec.vocab_size, bias=False) for m, spec in self.table.items()})
        for m, spec in self.table.items():
            self.register_buffer(f"pos_{m}", positions_for(spec, D)[None], persistent=False)
        self.register_buffer("mod_ids", torch.cat([torch.full((spec.num_tokens,), i)
                                                   for i, spec in enumerate(self.table.values())]), persistent=False)
        self.register_buffer("positions", torch.cat([torch.arange(spec.num_tokens) for spec in self.table.values()]),
                             persistent=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.encoder = nn.ModuleList(
            Block(D, cfg.num_heads, cfg.mlp_ratio, act=cfg.act, qkv_bias=cfg.bias, bias=cfg.bias, norm_bias=cfg.bias,
                  eps=cfg.norm_eps) for _ in range(cfg.encoder_depth))
        self.encoder_norm = layer_norm(D, cfg.bias, cfg.norm_eps)
        self.decoder_proj_context = nn.Linear(D, D, bias=cfg.bias)
        self.decoder = nn.ModuleList(
            DecoderBlock(D, cfg.num_heads, cfg.mlp_ratio, act=cfg.act, bias=cfg.bias, eps=cfg.norm_eps)
            for _ in range(cfg.decoder_depth))
        self.decoder_norm = layer_norm(D, cfg.bias, cfg.norm_eps)
        self._init_weights()

    def _init_weights(self) -> None:
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                if name.endswith(".qkv") or name.endswith(".kv"):  # xavier per projection, as MAE / 4M do
                    parts = 3 if name.endswith(".qkv") else 2
                    bound = (6.0 / (module.weight.shape[0] // parts + module.weight.shape[1])) ** 0.5
                    nn.init.uniform_(module.weight, -bound, bound)
                else:
                    nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=self.cfg.init_std)
        for param in [*self.mod_emb.values(), self.mask_token]:
            nn.init.normal_(param, std=self.cfg.init_std)

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW should not decay: norms, biases, modality embeddings and the mask token."""
        names = set()
        for name, param in self.named_parameters():
            if param.ndim < 2 or name.startswith("mod_emb") or name == "mask_token":
                names.add(name)
        return names

    # ---- assembling the sequences ----

    def _embeddings(self, batch_size: int) -> torch.Tensor:
        return torch.cat([getattr(self, f"pos_{m}") + self.mod_emb[m] for m in self.names], 1).expand(batch_size, -1,
                                                                                                        -1)

    def _select(self, hidden: torch.Tensor, count: int) -> torch.Tensor:
        """Indices of the first ``count`` not-hidden positions per row, in their original order (padding last)."""
        order = torch.sort(hidden.to(torch.uint8), dim=1, stable=True).indices
        return order[:, : min(count, hidden.shape[1])]

    def encode(self, mods: dict[str, dict[str, torch.Tensor]], num_input_tokens: int):
        """Encoder over the visible tokens: (context for the decoder, key validity (B, N_enc))."""
        tokens = torch.cat([self.token_emb[m](mods[m]["tokens"]) for m in self.names], 1)
        emb = self._embeddings(tokens.shape[0])
        hidden = torch.cat([mods[m]["input_mask"] for m in self.names], 1)
        index = self._select(hidden, num_input_tokens)
        valid = ~torch.gather(hidden, 1, index)
        emb = _gather(emb, index) * valid[..., None]
        x = _gather(tokens, index) * valid[..., None] + emb
        # A sample without any visible token attends to one zero "null" slot instead of nothing (no NaNs).
        keys = valid.clone()
        keys[~valid.any(1), 0] = True
        for block in self.encoder:
            x = block(x, mask=keys[:, None, :])
        context = self.decoder_proj_context(self.encoder_norm(x)) + emb
        return context, keys

    def decode(self, mods: dict[str, dict[str, torch.Tensor]], context: torch.Tensor, keys: torch.Tensor,
               num_target_tokens: int):
        """Decoder over the target positions: (hidden (B, N_dec, D), valid, modality ids, positions, target ids)."""
        B = context.shape[0]
        hidden = torch.cat([mods[m]["target_mask"] for m in self.names], 1)
        targets = torch.cat([mods[m]["tokens"] for m in self.names], 1)
        index = self._select(hidden, num_target_tokens)
        valid = ~torch.gather(hidden, 1, index)
        mod_ids = self.mod_ids[index]
        emb = _gather(self._embeddings(B), index)
        y = (self.mask_token + emb) * valid[..., None]
        same = (mod_ids[:, :, None] == mod_ids[:, None, :]) & valid[:, None, :]
        same |= torch.eye(index.shape[1], dtype=torch.bool, device=y.device)  # padding rows attend to themselves
        for block in self.decoder:
            y = block(y, context, self_mask=same, cross_mask=keys[:, None, :])
        return self.decoder_norm(y), valid, mod_ids, self.positions[index], torch.gather(targets, 1, index)

    def forward(self, mods: dict[str, dict[str, torch.Tensor]], num_input_tokens: int, num_target_tokens: int):
        """Training loss: per-modality mean cross-entropy, averaged over the modalities that have targets."""
        context, keys = self.encode(mods, num_input_tokens)
        y, valid, mod_ids, _, target_ids = self.decode(mods, context, keys, num_target_tokens)
        losses = {}
        for i, m in enumerate(self.names):
            sel = valid & (mod_ids == i)
            if sel.any():
                losses[m] = F.cross_entropy(self.heads[m](y[sel]).float(), target_ids[sel])
        # Heads of modalities without targets in this batch still join the graph (with zero gradient): DDP
        # requires every parameter to take part in every step unless find_unused_parameters slows it all down.
        idle = sum(self.heads[m].weight.sum() for m in self.names if m not in losses) * 0.0
        if not losses:  # no targets at all (cannot happen with non-zero budgets)
            return y.sum() * 0.0 + idle, losses
        return torch.stack(list(losses.values())).mean() + idle, losses

    def logits(self, modality: str, y: torch.Tensor) -> torch.Tensor:
        return self.heads[modality](y)


def build_model(cfg: ModelConfig, table: dict[str, Modality]) -> EgoM2P:
    return EgoM2P(cfg, table)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
