"""Every recipe parses through LLaMA-Factory's own parser, and a copy of each (scale and path overrides only)
trains on CPU through the real `llamafactory-cli` with the egoforge hook active."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from egoforge.llamafactory.launch import llamafactory_cli, train
from egoforge.testing.recipes import tiny_overrides

REPO = Path(__file__).resolve().parents[1]
# The EgoCross recipes; every other area (LEGO, Ego3S, EgoAgent, EgoM2P) parses and runs its recipes in its own tests.
RECIPES = sorted((REPO / "recipes").glob("egocross_*.yaml"))
TRAIN_RECIPES = [r for r in RECIPES if yaml.safe_load(r.read_text()).get("stage") == "sft"]
PARSE = r"""
import json, sys
from llamafactory.hparams import get_infer_args, get_train_args
from llamafactory.hparams.parser import read_args
sys.argv = ["llamafactory-cli", *sys.argv[1:]]
args = read_args()
if "export_dir" in args:
    model, data, finetuning, generating = get_infer_args(args)
    print(json.dumps({"model": model.model_name_or_path, "export_dir": model.export_dir,
                      "adapter": model.adapter_name_or_path, "template": data.template}))
else:
    model, data, training, finetuning, generating = get_train_args(args)
    print(json.dumps({"model": model.model_name_or_path, "template": data.template, "dataset": data.dataset,
                      "finetuning_type": finetuning.finetuning_type, "lr": training.learning_rate,
                      "bf16": training.bf16, "deepspeed": training.deepspeed, "lora_rank": finetuning.lora_rank,
                      "epochs": training.num_train_epochs,
                      "batch": [training.per_device_train_batch_size, training.gradient_accumulation_steps]}))
"""
# torchrun's variables, so DeepSpeed recipes parse as they would under FORCE_TORCHRUN on the GPU machine.
DIST_ENV = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}


def test_every_recipe_opens_with_command_requirements_and_paper_row():
    for recipe in RECIPES:
        header = recipe.read_text().split("\n\n")[0]
        assert re.search(r"llamafactory-cli (train|export) recipes/" + recipe.name, header), recipe.name
        assert "Must exist locally" in header and "Reproduces:" in header, recipe.name
        yaml.safe_load(recipe.read_text())  # and it is plain YAML


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_through_llamafactory(recipe, worker_id):
    port = 29500 + (int(worker_id[2:]) if worker_id.startswith("gw") else 0) + RECIPES.index(recipe) * 7
    env = {**os.environ, **DIST_ENV, "MASTER_PORT": str(port)}
    # use_cpu is the only non-recipe setting: bf16 recipes are rejected on a machine without a GPU otherwise.
    extra = [] if "export_dir" in recipe.read_text() else ["use_cpu=true"]
    result = subprocess.run([sys.executable, "-c", PARSE, str(recipe), *extra], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["model"] == "Qwen/Qwen3-VL-4B-Instruct"
    if "export_dir" in parsed:
        return
    assert parsed["template"] in ("qwen3_vl", "qwen3_vl_nothink_ego_frames")
    if parsed["finetuning_type"] == "full":
        assert (parsed["lr"], parsed["batch"], parsed["bf16"]) == (1e-5, [1, 8], True)
        assert parsed["deepspeed"].endswith("ds_z2_config.json")
    else:
        assert (parsed["lr"], parsed["batch"], parsed["lora_rank"]) == (2e-4, [2, 4], 64)
    assert parsed["epochs"] == 2.0


def _train(recipe: Path, work: Path, out: Path, model: Path, env: dict | None = None, **extra) -> str:
    overrides = tiny_overrides(model, work / "dataset_info", work / "data" / "egocross", out, save_steps=3, **extra)
    train(recipe, overrides, out / "train.log", cwd=out.parent, env=env)
    return (out / "train.log").read_text()


@pytest.mark.parametrize("recipe", TRAIN_RECIPES, ids=lambda p: p.stem)
def test_recipe_copy_trains_on_cpu(recipe, egocross_work, tiny_qwen3_vl, tmp_path):
    out = tmp_path / "out"
    log = _train(recipe, egocross_work, out, tiny_qwen3_vl)
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and all("loss" in h for h in state["log_history"][:3])
    config = yaml.safe_load(recipe.read_text())
    if config["finetuning_type"] == "lora":
        assert (out / "adapter_model.safetensors").exists()
    else:
        assert (out / "model.safetensors").exists()
    if config["template"].endswith("_ego_frames"):
        assert re.search(r"<\d+\.\d seconds><\|vision_start\|><\|video_pad\|>", log)
        assert "<|image_pad|>" not in log.split("training example:")[1].split("label_ids")[0]


def test_frames_as_video_under_force_torchrun(egocross_work, tiny_qwen3_vl, tmp_path):
    """torchrun workers re-import LLaMA-Factory; the .pth hook registers our template there too."""
    out = tmp_path / "out"
    log = _train(REPO / "recipes" / "egocross_lora_video.yaml", egocross_work, out, tiny_qwen3_vl,
                 env={"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1", "MASTER_PORT": "29611"})
    assert "distributed training: True" in log and "seconds><|vision_start|>" in log
    assert (out / "adapter_model.safetensors").exists()


def test_lora_merge_recipe_exports(trained_lora, tiny_qwen3_vl, tmp_path):
    export = tmp_path / "merged"
    cmd = [llamafactory_cli(), "export", str(REPO / "recipes" / "egocross_lora_merge.yaml"),
           f"model_name_or_path={tiny_qwen3_vl}", f"adapter_name_or_path={trained_lora}", f"export_dir={export}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    from transformers import AutoModelForImageTextToText

    assert AutoModelForImageTextToText.from_pretrained(export).config.model_type == "qwen3_vl"
    assert (export / "tokenizer.json").exists()


@pytest.mark.slow
def test_deepspeed_zero2_single_process(egocross_work, tiny_qwen3_vl, tmp_path):
    """The full recipe with its shipped ZeRO-2 config, one torchrun process on CPU (first run JIT-builds an op)."""
    pytest.importorskip("deepspeed")
    out = tmp_path / "out"
    log = _train(REPO / "recipes" / "egocross_full.yaml", egocross_work, out, tiny_qwen3_vl,
                 env={"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1", "MASTER_PORT": "29617"},
                 deepspeed=str(REPO / "recipes" / "deepspeed" / "ds_z2_config.json"))
    assert "distributed training: True" in log
    assert list((out / "checkpoint-3").glob("global_step3/*optim_states.pt"))
