"""egoforge's own small trainable video tokenizer (FSQ), with the Cosmos DV interface and token grid.

Cosmos DV4x8x8 is causal: a 16-frame clip is edge-padded to 17 frames, the first frame becomes one latent frame and
every following group of 4 frames another, each downsampled 8x spatially: 16x256x256 -> 5x32x32 tokens. This
tokenizer keeps that contract (same padding, grid and, with FSQ levels (8, 8, 8, 5, 5, 5), the same 64,000-entry
vocabulary) so shards, the model and ROAR decoding do not care which one produced the tokens. Each latent frame is
encoded from its group of frames stacked on the channel axis (the first frame is repeated to fill its group) by a
small residual CNN, quantised with FSQ, and decoded by the mirrored CNN. It trains on the prepared clips with an
MSE + L1 reconstruction loss (no perceptual or adversarial loss: their pretrained networks are not available
offline). The seed notes that Cosmos is weak at low fps and resolution; this one can be trained on your own data.

Clips are numpy arrays as ``egoforge egom2p prepare`` writes them: rgb (B, T, H, W, 3) uint8, depth (B, T, H, W)
float in [0, 1] (fed as a grey 3-channel video, as the official depth pipeline does).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from egoforge.egom2p.quantizers import FSQ

TOKENIZER_TYPE = "egoforge_fsq_video"


# ---- clips <-> [-1, 1] tensors (B, 3, T, H, W) ----

def video_to_tensor(clips: np.ndarray, modality: str) -> torch.Tensor:
    clips = np.asarray(clips)
    if modality == "rgb":
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(f"rgb clips must be (B, T, H, W, 3), got {clips.shape}")
        x = torch.from_numpy(clips.astype(np.float32) / 127.5 - 1.0).permute(0, 4, 1, 2, 3)
    elif modality == "depth":
        if clips.ndim != 4:
            raise ValueError(f"depth clips must be (B, T, H, W), got {clips.shape}")
        # Sensor holes are NaN in the normalised clip; a tokenizer needs a number, so they enter as 0 (near).
        depth = np.nan_to_num(clips.astype(np.float32), nan=0.0)
        x = torch.from_numpy(depth * 2.0 - 1.0)[:, None].expand(-1, 3, -1, -1, -1)
    else:
        raise ValueError(f"not a video modality: {modality!r}")
    return x.contiguous()


def tensor_to_video(x: torch.Tensor, modality: str) -> np.ndarray:
    x = x.float().clamp(-1, 1).cpu()
    if modality == "rgb":
        return ((x.permute(0, 2, 3, 4, 1).numpy() + 1.0) * 127.5 + 0.5).astype(np.uint8)
    return ((x.mean(1).numpy() + 1.0) / 2.0).astype(np.float32)


def pad_frames(x: torch.Tensor, temporal: int) -> torch.Tensor:
    """Edge-pad (B, C, T, H, W) at the end to 1 + k * temporal frames (Cosmos' causal alignment)."""
    T = x.shape[2]
    target = 1 + math.ceil((T - 1) / temporal) * temporal
    if target == T:
        return x
    return torch.cat([x, x[:, :, -1:].expand(-1, -1, target - T, -1, -1)], dim=2)


# ---- the network ----

@dataclass
class VideoTokenizerConfig:
    frames: int = 16
    size: int = 256
    temporal_compression: int = 4
    spatial_compression: int = 8
    levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    base_channels: int = 64
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2, 4])

    def __post_init__(self) -> None:
        downs = int(round(math.log2(self.spatial_compression)))
        if 2**downs != self.spatial_compression:
            raise ValueError(f"spatial_compression must be a power of two, got {self.spatial_compression}")
        if len(self.channel_mult) != downs + 1:
            raise ValueError(f"channel_mult needs {downs + 1} entries for {self.spatial_compression}x, "
                             f"got {self.channel_mult}")
        if self.size % self.spatial_compression:
            raise ValueError(f"size {self.size} is not a multiple of spatial_compression {self.spatial_compression}")

    @property
    def token_grid(self) -> tuple[int, int, int]:
        padded = 1 + math.ceil((self.frames - 1) / self.temporal_compression) * self.temporal_compression
        side = self.size // self.spatial_compression
        return (1 + (padded - 1) // self.temporal_compression, side, side)

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(min(8, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class FSQVideoAutoencoder(nn.Module):
    def __init__(self, cfg: VideoTokenizerConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base_channels * m for m in cfg.channel_mult]
        group = 3 * cfg.temporal_compression
        self.fsq = FSQ(cfg.levels)
        enc: list[nn.Module] = [nn.Conv2d(group, chans[0], 3, padding=1)]
        for cin, cout in zip(chans[:-1], chans[1:]):
            enc += [_ResBlock(cin, cin), nn.Conv2d(cin, cout, 3, stride=2, padding=1)]
        enc += [_ResBlock(chans[-1], chans[-1]), nn.GroupNorm(min(8, chans[-1]), chans[-1]), nn.SiLU(),
                nn.Conv2d(chans[-1], self.fsq.dim, 1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(self.fsq.dim, chans[-1], 3, padding=1), _ResBlock(chans[-1], chans[-1])]
        for cin, cout in zip(chans[::-1][:-1], chans[::-1][1:]):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                    _ResBlock(cout, cout)]
        dec += [nn.GroupNorm(min(8, chans[0]), chans[0]), nn.SiLU(), nn.Conv2d(chans[0], group, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def _groups(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B * t, 3 * tc, H, W): first frame repeated, then consecutive groups of tc frames."""
        tc = self.cfg.temporal_compression
        x = pad_frames(x, tc)
        B, C, T, H, W = x.shape
        first = x[:, :, :1].expand(-1, -1, tc, -1, -1)
        groups = torch.cat([first, x[:, :, 1:]], dim=2)  # (B, C, t * tc, H, W)
        t = groups.shape[2] // tc
        return groups.view(B, C, t, tc, H, W).permute(0, 2, 1, 3, 4, 5).reshape(B * t, C * tc, H, W)

    def _ungroup(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        tc = self.cfg.temporal_compression
        _, _, H, W = y.shape
        y = y.view(batch, -1, 3, tc, H, W).permute(0, 2, 1, 3, 4, 5)  # (B, 3, t, tc, H, W)
        first = y[:, :, 0, :1]
        rest = y[:, :, 1:].reshape(batch, 3, -1, H, W)
        return torch.cat([first, rest], dim=2)[:, :, : self.cfg.frames]

    def encode_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, H, W) in [-1, 1] -> (FSQ codes (B * t, d, h, w), indices (B, t, h, w))."""
        z = self.encoder(self._groups(x)).permute(0, 2, 3, 1)
        codes, indices = self.fsq(z)
        B = x.shape[0]
        return codes.permute(0, 3, 1, 2), indices.view(B, -1, *indices.shape[1:])

    def decode_codes(self, codes: torch.Tensor, batch: int) -> torch.Tensor:
        return self._ungroup(self.decoder(codes), batch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes, indices = self.encode_latent(x)
        return self.decode_codes(codes, x.shape[0]), indices

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        recon, _ = self(x)
        mse, l1 = F.mse_loss(recon, x), F.l1_loss(recon, x)
        return mse + l1, {"recon_mse": float(mse.detach()), "l1": float(l1.detach())}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_latent(x)[1]

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        B = indices.shape[0]
        codes = self.fsq.indices_to_codes(indices.reshape(-1, *indices.shape[2:])).permute(0, 3, 1, 2)
        return self.decode_codes(codes, B)


class FSQVideoTokenizer:
    """Clips <-> tokens for rgb or depth with a trained :class:`FSQVideoAutoencoder`."""

    def __init__(self, model: FSQVideoAutoencoder, modality: str, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.modality = modality
        self.vocab_size = model.cfg.vocab_size
        self.token_grid = model.cfg.token_grid

    def encode(self, clips: np.ndarray) -> np.ndarray:
        x = video_to_tensor(clips, self.modality).to(self.device)
        return self.model.encode(x).cpu().numpy().astype(np.int32)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        return tensor_to_video(self.model.decode(torch.as_tensor(np.asarray(tokens), device=self.device)),
                               self.modality)

    def info(self) -> dict:
        return {"type": TOKENIZER_TYPE, "modality": self.modality, "vocab_size": self.vocab_size,
                "token_grid": list(self.token_grid)}


def save_video_tokenizer(model: FSQVideoAutoencoder, folder: str | Path, modality: str) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder`` (each file atomically; other files stay)."""
    from egoforge.data.atomic import atomic_write_json
    from egoforge.egom2p.loop import save_state_dict

    folder = Path(folder)
    save_state_dict(model, folder / "model.safetensors")
    atomic_write_json(folder / "config.json", {"type": TOKENIZER_TYPE, "modality": modality, **asdict(model.cfg)})
    return folder


def load_video_tokenizer(folder: str | Path, device: str = "cpu", modality: str | None = None) -> FSQVideoTokenizer:
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if config.pop("type", None) != TOKENIZER_TYPE:
        raise ValueError(f"{folder}/config.json: not an {TOKENIZER_TYPE} tokenizer")
    trained_on = config.pop("modality")
    model = FSQVideoAutoencoder(VideoTokenizerConfig(**config))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return FSQVideoTokenizer(model, modality or trained_on, device)
