"""One entry point for every tokenizer folder: trajectory VQ, egoforge's FSQ video tokenizer, or Cosmos files.

All of them expose ``encode(clips) -> int tokens (B, *grid)``, ``decode(tokens) -> clips``, ``vocab_size``,
``token_grid`` and ``info()``, so tokenisation, shards and inference never branch on the family.
"""

from __future__ import annotations

import json
from pathlib import Path

from egoforge.egom2p.modalities import MODALITIES


def fingerprint(folder: str | Path) -> list:
    """Name, size and modification time of a tokenizer folder's weight files: changes when it is retrained."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".jit") and p.is_file())
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def load_tokenizer(folder: str | Path, modality: str, device: str = "cpu"):
    """Open the tokenizer in ``folder`` for ``modality`` with a clear error when it is absent or of the wrong kind."""
    tokenizer = _open(folder, modality, device)
    tokenizer.fingerprint = fingerprint(folder)
    return tokenizer


def _open(folder: str | Path, modality: str, device: str):
    from egoforge.egom2p.cosmos import CosmosVideoTokenizer, is_cosmos_folder

    folder = Path(folder)
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; known: {list(MODALITIES)}")
    kind = MODALITIES[modality].kind
    if is_cosmos_folder(folder):
        if kind != "video":
            raise ValueError(f"{folder}: Cosmos tokenizes video, not {modality}")
        return CosmosVideoTokenizer(folder, modality=modality, device=device, frames=MODALITIES[modality].frames)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer here (expected config.json + model.safetensors from "
                                "`egoforge train recipes/egom2p_*_tokenizer.yaml`, or Cosmos encoder.jit/decoder.jit)")
    family = json.loads(config_path.read_text()).get("type")
    if family == "egom2p_traj_vq":
        from egoforge.egom2p.traj_tokenizer import load_traj_tokenizer

        tokenizer = load_traj_tokenizer(folder, device)
        if tokenizer.modality != modality:
            raise ValueError(f"{folder}: a {tokenizer.modality} tokenizer cannot tokenize {modality}")
        return tokenizer
    if family == "egoforge_fsq_video":
        if kind != "video":
            raise ValueError(f"{folder}: a video tokenizer cannot tokenize {modality}")
        from egoforge.egom2p.video_tokenizer import load_video_tokenizer

        return load_video_tokenizer(folder, device, modality=modality)
    raise ValueError(f"{config_path}: unknown tokenizer type {family!r}")
