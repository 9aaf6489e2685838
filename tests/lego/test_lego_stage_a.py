"""Stage A: the VLLM recipes parse through LLaMA-Factory, one trains through the real llamafactory-cli on a tiny
Qwen3-VL, and the tuned model's description, image features and text hidden states are extracted (resumably)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lego_helpers import REPO

from egoforge.lego.convert import read_index
from egoforge.lego.features import (
    ExtractionSettings,
    FeatureReader,
    NpyFeatureReader,
    chunk_rows,
    extract_features,
    stage_a_pixel_budget,
)

PARSE = r"""
import json, sys
from llamafactory.hparams import get_train_args
from llamafactory.hparams.parser import read_args
for recipe in sys.argv[1:]:
    sys.argv = ["llamafactory-cli", recipe, "use_cpu=true"]
    model, data, training, finetuning, generating = get_train_args(read_args())
    print(json.dumps({"recipe": recipe, "model": model.model_name_or_path, "template": data.template,
                      "dataset": data.dataset, "cutoff": data.cutoff_len, "media_dir": data.media_dir,
                      "ft": finetuning.finetuning_type, "freeze_vision_tower": finetuning.freeze_vision_tower,
                      "freeze_projector": finetuning.freeze_multi_modal_projector, "lr": training.learning_rate,
                      "epochs": training.num_train_epochs, "warmup": training.warmup_ratio,
                      "scheduler": str(training.lr_scheduler_type), "wd": training.weight_decay,
                      "batch": [training.per_device_train_batch_size, training.gradient_accumulation_steps],
                      "deepspeed": training.deepspeed, "bf16": training.bf16,
                      "pixels": [model.image_min_pixels, model.image_max_pixels]}))
"""
DIST_ENV = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
VLLM_RECIPES = ("lego_vllm_llava", "lego_vllm_qwen")


@pytest.fixture(scope="module")
def parsed_recipes(worker_id) -> dict[str, dict]:
    """Both stage-A recipes through LLaMA-Factory's own argument parser (one process: its import is the cost)."""
    port = 29700 + (int(worker_id[2:]) if worker_id.startswith("gw") else 0) * 10
    env = {**os.environ, **DIST_ENV, "MASTER_PORT": str(port)}
    paths = [str(REPO / "recipes" / f"{name}.yaml") for name in VLLM_RECIPES]
    result = subprocess.run([sys.executable, "-c", PARSE, *paths], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"recipe"')]
    return {Path(r["recipe"]).stem: r for r in rows}


@pytest.mark.parametrize("name,model,template,batch", [
    ("lego_vllm_llava", "llava-hf/llava-1.5-13b-hf", "llava", [16, 1]),
    ("lego_vllm_qwen", "Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl_nothink", [4, 4]),
])
def test_vllm_recipes_hold_the_paper_schedule(name, model, template, batch, parsed_recipes):
    recipe = REPO / "recipes" / f"{name}.yaml"
    header = recipe.read_text().split("\n\n")[0]
    assert f"llamafactory-cli train recipes/{name}.yaml" in header
    assert "Must exist locally" in header and "Reproduces:" in header
    parsed = parsed_recipes[name]
    assert (parsed["model"], parsed["template"], parsed["dataset"]) == (model, template, ["lego_ego4d"])
    assert (parsed["lr"], parsed["epochs"], parsed["warmup"], parsed["wd"]) == (2e-5, 3.0, 0.03, 0.0)
    assert parsed["scheduler"].lower().endswith("cosine") and parsed["cutoff"] == 2048 and parsed["bf16"]
    assert parsed["ft"] == "full" and parsed["freeze_vision_tower"] and not parsed["freeze_projector"]
    assert parsed["batch"] == batch and batch[0] * batch[1] * 8 == 128  # the paper's global batch on 8 GPUs
    assert parsed["media_dir"] == "data/lego/EgoGen"
    ds = json.loads((REPO / parsed["deepspeed"]).read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert ("offload_optimizer" in ds["zero_optimization"]) == (name == "lego_vllm_llava")


def test_dataset_info_declares_the_converted_files(lego_work):
    info = json.loads((REPO / "dataset_info" / "dataset_info.json").read_text())
    for dataset in ("ego4d", "epickitchen"):
        entry = info[f"lego_{dataset}"]
        assert entry["file_name"] == f"../data/lego/egoforge/lego_{dataset}_sft.json"
        # In the checkout-like work folder the entry resolves to the converter's output, frames under media_dir.
        path = (lego_work / "dataset_info" / entry["file_name"]).resolve()
        rows = json.loads(path.read_text())
        assert rows and all((lego_work / "data" / "lego" / "EgoGen" / p).is_file() for r in rows for p in r["images"])


def test_stage_a_trains_through_llamafactory_cli(lego_vllm):
    log = (lego_vllm.parent / "train.log").read_text()
    assert "llamafactory-cli train" in log.splitlines()[0] and "lego_vllm_qwen.yaml" in log.splitlines()[0]
    assert "How does the person properly" in log  # LLaMA-Factory printed a tokenised training example
    state = json.loads((lego_vllm / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and all(np.isfinite(h["loss"]) for h in state["log_history"] if "loss" in h)
    assert (lego_vllm / "model.safetensors").exists()  # a full fine-tune: the folder is the tuned VLLM


def test_paper_llava_recipe_trains_and_gives_llava_features(lego_vllm_llava, lego_work, tmp_path):
    """The paper's architecture: LLaMA-Factory's `llava` template trains a tiny LLaVA; its features are the projected
    patch tokens (CLS dropped, vision_feature_layer -2) and the LLaMA hidden states, as LLaVA-13B's 256 x 5120."""
    log = (lego_vllm_llava.parent / "train.log").read_text()
    assert "USER: <image>" in log and "ASSISTANT:The person reaches for" in log
    assert json.loads((lego_vllm_llava / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
    lego = lego_work / "data" / "lego"
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")[:2]
    extract_features(lego_vllm_llava, rows, lego / "EgoGen", tmp_path, ExtractionSettings(max_new_tokens=4))
    image, text = FeatureReader(tmp_path).get(rows[0]["feature_key"])
    assert image.shape == (16, 64) and text.shape[1] == 64 and 1 <= text.shape[0] <= 4


def test_features_have_the_paper_outputs(lego_features, lego_work):
    rows = read_index(lego_work / "data" / "lego" / "egoforge" / "ldm_ego4d_train.jsonl")
    reader = FeatureReader(lego_features["train"])
    assert set(reader.samples) == {r["feature_key"] for r in rows}
    hidden = 64  # the tiny Qwen3-VL's width: projector output and LM hidden states share it
    for row in rows[:3]:
        image, text = reader.get(row["feature_key"])
        # 64x96 frames, 16-px patches merged 2x2 -> 2x3 visual tokens after the projector
        assert image.shape == (6, hidden) and image.dtype == torch.float32
        assert 1 <= text.shape[0] <= 10 and text.shape[1] == hidden  # one state per generated token
        assert isinstance(reader.description(row["feature_key"]), str)
        assert torch.isfinite(image).all() and torch.isfinite(text).all()
    assert reader.meta["settings"]["temperature"] == 0.2 and reader.meta["settings"]["seed"] == 42
    assert len(list(lego_features["train"].glob("shard-c000-*.safetensors"))) == 2  # 16 samples, 8 per shard


def test_extraction_resumes_to_the_uninterrupted_result(lego_vllm, lego_work, tmp_path):
    lego = lego_work / "data" / "lego"
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")
    settings = ExtractionSettings(max_new_tokens=6, batch_size=1, shard_size=1)
    full = extract_features(lego_vllm, rows, lego / "EgoGen", tmp_path / "full", settings)
    first = extract_features(lego_vllm, rows[:2], lego / "EgoGen", tmp_path / "resumed", settings)
    rest = extract_features(lego_vllm, rows, lego / "EgoGen", tmp_path / "resumed", settings)
    assert (full["extracted"], first["extracted"], rest["skipped"], rest["extracted"]) == (4, 2, 2, 2)
    a, b = FeatureReader(tmp_path / "full"), FeatureReader(tmp_path / "resumed")
    for row in rows:
        key = row["feature_key"]
        assert a.description(key) == b.description(key)
        for x, y in zip(a.get(key), b.get(key)):
            assert torch.equal(x, y)


def test_chunks_share_one_folder(lego_vllm, lego_work, tmp_path):
    lego = lego_work / "data" / "lego"
    rows = read_index(lego / "egoforge" / "ldm_ego4d_val.jsonl")
    assert [len(chunk_rows(rows, 3, k)) for k in range(3)] == [2, 2, 0]
    settings = ExtractionSettings(max_new_tokens=4, batch_size=2)
    for chunk in range(2):
        extract_features(lego_vllm, rows, lego / "EgoGen", tmp_path / "f", settings, chunk=chunk, num_chunks=2)
    assert sorted(p.name for p in (tmp_path / "f").glob("index-*.json")) == ["index-c000.json", "index-c001.json"]
    assert set(FeatureReader(tmp_path / "f").samples) == {r["feature_key"] for r in rows}


def test_official_npy_release_is_read_safely(tmp_path):
    key = "clip/0/000001.jpg"
    (tmp_path / "img" / "clip" / "0").mkdir(parents=True)
    (tmp_path / "txt" / "clip" / "0").mkdir(parents=True)
    np.save(tmp_path / "img" / "clip" / "0" / "000001.npy", np.ones((256, 8), dtype=np.float16))
    text = np.stack([np.zeros((5, 8)), np.full((5, 8), 2.0)], axis=1)  # (tokens, layers, dim)
    np.save(tmp_path / "txt" / "clip" / "0" / "000001.npy", text)
    reader = NpyFeatureReader(tmp_path / "img", tmp_path / "txt")
    assert key in reader and "clip/1/x.jpg" not in reader
    image, text_features = reader.get(key)
    assert image.shape == (256, 8) and text_features.shape == (5, 8) and text_features.eq(2.0).all()
    np.save(tmp_path / "txt" / "clip" / "0" / "000001.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        reader.get(key)


@pytest.mark.parametrize("name", VLLM_RECIPES)
def test_feature_pixel_budget_is_the_one_llamafactory_trains_with(name, parsed_recipes):
    """`lego features --recipe` resizes frames into the budget LLaMA-Factory's own parser gives the recipe."""
    assert list(stage_a_pixel_budget(REPO / "recipes" / f"{name}.yaml")) == parsed_recipes[name]["pixels"]
    if name == "lego_vllm_qwen":
        assert parsed_recipes[name]["pixels"] == [50176, 262144]


def test_feature_frames_are_resized_as_llamafactory_resizes_training_images(tmp_path):
    from llamafactory.data.mm_plugin import BasePlugin
    from PIL import Image

    from egoforge.data.frames import load_frames

    rng = np.random.default_rng(0)
    path = tmp_path / "frame.png"
    Image.fromarray(rng.integers(0, 255, (900, 1600, 3), dtype=np.uint8)).save(path)
    min_pixels, max_pixels = stage_a_pixel_budget(REPO / "recipes" / "lego_vllm_qwen.yaml")
    (ours,) = load_frames([path], min_pixels, max_pixels)
    with Image.open(path) as image:
        theirs = BasePlugin(None, None, None)._preprocess_image(image.copy(), image_max_pixels=max_pixels,
                                                               image_min_pixels=min_pixels)
    assert ours.size == theirs.size and ours.width * ours.height <= max_pixels
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_features_command_uses_the_stage_a_budget(monkeypatch, tmp_path, capsys):
    from egoforge.lego import features
    from egoforge.tools.cli import main

    seen = {}

    def fake_extract(model, rows, media_root, out, settings, chunk, num_chunks, progress=None):
        seen["budget"] = (settings.min_pixels, settings.max_pixels)
        return {"chunk_rows": len(rows), "skipped": 0, "extracted": len(rows)}

    monkeypatch.setattr(features, "extract_features", fake_extract)
    index = tmp_path / "index.jsonl"
    index.write_text(json.dumps({"id": "r", "source": "s.jpg", "target": "t.jpg", "prompt": "p",
                                 "feature_key": "s.jpg"}) + "\n")
    (tmp_path / "m").mkdir()  # --model must be an existing folder (offline)
    common = ["lego", "features", "--model", str(tmp_path / "m"), "--index", str(index), "--media-root", ".",
              "--out", "o"]
    assert main([*common, "--recipe", str(REPO / "recipes" / "lego_vllm_qwen.yaml")]) == 0
    assert seen["budget"] == (50176, 262144)
    assert main(common) == 0
    assert seen["budget"] == (1024, 589824)  # LLaMA-Factory's defaults when no recipe names a budget
    assert "pass --recipe" in capsys.readouterr().err
    assert main([*common, "--recipe", str(REPO / "recipes" / "lego_vllm_qwen.yaml"), "--max-pixels", "100000"]) == 0
    assert seen["budget"] == (50176, 100000)
    assert main([*common, "--recipe", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: stage-A recipe not found" in capsys.readouterr().err
    monkeypatch.undo()  # the real extraction: a narration without an action stops it before the model loads
    row = {"id": "ego4d/c/0", "source": "s.jpg", "target": "t.jpg", "prompt": "p", "action": "#C C #unsure",
           "feature_key": "c/0/1.jpg", "dataset": "ego4d", "clip_id": "c", "action_id": "0"}
    index.write_text(json.dumps(row) + "\n")
    assert main([*common, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("egoforge lego features: index row 'ego4d/c/0': narration '#C C #unsure' holds no action after "
                   "removing its markers")


@pytest.mark.parametrize("name", VLLM_RECIPES)
def test_feature_prompts_are_the_stage_a_training_prompts(name, tmp_path, tiny_qwen3_vl):
    """With the stage-A recipe, extraction asks the question in exactly the token sequence LLaMA-Factory's own
    supervised preprocessing made the training prompt of (system prompt, turns, expanded image tokens)."""
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams import DataArguments
    from PIL import Image
    from transformers import AutoProcessor

    from egoforge.lego.actions import query_for
    from egoforge.lego.features import TrainingFormatPrompts, stage_a_template
    from egoforge.testing.lego_data import build_tiny_llava

    recipe = REPO / "recipes" / f"{name}.yaml"
    template = stage_a_template(recipe)
    model = build_tiny_llava(tmp_path / "llava") if name == "lego_vllm_llava" else tiny_qwen3_vl
    min_pixels, max_pixels = stage_a_pixel_budget(recipe)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    query = query_for("#c c squeezes the lemon", "ego4d")
    ours = TrainingFormatPrompts(template, AutoProcessor.from_pretrained(model), min_pixels, max_pixels)
    ids = ours.prompt_ids(query, image)

    processor = AutoProcessor.from_pretrained(model)
    for key, value in (("image_min_pixels", min_pixels), ("image_max_pixels", max_pixels),
                       ("image_do_pan_and_scan", False), ("crop_to_patches", False)):
        setattr(processor, key, value)
    data_args = DataArguments(template=template, cutoff_len=2048)
    lf_template = get_template_and_fix_tokenizer(processor.tokenizer, data_args)
    supervised = SupervisedDatasetProcessor(template=lf_template, tokenizer=processor.tokenizer,
                                            processor=processor, data_args=data_args)
    input_ids, labels = supervised._encode_data_example(
        [{"role": "user", "content": "<image>" + query}], [{"role": "assistant", "content": "It is squeezed."}],
        None, None, [image], [], [])
    prompt_len = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    assert ids == input_ids[:prompt_len]
    text = processor.tokenizer.decode(ids)
    assert "squeeze the lemon" in text
    if name == "lego_vllm_llava":  # LLaMA-Factory's llava template: its default system prompt, vicuna turns
        assert text.count("A chat between a curious user and an artificial intelligence assistant") == 1
        assert "USER:" in text and text.rstrip().endswith("ASSISTANT:")
