"""Every EgoAgent recipe parses into its typed config, dry-runs through `egoforge train`, opens with the comment
block (command, what must exist, which setting), and the paper recipes carry the official numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from egoforge.egoagent.train.config import Stage1Config, Stage2Config
from egoforge.tools.cli import main as cli
from egoforge.train.recipe import build_config

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("egoagent_*.yaml"))


def config_of(path: Path):
    recipe = yaml.safe_load(path.read_text())
    trainer = recipe.pop("trainer")
    return trainer, build_config({"egoagent_stage1": Stage1Config, "egoagent_stage2": Stage2Config}[trainer], recipe)


def test_recipes_exist():
    names = {p.name for p in RECIPES}
    assert {"egoagent_stage1_300m.yaml", "egoagent_stage1_1b.yaml", "egoagent_stage2_300m.yaml",
            "egoagent_stage1_tiny.yaml", "egoagent_stage2_tiny.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_parses_and_has_its_header(path, capsys):
    header = path.read_text().split("\ntrainer:")[0]
    assert header.startswith("# EgoAgent")
    assert "Command" in header and "Must exist locally" in header
    assert ("Reproduces" in header) or ("Setting:" in header)
    assert f"recipes/{path.name}" in header or path.name.endswith("_tiny.yaml")
    trainer, config = config_of(path)
    assert trainer in ("egoagent_stage1", "egoagent_stage2")
    assert cli(["train", str(path), "--dry-run"]) == 0
    assert f"trainer: {trainer}" in capsys.readouterr().out


def test_300m_recipe_is_the_official_setting():
    _, config = config_of(REPO / "recipes" / "egoagent_stage1_300m.yaml")
    assert config.model.size == "300m" and config.model.image_size == 224 and config.model.patch_size == 16
    assert config.model.causal and config.model.perframe_attention
    optim = config.optim
    assert (optim.lr, optim.min_lr, optim.warmup_ratio, optim.max_grad_norm) == (5e-4, 5e-6, 0.1, 1.0)
    assert (optim.weight_decay, optim.weight_decay_end, tuple(optim.betas), optim.eps) == (0.04, 0.4, (0.9, 0.999),
                                                                                            1e-8)
    assert (config.dino.teacher_temp, config.dino.momentum_teacher) == (0.04, 0.996)
    data = config.data
    assert tuple(data.global_crops_scale) == (0.4, 1.0) and tuple(data.local_crops_scale) == (0.05, 0.4)
    assert (data.local_crops_number, data.local_crop_size, data.init_crop_size) == (6, 112, 300)
    assert data.photometric_augmentation
    # 64 frames per GPU per step on 16 GPUs, 101 epochs of 7,614,851 frames
    assert config.per_device_batch_size * config.gradient_accumulation_steps == 64
    assert config.max_steps == 7_614_851 // (64 * 16) * 101
    _, one_b = config_of(REPO / "recipes" / "egoagent_stage1_1b.yaml")
    assert one_b.model.size == "1b" and one_b.max_steps == 7_614_851 // (32 * 16) * 101
    _, stage2 = config_of(REPO / "recipes" / "egoagent_stage2_300m.yaml")
    assert stage2.optim.lr == 6e-4 and stage2.dino.teacher_temp == 0.04
    assert stage2.stage2.init_from.endswith(f"checkpoint-{config.max_steps}")


def test_stage2_init_from_a_stage1_run_folder_takes_its_newest_complete_checkpoint(tmp_path):
    """The tiny stage-2 recipe names the stage-1 run folder, not checkpoint-300: a shorter stage 1 (the demo's 150
    steps) still initialises stage 2; an incomplete newest checkpoint (no trainer state) is skipped."""
    from egoforge.egoagent.network import NETWORK_FILE
    from egoforge.egoagent.train.checkpoint import STATE_FILE
    from egoforge.egoagent.train.stage2 import resolve_init_source

    run = tmp_path / "stage1"
    for step, complete in ((50, True), (150, True), (200, False)):
        folder = run / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / NETWORK_FILE).write_text("{}")
        if complete:
            (folder / STATE_FILE).write_text("{}")
    assert resolve_init_source(run) == run / "checkpoint-150"
    assert resolve_init_source(run / "checkpoint-50") == run / "checkpoint-50"
    assert resolve_init_source(tmp_path / "missing") == tmp_path / "missing"  # initialise() names it
    _, tiny = config_of(REPO / "recipes" / "egoagent_stage2_tiny.yaml")
    assert tiny.stage2.init_from == "runs/egoagent_demo/stage1"
