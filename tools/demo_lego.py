"""``egoforge demo lego``: LEGO end to end, offline on CPU (tiny models, generated LEGO-format data).

A tiny Qwen3-VL (``egoforge make tiny-model``) and a generated LEGO download (``egoforge make data lego``)
-> ``egoforge lego convert`` -> stage A: the real ``llamafactory-cli train recipes/lego_vllm_qwen.yaml`` (scale and
path overrides only) -> ``egoforge lego features`` of the tuned VLLM (train and val) -> stage B: ``egoforge train
recipes/lego_ldm_tiny.yaml`` on those features -> ``egoforge lego sample`` of the val actions -> ``egoforge lego
metrics`` (PSNR against the ground-truth frames). LPIPS and FID need pretrained weights that are not offline, and the
CLIP score needs a CLIP vision checkpoint with projection: ``egoforge make tiny-model clip`` builds a full CLIPModel
(Ego3S's), which that metric does not load.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from egoforge.tools.demo_runner import Demo, StageFailed, read_json, repo_file

STAGE_A_STEPS = 6
STAGE_B_STEPS = 100
SAMPLE_STEPS = 20
# stage A's frame budget in the demo, used again for the features (the VLLM sees frames as it was tuned on them)
MAX_PIXELS, MIN_PIXELS = 16384, 1024


def run(args) -> int:
    demo = Demo("lego", args.workdir, stages=9, quiet=args.quiet)
    w = demo.work
    qwen = w / "models" / "tiny-qwen3-vl"
    lego = w / "data" / "lego"
    converted, media = lego / "egoforge", lego / "EgoGen"
    demo.egoforge("tiny random Qwen3-VL (the stage-A VLLM)", "make", "tiny-model", "qwen3_vl", "--out", qwen,
                  expect=(qwen,))
    demo.egoforge("generated LEGO download (EgoGen frames, LEGO json, GPT curation)", "make", "data", "lego", "--out",
                  lego, expect=(media,))
    demo.egoforge("LEGO json -> ShareGPT (stage A) + LDM index (stage B)", "lego", "convert", "--root", lego,
                  expect=(converted / "lego_ego4d_sft.json", converted / "ldm_ego4d_train.jsonl",
                          converted / "ldm_ego4d_val.jsonl"), show=3)
    # the recipe's dataset_dir holds ../data/lego/... paths: a copy beside data/ makes them point into the demo
    dataset_dir = w / "dataset_info"
    if dataset_dir.exists():
        shutil.rmtree(dataset_dir)
    shutil.copytree(repo_file("dataset_info"), dataset_dir)
    stage_a = w / "saves" / "stage_a"
    recipe_a = repo_file("recipes/lego_vllm_qwen.yaml")
    overrides = {"model_name_or_path": qwen, "dataset_dir": dataset_dir, "media_dir": media, "output_dir": stage_a,
                 "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_steps": STAGE_A_STEPS,
                 "save_steps": STAGE_A_STEPS, "bf16": "false", "deepspeed": "null", "image_max_pixels": MAX_PIXELS,
                 "image_min_pixels": MIN_PIXELS, "cutoff_len": 2048, "preprocessing_num_workers": 1,
                 "dataloader_num_workers": 0, "logging_steps": 1, "report_to": "none", "plot_loss": "false"}
    cli = Path(sys.executable).with_name("llamafactory-cli")
    argv = [str(cli), "train", str(recipe_a), *(f"{k}={v}" for k, v in overrides.items())]
    demo.command(f"stage A: llamafactory-cli train lego_vllm_qwen.yaml, {STAGE_A_STEPS} steps", argv,
                 shown=["llamafactory-cli", *argv[1:]], expect=(stage_a / "config.json",), show=1)
    features = {}
    for split in ("train", "val"):
        features[split] = w / "features" / split
        demo.egoforge(f"stage-A features of the {split} actions", "lego", "features", "--model", stage_a, "--index",
                      converted / f"ldm_ego4d_{split}.jsonl", "--media-root", media, "--out", features[split],
                      "--recipe", recipe_a, "--max-pixels", MAX_PIXELS, "--min-pixels", MIN_PIXELS,
                      "--max-new-tokens", "10", "--batch-size", "4", "--shard-size", "8", "--quiet",
                      expect=(features[split],), show=1)
    ldm = w / "saves" / "ldm_tiny"
    demo.egoforge(f"stage B: LDM on those features, {STAGE_B_STEPS} steps", "train",
                  repo_file("recipes/lego_ldm_tiny.yaml"),
                  f"data.train_index={converted / 'ldm_ego4d_train.jsonl'}", f"data.media_root={media}",
                  f"data.train_features.dir={features['train']}", f"train.output_dir={ldm}",
                  f"train.max_steps={STAGE_B_STEPS}", "train.batch_size=4", "train.logging_steps=10",
                  f"train.save_steps={STAGE_B_STEPS}", "data.flip_prob=0.0", expect=(ldm,), show=2)
    sample = w / "sample"
    demo.egoforge(f"sample the val actions ({SAMPLE_STEPS} Euler steps, dual guidance)", "lego", "sample", "--model",
                  ldm, "--index", converted / "ldm_ego4d_val.jsonl", "--media-root", media, "--features",
                  features["val"], "--out", sample, "--steps", SAMPLE_STEPS, "--device", "cpu", "--quiet",
                  expect=(sample / "examples.png",))
    scores = w / "metrics"
    demo.egoforge("metrics of the generated frames against the ground truth (PSNR)", "lego", "metrics", "--generated",
                  sample, "--index", converted / "ldm_ego4d_val.jsonl", "--media-root", media, "--out", scores,
                  "--metrics", "psnr", "--quiet", expect=(scores / "results.json",), show=4)
    results = read_json(scores / "results.json", "lego metrics")
    metrics = results.get("metrics") or {}
    if "psnr" not in metrics:
        raise StageFailed(f"lego metrics: {scores / 'results.json'} has no psnr (has {sorted(metrics)})")
    row = {"generated frames": results.get("n"), "PSNR (dB)": _value(metrics["psnr"])}
    demo.finish("LEGO on generated data (tiny VLLM + tiny LDM, CPU): val action frames", {"tiny LEGO": row},
                list(row), extra={"stage-A VLLM": stage_a, "features": w / "features", "stage-B LDM": ldm,
                                  "generated frames (picture)": sample / "examples.png",
                                  "metrics table": scores / "results.md"},
                picture_columns=["PSNR (dB)"], ylabel=None)
    return 0


def _value(metric) -> float:
    """A metric's number, whether stored bare or as {"mean": ...}."""
    value = metric.get("mean", metric.get("value")) if isinstance(metric, dict) else metric
    if not isinstance(value, (int, float)):
        raise StageFailed(f"lego metrics: not a number: {metric!r}")
    return float(value)
