"""Fingerprints of egoforge's trainers, to show a refactor keeps their numerics: run it in two checkouts (e.g. before
and after) on the same generated data and compare the two JSON files; they must be equal.

Each fingerprint is a trainer's log without its timing keys, a hash of every safetensors file it wrote and the list
of files. Runs include gradient accumulation, checkpoint rotation and a stop-and-resume.

    python benchmarks/trainer_fingerprint.py --work WORK egom2p traj egoagent [--data DIR]
    python benchmarks/trainer_fingerprint.py --work WORK lego --lego-work LEGO_WORK --lego-features LEGO_FEATURES

Without arguments (``make bench``) it fingerprints egom2p and traj in a temporary folder and prints the file.

``--data`` holds the generated EgoAgent videos (built there when missing; the encoder is not bit-reproducible, so
share the folder between the two runs). LEGO needs the ``lego_work`` / ``lego_features`` folders the LEGO tests
build. Writes ``WORK/fingerprint.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
from pathlib import Path

import egoforge

REPO = Path(egoforge.__file__).resolve().parents[1]
TIMING = {"elapsed_s", "images_per_s", "images_per_second"}
TRAINERS = ("egom2p", "traj", "egoagent", "lego")


def fingerprint(run: Path, log: str) -> dict:
    from safetensors.torch import load_file

    records = [json.loads(line) for line in (run / log).read_text().splitlines() if line.strip()]
    digest = hashlib.sha256()
    for path in sorted(run.rglob("*.safetensors")):
        tensors = load_file(str(path))
        for key in sorted(tensors):
            digest.update(key.encode())
            digest.update(tensors[key].float().numpy().tobytes())
    return {"log": [{k: v for k, v in r.items() if k not in TIMING} for r in records],
            "weights": digest.hexdigest(), "files": sorted(str(p.relative_to(run)) for p in run.rglob("*")
                                                           if p.is_file())}


def train(recipe: str, overrides: list[str]) -> None:
    from egoforge.tools.cli import main as cli

    if cli(["train", str(REPO / "recipes" / recipe), *overrides]) != 0:
        raise SystemExit(f"egoforge train {recipe} failed")


def egom2p(work: Path) -> dict:
    from egoforge.egom2p.modalities import modality_table
    from egoforge.testing.egom2p_data import write_token_shards

    grid = {"token_grid": [5, 4, 4], "vocab_size": 200}
    tokens = work / "tokens"
    if not tokens.exists():
        write_token_shards(tokens, modality_table({"rgb": grid, "depth": grid}),
                           {"synth_all": ("rgb", "depth", "gaze", "cam"), "synth_nogaze": ("rgb", "depth", "cam")},
                           samples=48)
    for name, steps in (("straight", 6), ("resumed", 3), ("resumed", 6)):
        train("egom2p_tiny.yaml", [f"data.root={tokens}", f"output_dir={work / name}", "progress=false",
                                   "logging_steps=1", "warmup_tokens=5120", "gradient_accumulation_steps=2",
                                   "save_steps=3", "save_total_limit=2", f"max_steps={steps}"])
    return {name: fingerprint(work / name, "log.jsonl") for name in ("straight", "resumed")}


def traj(work: Path) -> dict:
    from egoforge.testing.egom2p_data import random_camera_clips, random_gaze_clips, write_clip_folders

    result = {}
    for modality in ("cam", "gaze"):
        clips = random_camera_clips(60, seed=3) if modality == "cam" else random_gaze_clips(60, seed=3)
        write_clip_folders(work / f"clips_{modality}", "synth", {modality: clips})
        out = work / f"tok_{modality}"
        train(f"egom2p_{modality}_tokenizer.yaml", [
            f"data.clips=[{work / f'clips_{modality}'}]", "data.val_fraction=0.2", "batch_size=8", "max_steps=12",
            "logging_steps=4", "warmup_epochs=0.5", "save_steps=5", "progress=false", f"output_dir={out}",
            "tokenizer.dim=32", "tokenizer.depth=1", "tokenizer.num_heads=2"])
        result[modality] = {**fingerprint(out, "log.jsonl"), "metrics": json.loads((out / "metrics.json").read_text())}
    return result


def egoagent(work: Path, data: Path) -> dict:
    if not data.exists():
        from egoforge.egoagent.data.egoexo_pose import preprocess
        from egoforge.egoagent.data.frames import extract_videos
        from egoforge.testing.egoagent_data import make_egoexo, make_walking_tours

        extract_videos(make_walking_tours(data / "wtour", seconds=4, fps=10), data / "wtour_frames", progress=False)
        make_egoexo(data / "egoexo4d", train_takes=2, val_takes=1, frames=40)
        preprocess(data / "egoexo4d", data / "body_pose", progress=False)
    stage1, stage2 = work / "stage1", work / "stage2"
    for steps in (3, 7):  # stop after 3, resume to 7 (several epochs, accumulation 2, rotation)
        train("egoagent_stage1_tiny.yaml", [
            f"output_dir={stage1}", f"data.frame_roots=[{data / 'wtour_frames'}]", "progress=false", "num_workers=0",
            f"max_steps={steps}", "save_steps=2", "logging_steps=2", "gradient_accumulation_steps=2",
            "save_total_limit=2", "resume_from_checkpoint=latest"])
    train("egoagent_stage2_tiny.yaml", [
        f"output_dir={stage2}", f"data.pose_dir={data / 'body_pose' / 'train'}", "progress=false", "num_workers=0",
        f"data.frames_root={data / 'egoexo4d' / 'processed_data'}", f"stage2.init_from={stage1 / 'checkpoint-7'}",
        "max_steps=3", "logging_steps=1", "save_steps=2", "per_device_batch_size=2"])
    return {"stage1": fingerprint(stage1, "trainer_log.jsonl"), "stage2": fingerprint(stage2, "trainer_log.jsonl")}


def lego(work: Path, lego_work: Path, features: Path) -> dict:
    from egoforge.train.recipe import load_recipe

    new_layout = importlib.util.find_spec("egoforge.lego.register") is not None
    run = importlib.import_module("egoforge.lego.register" if new_layout else "egoforge.lego.trainer").run
    index = lego_work / "data" / "lego" / "egoforge"

    def recipe(out: Path, steps: int) -> dict:
        values = {"data.train_index": index / "ldm_ego4d_train.jsonl", "data.val_index": index / "ldm_ego4d_val.jsonl",
                  "data.media_root": lego_work / "data" / "lego" / "EgoGen",
                  "data.train_features.dir": features / "train",
                  "data.val_features.dir": features / "val", "train.output_dir": out, "train.batch_size": 4,
                  "train.gradient_accumulation_steps": 2, "train.save_steps": 3, "train.logging_steps": 2,
                  "train.val_steps": 2, "train.val_batches": 1, "train.save_total_limit": 1, "train.max_steps": steps}
        values = load_recipe(REPO / "recipes" / "lego_ldm_tiny.yaml", [f"{k}={v}" for k, v in values.items()])
        values.pop("trainer")
        return values

    for name, steps in (("straight", 5), ("resumed", 3), ("resumed", 5)):
        if run(recipe(work / f"lego_{name}", steps)) != 0:
            raise SystemExit("lego_ldm failed")
    return {name: fingerprint(work / f"lego_{name}", "trainer_log.jsonl") for name in ("straight", "resumed")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="output folder (default: a new temporary folder)")
    parser.add_argument("trainers", nargs="*", help=f"any of {', '.join(TRAINERS)} (default egom2p traj)")
    parser.add_argument("--data", type=Path, help="EgoAgent generated data (default WORK/egoagent_data)")
    parser.add_argument("--lego-work", type=Path)
    parser.add_argument("--lego-features", type=Path)
    args = parser.parse_args()
    args.trainers = args.trainers or ["egom2p", "traj"]
    unknown = sorted(set(args.trainers) - set(TRAINERS))
    if unknown:
        parser.error(f"unknown trainer(s) {unknown}; choose from {', '.join(TRAINERS)}")
    if args.trainers.count("lego") and not (args.lego_work and args.lego_features):
        parser.error("lego needs --lego-work and --lego-features (the folders the LEGO tests build)")
    if args.work is None:
        import tempfile

        args.work = Path(tempfile.mkdtemp(prefix="trainer_fingerprint_"))
    import torch

    torch.set_num_threads(1)
    for module in ("egoforge.egom2p.register", "egoforge.lego.register"):  # registration under either layout
        if importlib.util.find_spec(module):
            importlib.import_module(module)
    result = {}
    for name in args.trainers:
        work = args.work / name
        if name == "egoagent":
            result[name] = egoagent(work, args.data or args.work / "egoagent_data")
        elif name == "lego":
            result[name] = lego(work, args.lego_work, args.lego_features)
        else:
            result[name] = globals()[name](work)
    out = args.work / "fingerprint.json"
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"fingerprint of {', '.join(args.trainers)}: {out}")


if __name__ == "__main__":
    main()
