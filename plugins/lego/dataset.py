"""The LDM's training pairs: source and target frames, the text prompt and the VLLM features of one action.

Both frames are resized to ``resolution`` x ``resolution`` with LANCZOS and scaled to [-1, 1]; training applies
one random crop and one horizontal flip (p = ``flip_prob``) to the two frames together (the official
``EgoGenDataset``). Augmentation draws come from a per-item seed the sampler hands over with the index, so an
epoch is reproduced exactly when a run resumes. The sampler shards every epoch's permutation across processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from egoforge.data.jsonio import DataFormatError
from egoforge.data.paths import UnsafePathError, resolve_under
from egoforge.lego.conditioning import fit_image_tokens, fit_tokens
from egoforge.lego.config import FeaturesConfig, LegoSetupError

PROMPT_SOURCES = ("prompt", "action", "description")


def mix_seed(*parts: object) -> int:
    """A well-mixed 63-bit seed from any values (seed, epoch, index, ...)."""
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:15], 16)


FEATURE_FORMATS = ("auto", "shards", "npy")


def has_feature_shards(folder: str | os.PathLike | None) -> bool:
    """Whether ``folder`` holds `egoforge lego features` output (its ``index-c*.json`` chunk indexes)."""
    return bool(folder) and Path(folder).is_dir() and any(Path(folder).glob("index-c*.json"))


def feature_format(cfg: FeaturesConfig) -> str:
    """The layout to read: shards whenever ``dir`` holds `egoforge lego features` output (whatever ``format`` says,
    so a recipe written for the official npy release reads the shards it is pointed at); otherwise ``format``, and
    for ``auto`` npy when ``image_dir``/``text_dir`` are set, shards when not."""
    if cfg.format not in FEATURE_FORMATS:
        raise LegoSetupError(f"features.format {cfg.format!r}: choose one of {FEATURE_FORMATS}")
    if has_feature_shards(cfg.dir):
        return "shards"
    if cfg.format == "auto":
        return "npy" if (cfg.image_dir or cfg.text_dir) else "shards"
    return cfg.format


def open_features(cfg: FeaturesConfig, where: str = "features"):
    """The feature reader a recipe names (None when no features are configured); errors name the folders looked in."""
    import sys

    from egoforge.lego.features import FeatureReader, NpyFeatureReader

    layout = feature_format(cfg)
    if layout == "shards":
        if cfg.format == "npy":
            print(f"note: {where}.dir {cfg.dir} holds `egoforge lego features` shards: reading them (format npy's "
                  f"image_dir/text_dir are not used)", file=sys.stderr)
        return FeatureReader(cfg.dir) if cfg.dir else None
    if cfg.dir:
        raise LegoSetupError(f"{where}.dir {cfg.dir}: no `egoforge lego features` shards there (no index-c*.json), "
                             f"and format {cfg.format} reads the official npy release from {where}.image_dir / "
                             f"text_dir; point {where}.dir at the features folder or unset it")
    if not (cfg.image_dir and cfg.text_dir):
        raise LegoSetupError(f"{where}: format npy needs image_dir and text_dir (the official release's "
                             "vllm_image_feature/... and vllm_text_feature/... folders), or set dir to the "
                             "folder `egoforge lego features` wrote")
    for key in ("image_dir", "text_dir"):
        if not Path(getattr(cfg, key)).is_dir():
            raise LegoSetupError(f"{where}.{key} {getattr(cfg, key)}: no such folder")
    return NpyFeatureReader(cfg.image_dir, cfg.text_dir)


def load_frame(path: Path, resolution: int) -> torch.Tensor:
    with Image.open(path) as img:
        img = img.convert("RGB").resize((resolution, resolution), Image.Resampling.LANCZOS)
        array = np.asarray(img, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


class LegoPairs(Dataset):
    """Rows of an LDM index; items are ``index`` or ``(index, augmentation seed)``."""

    def __init__(self, rows: list[dict], media_root: str | os.PathLike, features=None, resolution: int = 256,
                 flip_prob: float = 0.0, image_tokens: int = 256, text_tokens: int = 77, prompt: str = "prompt",
                 index_file: str = "index") -> None:
        if prompt not in PROMPT_SOURCES:
            raise LegoSetupError(f"data.prompt {prompt!r}: choose one of {PROMPT_SOURCES}")
        if prompt == "description" and features is None:
            raise LegoSetupError("data.prompt 'description' needs VLLM features")
        self.rows, self.media_root, self.features = rows, Path(media_root), features
        self.resolution, self.flip_prob, self.prompt = resolution, flip_prob, prompt
        self.image_tokens, self.text_tokens = image_tokens, text_tokens
        self._check(index_file)

    def _check(self, index_file: str) -> None:
        """Every frame inside the media root and every sample's features present, before any training starts."""
        for i, row in enumerate(self.rows):
            for name in ("source", "target"):
                try:
                    path = resolve_under(self.media_root, row[name])
                except UnsafePathError as exc:
                    raise DataFormatError(index_file, i, name, str(exc)) from None
                if not path.is_file():
                    raise DataFormatError(index_file, i, name, f"frame not found: {path}")
            if self.features is not None and row["feature_key"] not in self.features:
                raise DataFormatError(index_file, i, "feature_key",
                                      f"no VLLM features for {row['feature_key']!r} (run `egoforge lego features` "
                                      "on this index, or point data.*_features at the official release)")

    def __len__(self) -> int:
        return len(self.rows)

    def text_prompt(self, row: dict) -> str:
        if self.prompt == "description":
            return self.features.description(row["feature_key"])
        return row[self.prompt]

    @staticmethod
    def _draw(seed: int) -> float:
        return torch.rand((), generator=torch.Generator().manual_seed(seed)).item()

    def __getitem__(self, item) -> dict:
        index, seed = item if isinstance(item, tuple) else (item, None)
        row = self.rows[index]
        source = load_frame(resolve_under(self.media_root, row["source"]), self.resolution)
        target = load_frame(resolve_under(self.media_root, row["target"]), self.resolution)
        # Frames are resized to the crop size, so the joint random crop is the identity; the flip is shared.
        if seed is not None and self.flip_prob > 0 and self._draw(seed) < self.flip_prob:
            source, target = source.flip(-1), target.flip(-1)
        out = {"id": row["id"], "source": source, "target": target, "prompt": self.text_prompt(row)}
        if self.features is not None:
            image, text = self.features.get(row["feature_key"])
            out["image_features"] = fit_image_tokens(image, self.image_tokens, row["feature_key"])
            out["text_features"] = fit_tokens(text, self.text_tokens)
        return out


def collate(items: list[dict]) -> dict:
    batch = {"id": [it["id"] for it in items], "prompt": [it["prompt"] for it in items]}
    for key in ("source", "target", "image_features", "text_features"):
        if key in items[0]:
            batch[key] = torch.stack([it[key] for it in items])
    return batch


class EpochBatchSampler(Sampler):
    """Global batches of a seeded per-epoch permutation; this process takes its slice of each.

    Yields lists of ``(index, augmentation seed)``. ``start_batch`` skips already-trained batches on resume.
    Incomplete global batches at the end of an epoch are dropped so every process sees the same number of batches.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 start_batch: int = 0, shuffle: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world, self.start_batch, self.shuffle = rank, world, start_batch, shuffle

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int, world: int) -> int:
        return n // (batch_size * world)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch(self.n, self.batch_size, self.world) - self.start_batch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(mix_seed(self.seed, self.epoch)))
        else:
            order = torch.arange(self.n)
        global_batch = self.batch_size * self.world
        for b in range(self.start_batch, self.batches_per_epoch(self.n, self.batch_size, self.world)):
            chunk = order[b * global_batch:(b + 1) * global_batch]
            mine = chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size].tolist()
            yield [(i, mix_seed(self.seed, self.epoch, i)) for i in mine]
