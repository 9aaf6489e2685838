"""``egoforge evaluate egocross [run|score]``: the EgoCross CloseQA protocol and its scorer."""

from __future__ import annotations

import argparse
import sys

HELP = "evaluate a model on a benchmark (egocross: CloseQA generation + scoring, or `egocross score` alone)"


def _add_score_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testbed", required=True, help="egocross_testbed_imgs.json")
    parser.add_argument("--answers", required=True, help="answers json with correct_option_letter")
    parser.add_argument("--predictions", required=True, help="predictions.jsonl ({id, prediction, ...} per line)")
    parser.add_argument("--out", required=True, help="output folder for results.json, tables, chart, submission")
    parser.add_argument("--label", default="this run", help="row name of these predictions in the tables")
    parser.add_argument("--no-published", action="store_true", help="leave the seed's published rows out")


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (a full checkpoint, or a LoRA adapter folder)")
    parser.add_argument("--testbed", required=True, help="egocross_testbed_imgs.json")
    parser.add_argument("--media-dir", help="root of the testbed's video_path frames (default: the testbed's folder)")
    parser.add_argument("--answers", help="answers json; when given, predictions are scored right away")
    parser.add_argument("--out", required=True, help="output folder (predictions.jsonl is resumed if present)")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--frames-as", default="video", choices=["video", "images"],
                        help="video: the official protocol (frames as one video); images: one image per frame")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="official: 2048")
    parser.add_argument("--max-pixels", type=int, default=480 * 360, help="per-frame pixel cap (official 480*360)")
    parser.add_argument("--min-pixels", type=int, default=32 * 32)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--fps", type=float, default=0.5, help="sampling rate of the frames (official 0.5; "
                        "CholecTrack20 .png and EgoSurgery are 1.0 regardless)")
    parser.add_argument("--strict-json", action="store_true",
                        help="score exactly like the benchmark script: no bare-letter fallback")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--device", help="transformers backend device (default: cuda if available)")
    parser.add_argument("--label", default="this run")
    parser.add_argument("--quiet", action="store_true")


def add_arguments(parser) -> None:
    parser.add_argument("benchmark", choices=["egocross"], help="benchmark protocol")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="`score ...` or the run options (see --help of each)")


def main(args) -> int:
    rest = list(args.rest)
    action = rest.pop(0) if rest and rest[0] in ("run", "score") else "run"
    parser = argparse.ArgumentParser(prog=f"egoforge evaluate {args.benchmark} {action}")
    (_add_score_args if action == "score" else _add_run_args)(parser)
    opts = parser.parse_args(rest)

    from egoforge.data.egocross import DataFormatError
    from egoforge.eval.egocross_run import generate_predictions, score_and_report

    try:
        if action == "score":
            results = score_and_report(opts.testbed, opts.answers, opts.predictions, opts.out, label=opts.label,
                                       published=not opts.no_published)
        else:
            from egoforge.eval.backends import GenerationSettings

            settings = GenerationSettings(frames_as=opts.frames_as, max_new_tokens=opts.max_new_tokens,
                                          max_pixels=opts.max_pixels, min_pixels=opts.min_pixels,
                                          batch_size=opts.batch_size)
            kwargs = {"device": opts.device} if opts.backend == "transformers" and opts.device else {}
            predictions = generate_predictions(
                opts.model, opts.testbed, opts.out, media_dir=opts.media_dir, backend=opts.backend,
                settings=settings, default_fps=opts.fps, allow_bare_letter=not opts.strict_json, limit=opts.limit,
                progress=not opts.quiet, backend_kwargs=kwargs)
            print(f"predictions: {predictions}")
            if not opts.answers:
                return 0
            results = score_and_report(opts.testbed, opts.answers, predictions, opts.out, label=opts.label)
    except (DataFormatError, FileNotFoundError, ValueError) as exc:
        print(f"egoforge evaluate: {exc}", file=sys.stderr)
        return 1
    from egoforge.eval.report import markdown_table

    rows = {opts.label: {d: t.accuracy for d, t in results.per_domain.items() if t.total}
            | {"micro": results.micro, "macro": results.macro}}
    print(markdown_table(rows, [*(d for d, t in results.per_domain.items() if t.total), "micro", "macro"]), end="")
    print(f"results: {opts.out}/results.json (+ results.md, results.csv, results.png, submission.json)")
    return 0
