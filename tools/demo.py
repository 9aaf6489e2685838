"""``egoforge demo``: the whole EgoCross pipeline offline on a tiny Qwen3-VL, in a few minutes on a laptop CPU.

Builds a tiny random Qwen3-VL from a config, generates an egocentric support set in the exact EgoCross layout and
a testbed, validates both, scores the untrained model with the CloseQA protocol, runs the real
``llamafactory-cli train`` on a copy of ``recipes/egocross_lora.yaml`` with scale/path overrides only, and scores
the trained adapter again: per-domain tables before/after, a PNG chart, and every artefact under ``--workdir``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HELP = ("run a pipeline's offline demo on CPU (default egocross: tiny Qwen3-VL, generated data, real llamafactory-cli "
        "train, CloseQA eval; also ego3s, lego, suite, egoagent, egom2p)")

# pipeline -> module under egoforge.tools with ``run(args) -> int`` (egocross is this module's own ``main``)
PIPELINES = {"egocross": None, "ego3s": "demo_ego3s", "lego": "demo_lego", "suite": "demo_suite",
             "egoagent": "demo_egoagent", "egom2p": "demo_egom2p"}


def add_arguments(parser) -> None:
    parser.add_argument("pipeline", nargs="?", default="egocross", choices=list(PIPELINES),
                        help="which pipeline to demonstrate (default: egocross)")
    parser.add_argument("--workdir", default=None,
                        help="everything the demo writes goes here (default runs/demo, runs/demo_PIPELINE)")
    parser.add_argument("--recipe", default="recipes/egocross_lora.yaml", help="recipe to copy (LoRA, as shipped)")
    parser.add_argument("--per-domain", type=int, default=100, help="support-set samples per domain (real: 20)")
    parser.add_argument("--test-per-domain", type=int, default=20, help="testbed questions per domain")
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--learning-rate", type=float, default=2e-3,
                        help="the recipe's 2e-4 suits a pretrained 4B model; a random tiny one needs more")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--independent", action="store_true",
                        help="draw clip attributes independently (harder; a tiny model barely learns it)")
    parser.add_argument("--quiet", action="store_true")


def _step(n: int, total: int, text: str) -> float:
    print(f"\n[{n}/{total}] {text}", flush=True)
    return time.time()


def main(args) -> int:
    pipeline = getattr(args, "pipeline", "egocross")
    if args.workdir is None:
        args.workdir = "runs/demo" if pipeline == "egocross" else f"runs/demo_{pipeline}"
    if pipeline != "egocross":
        import importlib

        from egoforge.tools.demo_runner import StageFailed

        module = importlib.import_module(f"egoforge.tools.{PIPELINES[pipeline]}")
        try:
            return module.run(args)
        except StageFailed as exc:
            print(f"egoforge demo {pipeline}: {exc}", file=sys.stderr)
            return 1
    return _egocross(args)


def _egocross(args) -> int:
    from egoforge.data.validate import validate_file
    from egoforge.eval.backends import GenerationSettings
    from egoforge.eval.egocross_run import generate_predictions, result_row, score_and_report
    from egoforge.eval.report import markdown_table, write_tables
    from egoforge.llamafactory.launch import TrainingFailed, train
    from egoforge.testing.egocross_data import make_support_set, make_testbed
    from egoforge.testing.recipes import find_repo_file, stage_dataset_info, tiny_overrides
    from egoforge.testing.tiny_models import ensure_tiny_model

    work = Path(args.workdir).resolve()
    recipe = (Path(args.recipe) if Path(args.recipe).exists() else find_repo_file(args.recipe)).resolve()
    total, started = 6, time.time()

    t = _step(1, total, "tiny random Qwen3-VL (built from a config, cached per transformers version)")
    model = ensure_tiny_model("qwen3_vl")
    print(f"      {model} ({time.time() - t:.1f}s)")

    t = _step(2, total, "generating egocentric data in the EgoCross layouts")
    data_root, bench = work / "data" / "egocross", work / "testbed"
    coupled = not args.independent
    make_support_set(data_root, per_domain=args.per_domain, coupled=coupled)
    testbed, answers = make_testbed(bench, per_domain=args.test_per_domain, coupled=coupled)
    dataset_dir = stage_dataset_info(work)
    n_frames = sum(1 for _ in (data_root / "frames").rglob("*.jpg"))
    print(f"      support set {data_root} ({4 * args.per_domain} samples, {n_frames} frames), "
          f"testbed {testbed} ({4 * args.test_per_domain} questions) ({time.time() - t:.1f}s)")

    _step(3, total, "validating both with `egoforge validate`")
    for path, extra in ((data_root / "train.json", {}), (testbed, {"answers": answers})):
        issues = validate_file(path, **extra)
        print(f"      {path.name}: {len(issues)} issues")
        if issues:
            print("\n".join(str(i) for i in issues[:10]), file=sys.stderr)
            return 1

    settings = {fa: GenerationSettings(frames_as=fa, max_new_tokens=24, max_pixels=16384, min_pixels=1024,
                                       batch_size=8) for fa in ("video", "images")}

    def evaluate(model_dir: Path, tag: str) -> dict[str, dict]:
        rows = {}
        for fa, setting in settings.items():
            out = work / "eval" / f"{tag}_{fa}"
            preds = generate_predictions(str(model_dir), testbed, out, settings=setting, progress=not args.quiet)
            results = score_and_report(testbed, answers, preds, out, label=f"{tag} ({fa})", published=False)
            rows[f"tiny Qwen3-VL {tag}, frames as {fa}"] = result_row(results)
        return rows

    t = _step(4, total, "CloseQA evaluation of the untrained model (official prompt, greedy, JSON/letter parsing)")
    before = evaluate(model, "before")
    print(f"      ({time.time() - t:.1f}s)")

    t = _step(5, total, f"llamafactory-cli train {recipe} (+ tiny scale/path overrides)")
    out_dir = work / "saves" / "egocross_lora"
    overrides = tiny_overrides(
        model, dataset_dir, data_root, out_dir, max_steps=-1, num_train_epochs=args.epochs,
        learning_rate=args.learning_rate, per_device_train_batch_size=args.batch_size, logging_steps=10,
        plot_loss=True, warmup_ratio=0.05)
    print("      overrides: " + " ".join(f"{k}={v}" for k, v in overrides.items()))
    try:
        train(recipe, overrides, work / "train.log", cwd=work, echo=False)
    except TrainingFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    log = (work / "train.log").read_text()
    losses = [line.strip() for line in log.splitlines() if "'loss'" in line]
    shown = losses[:: max(1, len(losses) // 6)]
    for line in shown + [ln for ln in losses[-1:] if ln not in shown]:
        print(f"      {line}")
    print(f"      adapter: {out_dir}  log: {work / 'train.log'} ({time.time() - t:.1f}s)")

    t = _step(6, total, "CloseQA evaluation of the trained adapter")
    after = evaluate(out_dir, "after")
    print(f"      ({time.time() - t:.1f}s)")

    rows = {**before, **after}
    columns = ["Surgery", "Industry", "XSports", "Animal", "micro", "macro"]
    paths = write_tables(rows, columns, work, "demo_results", "EgoCross CloseQA on generated data: tiny Qwen3-VL")
    per_category = json.loads((work / "eval" / "after_video" / "results.json").read_text())["per_category"]
    print("\nEgoCross CloseQA accuracy (%), generated testbed, chance = 25:\n")
    print(markdown_table(rows, columns))
    print("after training, frames as video, per category: "
          + ", ".join(f"{c} {v['accuracy']:.1f}" for c, v in per_category.items()))
    print(f"\ntables: {paths['markdown']}  {paths['csv']}\nchart:  {paths['png']}")
    print(f"demo finished in {time.time() - started:.0f}s")
    return 0
