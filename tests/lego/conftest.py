"""LEGO fixtures: generated LEGO-format data converted once, a tiny stage-A VLLM tuned by the real
llamafactory-cli, its features, and a tiny LDM trained by `egoforge train` (each built once per test run)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO / "recipes" / "lego_ldm_tiny.yaml"


def build_once(tmp_path_factory, name: str, builder) -> Path:
    """``builder(path)`` once per test run across xdist workers (the root conftest's ``build_once`` contract;
    conftest modules are not importable from one another)."""
    from egoforge.data.atomic import file_lock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / name
    with file_lock(root / f".{name}.lock"):
        if not (target / ".done").exists():
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            builder(target)
            (target / ".done").write_text("ok")
    return target


@pytest.fixture(scope="session")
def lego_work(tmp_path_factory) -> Path:
    """A folder laid out like the checkout: dataset_info/ (copy) beside data/lego/ (download + conversions)."""
    from egoforge.testing.lego_data import make_lego_dataset
    from egoforge.testing.recipes import stage_dataset_info
    from egoforge.tools.lego import convert_root

    def build(work: Path) -> None:
        root = work / "data" / "lego"
        make_lego_dataset(root, "ego4d", clips={"train": 8, "val": 2}, actions_per_clip=2, seed=0)
        make_lego_dataset(root, "epickitchen", clips={"train": 2, "val": 1}, actions_per_clip=2, seed=1)
        convert_root(root, root / "egoforge", root / "EgoGen", "llava_forecast_finetune", False, True)
        stage_dataset_info(work)

    return build_once(tmp_path_factory, "lego_work", build)


@pytest.fixture(scope="session")
def lego_vllm(tmp_path_factory, lego_work, tiny_qwen3_vl) -> Path:
    """recipes/lego_vllm_qwen.yaml trained by the real llamafactory-cli on the tiny Qwen3-VL (full fine-tune)."""
    from egoforge.llamafactory.launch import train
    from egoforge.testing.recipes import tiny_overrides

    def build(path: Path) -> None:
        overrides = tiny_overrides(tiny_qwen3_vl, lego_work / "dataset_info", lego_work / "data" / "lego" / "EgoGen",
                                   path / "model", max_steps=3, save_steps=3)
        train(REPO / "recipes" / "lego_vllm_qwen.yaml", overrides, path / "train.log", cwd=path)

    return build_once(tmp_path_factory, "lego_vllm", build) / "model"


@pytest.fixture(scope="session")
def lego_features(tmp_path_factory, lego_work, lego_vllm) -> dict[str, Path]:
    """Stage-A features of the ego4d train and val indexes, extracted with the tuned tiny VLLM."""
    from egoforge.lego.convert import read_index
    from egoforge.lego.features import ExtractionSettings, extract_features

    lego = lego_work / "data" / "lego"

    def build(path: Path) -> None:
        settings = ExtractionSettings(max_new_tokens=10, batch_size=4, shard_size=8)
        for split in ("train", "val"):
            rows = read_index(lego / "egoforge" / f"ldm_ego4d_{split}.jsonl")
            extract_features(lego_vllm, rows, lego / "EgoGen", path / split, settings)

    built = build_once(tmp_path_factory, "lego_features", build)
    return {"train": built / "train", "val": built / "val"}


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


@pytest.fixture(scope="session")
def trained_ldm(tmp_path_factory, lego_work, lego_features) -> Path:
    """A tiny LDM trained for 30 steps by `egoforge train recipes/lego_ldm_tiny.yaml` (the CLI, in-process)."""
    from egoforge.tools.cli import main

    def build(path: Path) -> None:
        code = main(["train", str(TINY_RECIPE), *tiny_overrides_for(lego_work, lego_features, path / "run",
                                                                      **{"train.max_steps": 30})])
        assert code == 0

    return build_once(tmp_path_factory, "lego_trained_ldm", build) / "run"


@pytest.fixture
def one_thread():
    """The in-process trainings here are tiny: one intra-op thread avoids oversubscribing two cores under xdist."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
