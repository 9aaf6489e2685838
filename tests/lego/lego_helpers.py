"""Helpers shared by the LEGO tests and their fixtures (conftest modules cannot import one another)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO / "recipes" / "lego_ldm_tiny.yaml"
TRAINED_STEPS = 100


def tiny_overrides_for(work: Path, features: dict[str, Path], output_dir: Path, **extra) -> list[str]:
    """Path overrides (and any extra key=value) that point the tiny LDM recipe at the generated data."""
    lego = work / "data" / "lego"
    values = {
        "data.train_index": lego / "egoforge" / "ldm_ego4d_train.jsonl",
        "data.media_root": lego / "EgoGen",
        "data.train_features.dir": features["train"],
        "train.output_dir": output_dir,
        **extra,
    }
    return [f"{k}={v}" for k, v in values.items()]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
