"""``egoforge demo ego3s``: Ego3S end to end, offline on CPU (tiny Qwen2.5-VL and CLIP, generated Video-R1 data).

Generated colour questions whose answer only the clip holds (``egoforge make data ego3s --design csm``) -> validate
and convert train/val to verl parquet -> the CoT-SFT warm start (the real ``llamafactory-cli train
recipes/ego3s_cot_sft_qwen2_5_vl_7b.yaml``, scale and path overrides only; the official IRL run starts from such a
checkpoint) -> CSM with that policy (``egoforge select csm``; the code's coarse-only preset) -> TRL GRPO steps with
Ego3S's rewards and the ECR curriculum on the CSM selection (``egoforge train
recipes/ego3s_trl_grpo_qwen2_5_vl_3b.yaml``). An empty CSM selection stops the demo naming the report.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

from egoforge.tools.demo_runner import Demo, StageFailed, read_json, repo_file

SFT_EPOCHS = 12
GRPO_STEPS = 4
# the demo's frame budget: 4 frames of 56x56 px per clip (the recipes' paper budget is far too slow on a CPU)
FRAMES = ["--max-frames", "4", "--max-pixels", "3136", "--min-pixels", "784"]


def run(args) -> int:
    demo = Demo("ego3s", args.workdir, stages=10, quiet=args.quiet)
    w = demo.work
    qwen, clip = w / "models" / "tiny-qwen2.5-vl", w / "models" / "tiny-clip"
    data = w / "data" / "ego3s"
    demo.egoforge("tiny random Qwen2.5-VL (the policy)", "make", "tiny-model", "qwen2_5_vl", "--out", qwen,
                  expect=(qwen,))
    demo.egoforge("tiny random CLIP (IRL's grounded reward)", "make", "tiny-model", "clip", "--out", clip,
                  expect=(clip,))
    demo.egoforge("generated Video-R1 train/val: colour questions only the clip answers", "make", "data", "ego3s",
                  "--design", "csm", "--out", data, expect=(data / "train.json", data / "val.json"), show=2)
    demo.egoforge("validate the training file row by row", "ego3s", "validate", data / "train.json", show=1)
    for split, name in (("train", "pool"), ("val", "val")):
        demo.egoforge(f"convert {split}.json -> verl parquet ({name}.parquet)", "ego3s", "convert",
                      data / f"{split}.json", "--out", data / f"{name}.parquet", *FRAMES,
                      expect=(data / f"{name}.parquet",), show=1)
    demo.egoforge("CoT-SFT data (process + answer) for the warm start", "ego3s", "sft-data", data / "train.json",
                  "--out", data / "cot_sft.json", expect=(data / "cot_sft.json",), show=1)
    # the recipe's dataset_dir holds ../data/ego3s/... paths: a copy beside data/ makes them point into the demo
    dataset_dir = w / "dataset_info"
    if dataset_dir.exists():
        shutil.rmtree(dataset_dir)
    shutil.copytree(repo_file("dataset_info"), dataset_dir)
    sft = w / "saves" / "cot_sft"
    overrides = {"model_name_or_path": qwen, "dataset_dir": dataset_dir, "media_dir": data, "output_dir": sft,
                 "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "num_train_epochs": SFT_EPOCHS,
                 "learning_rate": 2e-3, "warmup_ratio": 0.05, "bf16": "false", "deepspeed": "null",
                 "gradient_checkpointing": "false", "image_max_pixels": 3136, "image_min_pixels": 784,
                 "video_max_pixels": 3136, "video_min_pixels": 784, "video_maxlen": 4, "cutoff_len": 2048,
                 "preprocessing_num_workers": 1, "dataloader_num_workers": 0, "logging_steps": 5,
                 "save_steps": 100000, "report_to": "none", "plot_loss": "false"}
    cli = Path(sys.executable).with_name("llamafactory-cli")
    argv = [str(cli), "train", str(repo_file("recipes/ego3s_cot_sft_qwen2_5_vl_7b.yaml")),
            *(f"{k}={v}" for k, v in overrides.items())]
    demo.command(f"CoT-SFT warm start: llamafactory-cli train ego3s_cot_sft_qwen2_5_vl_7b.yaml, {SFT_EPOCHS} epochs",
                 argv, shown=["llamafactory-cli", *argv[1:]], expect=(sft / "config.json",), show=1)
    csm = data / "csm"
    demo.egoforge("CSM with the warm-started policy: question only vs clip, G=5 (coarse test, official preset)",
                  "select", "csm", data / "train.json", "--model", sft, "--out", csm, "--preset", "official",
                  "--max-new-tokens", "40", "--batch-size", "8", *FRAMES, "--quiet", show=2)
    summary = checked_selection(csm)
    kept = summary["kept"]
    grpo = w / "saves" / "grpo"
    text = demo.egoforge(
        f"TRL GRPO with IRL rewards and ECR on the CSM selection, {GRPO_STEPS} steps", "train",
        repo_file("recipes/ego3s_trl_grpo_qwen2_5_vl_3b.yaml"), f"model={sft}", f"output_dir={grpo}",
        # selected.json keeps the source rows as they are: their media paths are relative to the data folder
        f"data.train={csm / 'selected.json'}", f"data.pool={data / 'train.json'}", f"data.media_root={data}",
        "data.max_pixels=3136",
        "data.min_pixels=784", "data.min_frames=2", "data.max_frames=4", f"reward.clip_model={clip}",
        "ecr.probe_size=4", "ecr.interval=2", "grpo.use_cpu=true", "grpo.bf16=false",
        "grpo.gradient_checkpointing=false", "grpo.per_device_train_batch_size=8", "grpo.num_generations=4",
        "grpo.max_completion_length=40", f"grpo.max_steps={GRPO_STEPS}", "grpo.learning_rate=0.0001",
        "grpo.save_strategy='no'", "grpo.seed=0",  # 'no' quoted: override values are YAML, a bare no is false
        expect=(grpo / "ecr_log.json",), show=1)
    steps = _logged_steps(text)
    if not steps:
        raise StageFailed(f"GRPO logged no reward; see {demo.logs}")
    rows = {}
    for i, step in enumerate(steps, 1):
        rows[f"GRPO step {i}"] = {
            "reward (total)": step.get("reward"),
            "accuracy": step.get("rewards/ego3s_accuracy/mean"),
            "format": step.get("rewards/ego3s_format/mean"),
            "grounded (IRL)": step.get("rewards/ego3s_grounded/mean"),
            "reward std in group": step.get("reward_std")}
    columns = ["reward (total)", "accuracy", "format", "grounded (IRL)", "reward std in group"]
    print("\nformat is 0 by design here: the CoT-SFT warm start (the official data) never shows the <object> list "
          "that the IRL format requires; GRPO has to discover it (the grounded reward stays 0 until it does)")
    demo.finish(f"Ego3S on generated data (tiny Qwen2.5-VL, CPU): CSM kept {kept} of {summary.get('samples')}, "
                "GRPO rewards per step", rows, columns,
                extra={"verl parquet (pool, val)": data / "pool.parquet", "warm-started policy": sft,
                       "CSM report": csm / "csm_report.json", "CSM histogram (picture)": csm / "csm_histogram.png",
                       "CSM selection": csm / "selected.parquet", "GRPO model": grpo,
                       "ECR log": grpo / "ecr_log.json"},
                ylabel="mean reward")
    return 0


def checked_selection(csm: Path) -> dict:
    """CSM's summary when it kept at least one sample and wrote the selection; else StageFailed naming the report
    (an empty selection would only fail later, inside the trainer, without saying why)."""
    report = csm / "csm_report.json"
    summary = read_json(report, "CSM").get("summary") or {}
    kept = summary.get("kept")
    if not isinstance(kept, int):
        raise StageFailed(f"CSM: {report} has no summary.kept count")
    if kept == 0:
        raise StageFailed(f"CSM kept 0 of {summary.get('samples', '?')} samples: nothing to train on (gaps in "
                          f"{report}, histogram {csm / 'csm_histogram.png'})")
    for name in ("selected.json", "selected.parquet"):
        if not (csm / name).exists():
            raise StageFailed(f"CSM kept {kept} samples but {csm / name} is missing")
    return summary


def _logged_steps(text: str) -> list[dict]:
    """The trainer's logged dicts that carry a reward (one per logging step), read from its output, as numbers."""
    steps = []
    for line in text.replace("\r", "\n").splitlines():
        start = line.find("{")
        if start < 0 or "'reward'" not in line:
            continue
        try:
            value = ast.literal_eval(line[start:line.rfind("}") + 1])
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            numbers = {k: n for k, n in ((k, _number(v)) for k, v in value.items()) if n is not None}
            if "reward" in numbers:
                steps.append(numbers)
    return steps


def _number(value) -> float | None:
    """transformers logs numbers as formatted strings ('0.25', '8.536e-05')."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
