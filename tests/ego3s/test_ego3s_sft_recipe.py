"""The Ego3S CoT-SFT warm start (LLaMA-Factory side; kept out of the verl-side test files, whose environment has no
LLaMA-Factory): the recipe through LLaMA-Factory's own parser, and `egoforge ego3s sft-data` output through its own
dataset loader."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llamafactory")

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "ego3s_cot_sft_qwen2_5_vl_7b.yaml"
PARSE = r"""
import json, sys
from llamafactory.hparams import get_train_args
from llamafactory.hparams.parser import read_args
sys.argv = ["llamafactory-cli", *sys.argv[1:]]
model, data, training, finetuning, generating = get_train_args(read_args())
print(json.dumps({"model": model.model_name_or_path, "template": data.template, "dataset": data.dataset,
                  "finetuning_type": finetuning.finetuning_type, "freeze_vision_tower": finetuning.freeze_vision_tower,
                  "lr": training.learning_rate, "epochs": training.num_train_epochs,
                  "batch": [training.per_device_train_batch_size, training.gradient_accumulation_steps],
                  "max_grad_norm": training.max_grad_norm, "scheduler": str(training.lr_scheduler_type),
                  "warmup": training.warmup_ratio, "save_steps": training.save_steps,
                  "deepspeed": training.deepspeed, "output_dir": training.output_dir,
                  "video": [model.video_fps, model.video_maxlen, model.video_max_pixels]}))
"""
DIST_ENV = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29731"}


def test_cot_sft_recipe_values_through_llamafactorys_parser():
    result = subprocess.run([sys.executable, "-c", PARSE, str(RECIPE), "use_cpu=true"], cwd=REPO,
                            env={**os.environ, **DIST_ENV}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    # run_sft.sh: lr 1e-6, 3 epochs, 1 per GPU x accumulation 2, max grad norm 5, ZeRO-2, save every 150 steps
    assert (parsed["lr"], parsed["epochs"], parsed["batch"], parsed["max_grad_norm"]) == (1e-6, 3.0, [1, 2], 5.0)
    assert parsed["scheduler"].lower().endswith("linear") and parsed["warmup"] == 0.0 and parsed["save_steps"] == 150
    assert parsed["finetuning_type"] == "full" and parsed["freeze_vision_tower"] is False
    assert parsed["deepspeed"].endswith("ds_z2_config.json") and parsed["dataset"] == ["ego3s_cot_sft"]
    assert parsed["template"] == "qwen2_vl" and parsed["video"] == [2.0, 16, 128 * 28 * 28]
    # The GRPO recipe starts from this output, as the official IRL run starts from its SFT model.
    grpo = (REPO / "recipes" / "ego3s_grpo_qwen2_5_vl_7b.sh").read_text()
    assert re.search(r"MODEL=\$\{MODEL:-" + re.escape(parsed["output_dir"]) + r"\}", grpo)


def test_sft_data_loads_through_llamafactory(ego3s_data, tiny_qwen2_5_vl, tmp_path):
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    from egoforge.ego3s.convert import ConversionError
    from egoforge.ego3s.sft import convert_sft_file, read_sft_file

    rows = json.loads((ego3s_data / "train.json").read_text())
    with pytest.raises(ConversionError, match=r"row 0.*process"):  # the generated rows carry no reasoning yet
        convert_sft_file(ego3s_data / "train.json", tmp_path / "x.json", decode=False)
    assert not (tmp_path / "x.json").exists()
    for row in rows:
        row["process"] = f"<think>looking at sample {row['problem_id']}</think>"
    source = tmp_path / "cot_mixed.json"
    source.write_text(json.dumps(rows))
    with pytest.raises(ConversionError, match="video files .* and frame folders"):
        convert_sft_file(source, tmp_path / "x.json", media_root=ego3s_data, decode=False)
    rows = [r for r in rows if not (r["data_type"] == "video" and (ego3s_data / r["path"]).is_dir())]
    source.write_text(json.dumps(rows))
    out = convert_sft_file(source, tmp_path / "cot_sft.json", media_root=ego3s_data, decode=False)
    sft = read_sft_file(out)
    assert len(sft) == len(rows)
    first = sft[0]
    assert first["messages"][1]["content"] == rows[0]["process"] + "\n" + rows[0]["solution"]
    assert "<object>" not in first["messages"][0]["content"]  # the SFT prompt is plain Video-R1
    assert sum(1 for r in sft if "videos" in r) and sum(1 for r in sft if "images" in r)

    info = tmp_path / "info"
    info.mkdir()
    entry = json.loads((REPO / "dataset_info" / "dataset_info.json").read_text())["ego3s_cot_sft"]
    (info / "dataset_info.json").write_text(json.dumps({"ego3s_cot_sft": {**entry, "file_name": str(out)}}))
    args = dict(model_name_or_path=str(tiny_qwen2_5_vl), stage="sft", do_train=True, finetuning_type="lora",
                dataset_dir=str(info), dataset="ego3s_cot_sft", template="qwen2_vl", cutoff_len=4096,
                output_dir=str(tmp_path / "o"), overwrite_cache=True, image_max_pixels=16384, video_max_pixels=8192,
                video_maxlen=4, video_fps=2.0, preprocessing_num_workers=1, report_to="none", bf16=False)
    model_args, data_args, training_args, *_ = get_train_args(args)
    modules = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(modules["tokenizer"], data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, stage="sft", **modules)["train_dataset"]
    assert len(dataset) == len(rows)
    labels = [t for t in dataset[0]["labels"] if t != -100]
    assert "looking at sample" in modules["tokenizer"].decode(labels)
