"""``egoforge make {tiny-model,data}``: the tiny random models and generated data every walkthrough runs on.

    egoforge make tiny-model qwen3_vl --out models/tiny-qwen3-vl     # also qwen2_vl, qwen2_5_vl, llava, clip
    egoforge make data egocross --out data/egocross_demo             # also ego3s, lego, suite, egoagent, egom2p

Models are built offline from configs with random weights (a local byte-level BPE tokenizer carrying the real
special tokens), so they exercise the real loading and training code but know nothing. Data is generated in each
pipeline's real layout. Both refuse to write into a non-empty folder: nothing is ever overwritten.
"""

from __future__ import annotations

from pathlib import Path

HELP = "build a tiny random model from a config, or generate a pipeline's data in its real layout (offline)"
MODELS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "clip")
PIPELINES = ("egocross", "ego3s", "lego", "suite", "egoagent", "egom2p")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="make_command", metavar="WHAT")
    model = sub.add_parser("tiny-model", help="a tiny random checkpoint (transformers format) built from a config")
    model.add_argument("kind", choices=MODELS)
    model.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    model.add_argument("--seed", type=int, default=0)
    data = sub.add_parser("data", help="generated data in a pipeline's real layout")
    data.add_argument("pipeline", choices=PIPELINES)
    data.add_argument("--out", required=True, help="folder to create (must not exist or be empty)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--design", choices=["mixed", "csm"], default="mixed",
                      help="ego3s only: mixed = all five problem types and media kinds (default); csm = colour "
                      "questions whose answer only the video holds, fixed option order, a CoT `process` per row "
                      "(what CSM's coarse test keeps once a model is warm-started on it)")


def _refuse_existing(out: Path) -> str | None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return f"{out} already exists and is not an empty folder; pick a new --out (nothing is overwritten)"
    return None


def build_model(kind: str, out: Path, seed: int = 0) -> Path:
    if kind == "llava":
        from egoforge.testing.lego_data import build_tiny_llava

        return build_tiny_llava(out, seed=seed)
    if kind == "clip":
        from egoforge.testing.ego3s_data import build_tiny_clip

        return build_tiny_clip(out, seed=seed)
    from egoforge.testing.tiny_models import build_tiny_model

    return build_tiny_model(kind, out, seed=seed)


def build_data(pipeline: str, out: Path, seed: int = 0, design: str = "mixed") -> list[str]:
    """Generate ``pipeline``'s data under ``out``; returns one line per thing written, for the user."""
    if design != "mixed" and pipeline != "ego3s":
        raise ValueError(f"--design {design} exists for ego3s only, not {pipeline}")
    if pipeline == "egocross":
        from egoforge.testing.egocross_data import make_support_set, make_testbed

        support = make_support_set(out / "support_set", per_domain=20, seed=seed)
        testbed, answers = make_testbed(out / "testbed", per_domain=12, seed=seed + 1)
        return [f"support set (ShareGPT, 4 domains x 20): {support}", f"testbed questions: {testbed}",
                f"testbed answers: {answers}"]
    if pipeline == "ego3s" and design == "csm":
        from egoforge.testing.ego3s_data import make_video_r1_dataset

        kind = ("multiple choice",)
        train = make_video_r1_dataset(out, n=32, seed=seed, frames=(4, 6), file_name="train.json", problem_types=kind)
        val = make_video_r1_dataset(out, n=8, seed=seed + 1, frames=(4, 6), file_name="val.json", first_id=10_001,
                                    problem_types=kind)
        for path in (train, val):
            _design_for_csm(path)
        return [f"Video-R1 train split (colour questions, CoT process): {train}", f"Video-R1 val split: {val}"]
    if pipeline == "ego3s":
        from egoforge.testing.ego3s_data import make_video_r1_dataset

        train = make_video_r1_dataset(out, n=20, seed=seed, file_name="train.json")
        val = make_video_r1_dataset(out, n=6, seed=seed + 1, file_name="val.json", first_id=10_001)
        return [f"Video-R1 train split: {train}", f"Video-R1 val split: {val}"]
    if pipeline == "lego":
        from egoforge.testing.lego_data import make_lego_dataset

        layout = make_lego_dataset(out, seed=seed)
        return [f"LEGO dataset (ego4d layout): {layout.root}"]
    if pipeline == "suite":
        from egoforge.testing.benchdata import make_benchmarks

        return [f"{name}: {path}" for name, path in make_benchmarks(out).items()]
    if pipeline == "egoagent":
        from egoforge.testing.egoagent_data import make_city_imagefolder, make_egoexo, make_walking_tours

        videos = make_walking_tours(out / "wtour", seed=seed)
        layout = make_egoexo(out / "egoexo4d", seed=seed + 2)
        train, val = make_city_imagefolder(out / "cities", seed=seed + 1)
        return [f"{len(videos)} walking tours: {out / 'wtour'}", f"Ego-Exo4D layout: {layout.root}",
                f"ImageFolder: {train}, {val}"]
    if pipeline == "egom2p":
        from egoforge.testing.egom2p_data import make_raw_dataset

        return [f"raw recordings: {make_raw_dataset(out / 'raw', recordings=2, seed=seed)}"]
    raise ValueError(f"unknown pipeline {pipeline!r}; choose one of {PIPELINES}")


CSM_OPTIONS = ("red", "green", "blue", "yellow")


def _design_for_csm(path: Path) -> None:
    """Rewrite freshly generated multiple-choice colour rows in place: one fixed option order (so the question text
    never tells the answer and the letter follows from the colour seen in the clip) and a CoT ``process`` naming that
    colour (the warm-start target). Only ever applied to a file this command has just written."""
    import json
    import os
    import shutil

    rows = []
    for row in json.loads(path.read_text()):
        # LLaMA-Factory's video column cannot mix frame lists with file paths: keep clips as mp4 (and images)
        if row["path"].startswith("frames/"):
            shutil.rmtree(path.parent / row["path"])
            continue
        rows.append(row)
    for row in rows:
        letter = row["solution"].removeprefix("<answer>").removesuffix("</answer>")
        colour = dict(option.split(". ", 1) for option in row["options"])[letter]
        row["options"] = [f"{'ABCD'[i]}. {c}" for i, c in enumerate(CSM_OPTIONS)]
        row["solution"] = f"<answer>{'ABCD'[CSM_OPTIONS.index(colour)]}</answer>"
        row["process"] = f"<think>The camera wearer holds a {colour} object.</think>"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    os.replace(tmp, path)


def main(args) -> int:
    import sys

    if not getattr(args, "make_command", None):
        print("usage: egoforge make {tiny-model,data} ... (see egoforge make -h)", file=sys.stderr)
        return 2
    out = Path(args.out)
    refusal = _refuse_existing(out)
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    if args.make_command == "tiny-model":
        path = build_model(args.kind, out, seed=args.seed)
        print(f"tiny random {args.kind} (random weights, built from a config) -> {path}")
        return 0
    for line in build_data(args.pipeline, out, seed=args.seed, design=args.design):
        print(line)
    return 0
