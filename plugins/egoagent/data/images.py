"""Stage-1 image data: frames listed by ``frames_index.txt`` (or found on disk) under one or more roots."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from egoforge.data.paths import resolve_under
from egoforge.egoagent.data.frames import INDEX_NAME, list_images
from egoforge.egoagent.data.transforms import seeded


def open_rgb(path: str | os.PathLike) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image not found (listed in {INDEX_NAME}?)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot decode image ({exc})") from None


def frame_paths(root: str | os.PathLike) -> list[Path]:
    """Frames under ``root``: its ``frames_index.txt`` when present (each entry must stay under ``root``),
    otherwise every image found on disk."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: frame folder not found (run `egoforge egoagent frames` first)")
    index = root / INDEX_NAME
    if index.exists():
        entries = [line.strip() for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]
        paths = []
        for row, entry in enumerate(entries, start=1):
            try:
                paths.append(resolve_under(root, entry))
            except ValueError as exc:
                raise ValueError(f"{index}, line {row}: {exc}") from None
        return paths
    return [root / rel for rel in list_images(root)]


class FrameDataset(Dataset):
    """Independent frames (``N_FRAMES = 1`` in the official config): item -> DINO multi-crop views."""

    def __init__(self, roots: Sequence[str | os.PathLike], transform: Callable) -> None:
        self.paths = [path for root in roots for path in frame_paths(root)]
        if not self.paths:
            raise ValueError(f"no frames found under {', '.join(map(str, roots))}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, item)
        image = open_rgb(self.paths[index])
        with seeded(seed):
            global_crops, local_crops = self.transform(image)
        return {"global_crops": global_crops, "local_crops": local_crops}
