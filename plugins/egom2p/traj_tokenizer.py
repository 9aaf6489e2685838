"""Camera-trajectory and gaze VQ tokenizers (docs/egom2p.md "Tokenizers"): 60 samples -> 30 tokens from a 256-code VQ.

Encoder: Conv1d(C -> dim, kernel = stride = 2) for 30 tokens, fixed 1-D sin-cos positions, ``depth`` pre-LN blocks
(qkv bias, GELU), a tanh post-MLP residual, then a 1x1 projection to the 32-d code space and the cosine EMA VQ.
Decoder mirrors it: 1x1 projection back, positions, blocks, post-MLP, Linear(dim -> C * 2) unfolded back to 60 x C.

Features: camera poses are canonicalised to the first frame (T0^-1 Tt) and become 9-D (6D rotation + translation),
standardised with per-channel statistics fitted on the training clips (or the paper's constants); gaze is the crop's
[0, 1] coordinates mapped to [-1, 1] with mean 0.5 / std 0.5 plus a validity mask. The gaze loss is masked MSE and
the encoder multiplies its input by the mask, so invalid samples never leak into the tokens.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from egoforge.egom2p.geometry import canonicalize, poses_from_9d, poses_to_9d
from egoforge.egom2p.layers import Block, Mlp, layer_norm, sincos_1d
from egoforge.egom2p.quantizers import CosineEMAQuantizer

TOKENIZER_TYPE = "egom2p_traj_vq"
CHANNELS = {"cam": 9, "gaze": 2}
# Official camera statistics (lgen-sudo/EgoM2P egom2p/utils/data_constants.py), for `normalization: egom2p`.
EGOM2P_CAM_MEAN = (0.93305, 0.00441, -0.00475, -0.00403, 0.96702, 0.01230, 0.00254, -0.00253, 0.03687)
EGOM2P_CAM_STD = (0.22410, 0.15410, 0.23539, 0.15159, 0.09891, 0.17871, 0.16230, 0.11306, 0.22450)
# Gaze outside [-0.2, 1.2] of the crop is treated as a tracking failure (the official gaze loader does the same).
GAZE_VALID_RANGE = (-0.2, 1.2)


@dataclass
class TrajTokenizerConfig:
    modality: str = "cam"  # "cam" or "gaze"
    frames: int = 60
    downsample: int = 2
    dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    code_dim: int = 32
    num_codes: int = 256
    ema_decay: float = 0.99
    dead_code_threshold: float = 32.0
    commitment: float = 1.0

    def __post_init__(self) -> None:
        if self.modality not in CHANNELS:
            raise ValueError(f"modality must be one of {sorted(CHANNELS)}, got {self.modality!r}")
        if self.frames % self.downsample:
            raise ValueError(f"frames {self.frames} must be a multiple of downsample {self.downsample}")

    @property
    def channels(self) -> int:
        return CHANNELS[self.modality]

    @property
    def num_tokens(self) -> int:
        return self.frames // self.downsample


# ---- features (numpy, pure) ----

def cam_features(poses: np.ndarray) -> np.ndarray:
    """(B, 60, 4, 4) camera-to-world -> (B, 60, 9) canonical 6D rotation + translation (not yet standardised)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.shape[-2:] != (4, 4):
        raise ValueError(f"camera clips must be (..., 4, 4) poses, got {poses.shape}")
    return poses_to_9d(canonicalize(poses)).astype(np.float32)


def gaze_features(gaze: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 60, 3) (x, y, valid) in crop coordinates -> (B, 60, 2) coordinates and (B, 60) validity mask.

    NaNs and points outside :data:`GAZE_VALID_RANGE` are invalid; invalid coordinates are zeroed.
    """
    gaze = np.asarray(gaze, dtype=np.float64)
    if gaze.shape[-1] != 3:
        raise ValueError(f"gaze clips must be (..., 3) = x, y, valid, got {gaze.shape}")
    xy = gaze[..., :2]
    lo, hi = GAZE_VALID_RANGE
    valid = (gaze[..., 2] > 0.5) & np.isfinite(xy).all(-1) & (xy >= lo).all(-1) & (xy <= hi).all(-1)
    return np.where(valid[..., None], np.nan_to_num(xy), 0.0).astype(np.float32), valid


def clip_features(modality: str, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokenizer features and validity mask (all True for the camera) of a batch of clips."""
    if modality == "cam":
        feats = cam_features(clips)
        return feats, np.ones(feats.shape[:2], bool)
    return gaze_features(clips)


def features_to_clips(modality: str, feats: np.ndarray) -> np.ndarray:
    """Inverse of :func:`clip_features`: camera poses (canonical frame) or gaze (x, y, valid=1)."""
    feats = np.asarray(feats, dtype=np.float64)
    if modality == "cam":
        return poses_from_9d(feats).astype(np.float32)
    return np.concatenate([feats, np.ones(feats.shape[:-1] + (1,))], axis=-1).astype(np.float32)


def fit_statistics(modality: str, feats: np.ndarray, valid: np.ndarray, normalization: str) -> tuple[list, list]:
    """Per-channel (mean, std) used to standardise features: 'fit' on data, 'egom2p' constants, gaze fixed 0.5."""
    if modality == "gaze":
        return [0.5, 0.5], [0.5, 0.5]
    if normalization == "egom2p":
        return list(EGOM2P_CAM_MEAN), list(EGOM2P_CAM_STD)
    if normalization != "fit":
        raise ValueError(f"normalization must be 'fit' or 'egom2p', got {normalization!r}")
    flat = feats[valid]
    std = flat.std(0)
    return flat.mean(0).tolist(), np.where(std < 1e-6, 1.0, std).tolist()


# ---- model ----

class _Trunk(nn.Module):
    def __init__(self, cfg: TrajTokenizerConfig):
        super().__init__()
        self.register_buffer("pos", sincos_1d(cfg.num_tokens, cfg.dim)[None], persistent=False)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.num_heads, cfg.mlp_ratio, act="gelu", qkv_bias=cfg.qkv_bias) for _ in range(cfg.depth)
        )
        self.norm_mlp = layer_norm(cfg.dim)
        self.post_mlp = Mlp(cfg.dim, int(cfg.dim * cfg.mlp_ratio), act="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return x + self.post_mlp(self.norm_mlp(x))


class TrajectoryVQVAE(nn.Module):
    def __init__(self, cfg: TrajTokenizerConfig):
        super().__init__()
        self.cfg = cfg
        C, D = cfg.channels, cfg.dim
        self.register_buffer("feature_mean", torch.zeros(C))
        self.register_buffer("feature_std", torch.ones(C))
        self.patchify = nn.Conv1d(C, D, kernel_size=cfg.downsample, stride=cfg.downsample)
        self.encoder = _Trunk(cfg)
        self.quant_proj = nn.Linear(D, cfg.code_dim)  # the 1x1 convolution to the code space
        self.quantizer = CosineEMAQuantizer(cfg.num_codes, cfg.code_dim, cfg.ema_decay, cfg.dead_code_threshold,
                                            cfg.commitment)
        self.post_quant_proj = nn.Linear(cfg.code_dim, D)
        self.decoder = _Trunk(cfg)
        self.unpatchify = nn.Linear(D, C * cfg.downsample)
        self.apply(_init)

    def set_statistics(self, mean, std) -> None:
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feature_mean) / self.feature_std

    def denormalize(self, feats: torch.Tensor) -> torch.Tensor:
        return feats * self.feature_std + self.feature_mean

    def _latent(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        h = self.patchify(x.transpose(1, 2)).transpose(1, 2)
        return self.quant_proj(self.encoder(h))

    def _decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        h = self.decoder(self.post_quant_proj(codes))
        B, N, _ = h.shape
        out = self.unpatchify(h).view(B, N, self.cfg.downsample, self.cfg.channels)
        return out.reshape(B, N * self.cfg.downsample, self.cfg.channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        """Normalised features (B, 60, C) -> (reconstruction, indices (B, 30), commitment loss)."""
        quantized, indices, commit = self.quantizer(self._latent(x, mask))
        return self._decode_codes(quantized), indices, commit

    def loss(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        return vq_loss(*self(x, mask), x, mask)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.quantizer.nearest(self._latent(x, mask))

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self._decode_codes(self.quantizer.lookup(indices.long()))


def vq_loss(recon: torch.Tensor, indices: torch.Tensor, commit: torch.Tensor, x: torch.Tensor,
            mask: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruction MSE (masked: only valid samples count) + the quantizer's commitment loss."""
    err = (recon - x) ** 2
    if mask is None:
        rec = err.mean()
    else:
        weight = mask[..., None].to(err.dtype).expand_as(err)
        rec = (err * weight).sum() / weight.sum().clamp_min(1.0)
    return rec + commit, {"recon_mse": float(rec.detach()), "commit": float(commit.detach())}


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


# ---- the tokenizer as used by the pipeline (numpy clips in, tokens out) ----

class TrajectoryTokenizer:
    """Clips <-> tokens for one trajectory modality, wrapping a trained :class:`TrajectoryVQVAE`."""

    def __init__(self, model: TrajectoryVQVAE, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.modality = model.cfg.modality
        self.vocab_size = model.cfg.num_codes
        self.token_grid = (model.cfg.num_tokens,)

    def encode(self, clips: np.ndarray) -> np.ndarray:
        feats, valid = clip_features(self.modality, clips)
        x = self.model.normalize(torch.from_numpy(feats).to(self.device))
        mask = torch.from_numpy(valid).to(self.device) if self.modality == "gaze" else None
        return self.model.encode(x, mask).cpu().numpy().astype(np.int32)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        feats = self.model.denormalize(self.model.decode(torch.as_tensor(np.asarray(tokens), device=self.device)))
        return features_to_clips(self.modality, feats.cpu().numpy())

    def info(self) -> dict:
        return {"type": TOKENIZER_TYPE, "modality": self.modality, "vocab_size": self.vocab_size,
                "token_grid": list(self.token_grid)}


def save_traj_tokenizer(model: TrajectoryVQVAE, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder`` (each file atomically; other files stay)."""
    from egoforge.data.atomic import atomic_write_json
    from egoforge.egom2p.loop import save_state_dict

    folder = Path(folder)
    save_state_dict(model, folder / "model.safetensors")
    atomic_write_json(folder / "config.json", {"type": TOKENIZER_TYPE, **asdict(model.cfg)})
    return folder


def load_traj_tokenizer(folder: str | Path, device: str = "cpu") -> TrajectoryTokenizer:
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if config.pop("type", None) != TOKENIZER_TYPE:
        raise ValueError(f"{folder}/config.json: not an {TOKENIZER_TYPE} tokenizer")
    model = TrajectoryVQVAE(TrajTokenizerConfig(**config))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return TrajectoryTokenizer(model, device)


def reconstruction_error(model: TrajectoryVQVAE, x: torch.Tensor, mask: torch.Tensor | None) -> float:
    """Masked MSE of a tokenize -> detokenize round trip in normalised feature space (evaluation mode)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        recon = model.decode(model.encode(x, mask))
    model.train(was_training)
    err = (recon - x) ** 2
    if mask is None:
        return float(err.mean())
    weight = mask[..., None].to(err.dtype).expand_as(err)
    return float((err * weight).sum() / weight.sum().clamp_min(1.0))

