"""Adapter for NVIDIA's Cosmos-0.1-Tokenizer-DV4x8x8 TorchScript files (the paper's frozen video tokenizer).

Download ``encoder.jit`` and ``decoder.jit`` from https://huggingface.co/nvidia/Cosmos-0.1-Tokenizer-DV4x8x8 into one
folder and pass that folder wherever a video tokenizer is expected. The adapter follows the Cosmos reference
library: input (B, 3, T, H, W) in [-1, 1] in bfloat16, frames edge-padded at the end to 1 + 8k (16 -> 17), the
encoder returns (indices, codes) and the decoder maps indices (B, t, h, w) back to frames. 16x256x256 gives
5x32x32 = 5,120 tokens from the 64,000-entry FSQ vocabulary (levels 8, 8, 8, 5, 5, 5).

TorchScript archives are loaded with ``torch.jit.load``, which does not unpickle arbitrary Python objects; only
load files from NVIDIA's release.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from egoforge.egom2p.video_tokenizer import pad_frames, tensor_to_video, video_to_tensor

COSMOS_URL = "https://huggingface.co/nvidia/Cosmos-0.1-Tokenizer-DV4x8x8"
COSMOS_VOCAB = 64000
# The reference library aligns time to 1 + 8k frames (cosmos_tokenizer/utils.py _TEMPORAL_ALIGN); 16 -> 17.
TEMPORAL_ALIGN = 8


class CosmosMissingError(FileNotFoundError):
    """The Cosmos encoder/decoder files are not where the user said they are."""


def is_cosmos_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / "encoder.jit").exists() or (folder / "decoder.jit").exists()


class CosmosVideoTokenizer:
    def __init__(self, folder: str | Path, modality: str = "rgb", device: str | None = None,
                 dtype: str = "bfloat16", need: tuple[str, ...] = ("encoder", "decoder"), frames: int = 16):
        folder = Path(folder)
        missing = [f"{part}.jit" for part in need if not (folder / f"{part}.jit").is_file()]
        if missing:
            raise CosmosMissingError(
                f"Cosmos DV4x8x8 tokenizer: {', '.join(missing)} not found in {folder}. Download encoder.jit and "
                f"decoder.jit from {COSMOS_URL} into that folder, or train egoforge's own video tokenizer "
                "(`egoforge train recipes/egom2p_video_tokenizer.yaml`) and pass its folder instead.")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = getattr(torch, dtype)
        self.modality = modality
        self.frames = frames  # clip length; decoding drops the padded frame(s)
        self.folder = folder
        self.encoder = self._load(folder / "encoder.jit") if "encoder" in need else None
        self.decoder = self._load(folder / "decoder.jit") if "decoder" in need else None
        self.vocab_size = COSMOS_VOCAB
        self.token_grid: tuple[int, ...] | None = None  # known after the first encode

    def _load(self, path: Path) -> torch.jit.ScriptModule:
        return torch.jit.load(str(path), map_location=self.device).eval().to(self.dtype)

    @torch.no_grad()
    def encode(self, clips: np.ndarray) -> np.ndarray:
        if self.encoder is None:
            raise CosmosMissingError(f"{self.folder}: this adapter was opened without the encoder")
        x = pad_frames(video_to_tensor(clips, self.modality), TEMPORAL_ALIGN)
        out = self.encoder(x.to(self.device, self.dtype))
        indices = out[0] if isinstance(out, (tuple, list)) else out
        if indices.ndim != 4 or indices.is_floating_point():
            raise ValueError(f"{self.folder}/encoder.jit returned {tuple(indices.shape)} {indices.dtype}; a "
                             "discrete (DV) tokenizer returns integer indices (B, t, h, w): is this a CV model?")
        self.token_grid = tuple(indices.shape[1:])
        return indices.cpu().numpy().astype(np.int32)

    @torch.no_grad()
    def decode(self, tokens: np.ndarray, frames: int | None = None) -> np.ndarray:
        if self.decoder is None:
            raise CosmosMissingError(f"{self.folder}: this adapter was opened without the decoder")
        out = self.decoder(torch.as_tensor(np.asarray(tokens), device=self.device).long())
        video = out[0] if isinstance(out, (tuple, list)) else out
        return tensor_to_video(video[:, :, : frames or self.frames], self.modality)

    def info(self) -> dict:
        return {"type": "cosmos_dv4x8x8", "modality": self.modality, "vocab_size": self.vocab_size,
                "token_grid": list(self.token_grid) if self.token_grid else None, "folder": str(self.folder)}
