"""LEGO fixtures: generated LEGO-format data converted once, a tiny stage-A VLLM tuned by the real
llamafactory-cli, its features, and a tiny LDM trained by `egoforge train` (each built once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _shared_build import build_once
from lego_helpers import REPO, TINY_RECIPE, TRAINED_STEPS, tiny_overrides_for


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
def lego_vllm_llava(tmp_path_factory, lego_work) -> Path:
    """recipes/lego_vllm_llava.yaml (the paper's setting) trained by llamafactory-cli on a tiny LLaVA."""
    from egoforge.llamafactory.launch import train
    from egoforge.testing.lego_data import build_tiny_llava
    from egoforge.testing.recipes import tiny_overrides

    def build(path: Path) -> None:
        base = build_tiny_llava(path / "base")
        overrides = tiny_overrides(base, lego_work / "dataset_info", lego_work / "data" / "lego" / "EgoGen",
                                   path / "model", max_steps=2, save_steps=2)
        train(REPO / "recipes" / "lego_vllm_llava.yaml", overrides, path / "train.log", cwd=path)

    return build_once(tmp_path_factory, "lego_vllm_llava", build) / "model"


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


@pytest.fixture(scope="session")
def trained_ldm(tmp_path_factory, lego_work, lego_features) -> Path:
    """The tiny LDM trained for 100 steps by `egoforge train recipes/lego_ldm_tiny.yaml` (the CLI, in-process),
    with validation every 50 steps; flips off so the learnable pairs stay exactly learnable."""
    import torch

    from egoforge.tools.cli import main

    def build(path: Path) -> None:
        lego = lego_work / "data" / "lego"
        extra = {"train.max_steps": TRAINED_STEPS, "train.logging_steps": 10, "train.save_steps": 50,
                 "data.flip_prob": 0.0, "data.val_index": lego / "egoforge" / "ldm_ego4d_val.jsonl",
                 "data.val_features.dir": lego_features["val"], "train.val_steps": 50, "train.val_batches": 1,
                 "train.batch_size": 4}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            code = main(["train", str(TINY_RECIPE), *tiny_overrides_for(lego_work, lego_features, path / "run",
                                                                          **extra)])
        finally:
            torch.set_num_threads(threads)
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


@pytest.fixture
def hub_dir(tmp_path):
    """torch's hub cache pointed at an empty folder for the test (the user's cache is left alone)."""
    import torch

    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(previous)


@pytest.fixture
def random_alexnet(hub_dir):
    import torch
    import torchvision

    from egoforge.lego import metrics as M

    torch.manual_seed(0)
    path = hub_dir / M.TORCHVISION_BACKBONES["alex"][0]
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)
    path = tmp_path_factory.mktemp("clip")
    CLIPVisionModelWithProjection(config).save_pretrained(path)
    return path
