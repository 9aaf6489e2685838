"""``egoforge evaluate egocross [run|score]``: the EgoCross CloseQA protocol and its scorer;
``egoforge evaluate suite``: the egocentric benchmarks (EgoSchema, EgoPlan-Bench2, EgoThink, QAEgo4D, EgoTextVQA,
EgoCross) through lmms-eval, beside the papers' rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("evaluate a model on a benchmark (egocross: CloseQA generation + scoring, or `egocross score` alone; "
        "suite: the egocentric benchmarks through lmms-eval)")


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
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="weights' dtype for either backend (auto: bfloat16 on GPU; transformers on CPU: float32)")
    parser.add_argument("--max-model-len", type=int, help="vLLM backend: context length (default 32768)")
    parser.add_argument("--label", default="this run")
    parser.add_argument("--quiet", action="store_true")


def _add_suite_args(parser: argparse.ArgumentParser) -> None:
    from egoforge.lmms.tasks import BENCHMARKS

    parser.add_argument("--model", required=True, help="model folder (checkpoint or LoRA adapter folder)")
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS), help=f"comma list of {', '.join(BENCHMARKS)}")
    parser.add_argument("--data-root", default="data/benchmarks", help="holds one folder per benchmark (NAME/)")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=DIR",
                        help="a benchmark's folder elsewhere than DATA_ROOT/NAME (repeatable)")
    parser.add_argument("--out", required=True, help="output folder: results.json, results.{md,csv,png}, tasks/")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--lmms-model", default="egoforge_vl",
                        help="lmms-eval model name (default egoforge's; any installed lmms-eval model works)")
    parser.add_argument("--model-args", default="", help="extra lmms-eval model_args, k=v,k2=v2")
    parser.add_argument("--device", help="transformers device (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--limit", type=int, help="only the first N docs of every task (smoke runs)")
    parser.add_argument("--max-new-tokens", type=int, help="override every task's generation length")
    parser.add_argument("--video-fps", type=float, default=2.0, help="video sampling rate (Ego3S: 2)")
    parser.add_argument("--max-frames", type=int, default=16, help="frames per video at most (Ego3S: 16)")
    parser.add_argument("--frames-as", default="video", choices=["video", "images"])
    parser.add_argument("--video-max-pixels", type=int, default=128 * 28 * 28, help="per video frame (Ego3S)")
    parser.add_argument("--image-max-pixels", type=int, default=401408, help="per image (Ego3S)")
    parser.add_argument("--judge", default="none", choices=["none", "openai"],
                        help="openai: the benchmarks' GPT judges (EgoTextVQA, EgoThink; needs OPENAI_API_KEY and "
                             "the network) instead of egoforge's local metrics")
    parser.add_argument("--judge-url", help="judge EgoTextVQA and EgoThink with the LLM at this OpenAI-compatible "
                                            "server (e.g. a local `vllm serve`: http://127.0.0.1:8000/v1)")
    parser.add_argument("--judge-model", help="the judge's model name (default: gpt-4o-mini for --judge openai; "
                                              "the one model a --judge-url server lists)")
    parser.add_argument("--judge-extra-body", help="a JSON object merged into every judge request")
    parser.add_argument("--strict-json", action="store_true", help="EgoCross: the official parser only")
    parser.add_argument("--label", default="this model", help="row name of this model in the tables")
    parser.add_argument("--no-published", action="store_true", help="leave the papers' rows out of the tables")
    parser.add_argument("--prepare-only", action="store_true",
                        help="validate data, write OUT/tasks and print the lmms-eval command without running it")
    parser.add_argument("--quiet", action="store_true", help="do not echo lmms-eval's output")


def _parse_pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        for part in filter(None, item.split(",") if what == "--model-args" else [item]):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{what}: expected KEY=VALUE, got {part!r}")
            pairs[key.strip()] = value.strip()
    return pairs


def _judge_config(opts):
    """The suite's LLM judge from --judge / --judge-url / --judge-model / --judge-extra-body, or None (local)."""
    import json
    import os

    from egoforge.lmms.judge import DEFAULT_MODEL, DEFAULT_URL, JudgeConfig, chat_url, needs_api_key, served_model

    if opts.judge == "none" and not opts.judge_url:
        if opts.judge_model or opts.judge_extra_body:
            raise ValueError("--judge-model / --judge-extra-body need --judge-url or --judge openai")
        return None
    if opts.judge == "openai" and opts.judge_url:
        raise ValueError("give either --judge openai or --judge-url, not both")
    url = chat_url(opts.judge_url or os.environ.get("OPENAI_API_URL") or DEFAULT_URL)
    key = os.environ.get("OPENAI_API_KEY", "")
    if needs_api_key(url) and not key:
        raise ValueError(f"the judge at {url} needs OPENAI_API_KEY")
    extra = json.loads(opts.judge_extra_body) if opts.judge_extra_body else None
    if extra is not None and not isinstance(extra, dict):
        raise ValueError("--judge-extra-body must be a JSON object")
    model = opts.judge_model or (DEFAULT_MODEL if opts.judge == "openai" else served_model(url, key))
    return JudgeConfig(url=url, model=model, api_key=key, extra_body=extra)


def _suite(rest: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="egoforge evaluate suite")
    _add_suite_args(parser)
    opts = parser.parse_args(rest)

    from egoforge.data.egocross import DataFormatError
    from egoforge.data.paths import UnsafePathError
    from egoforge.eval.lmms_runner import LmmsEvalError
    from egoforge.eval.report import markdown_table
    from egoforge.eval.suite import SuiteConfig, SuiteError, data_dirs, parse_benchmarks, run_suite
    from egoforge.lmms.taskgen import TaskOptions

    try:
        benchmarks = parse_benchmarks(opts.benchmarks)
        judge = _judge_config(opts)
        model_args = _parse_pairs([opts.model_args], "--model-args")
        if opts.lmms_model == "egoforge_vl":
            model_args = {"frames_as": opts.frames_as, "video_max_pixels": opts.video_max_pixels,
                          "image_max_pixels": opts.image_max_pixels, "video_fps": opts.video_fps,
                          "max_frames": opts.max_frames, **({"device": opts.device} if opts.device else {}),
                          **({"progress": "false"} if opts.quiet else {}), **model_args}
        config = SuiteConfig(
            model=opts.model, out=Path(opts.out).resolve(), benchmarks=benchmarks,
            data=data_dirs(benchmarks, opts.data_root, _parse_pairs(opts.data, "--data")), backend=opts.backend,
            lmms_model=opts.lmms_model, model_args=model_args, batch_size=opts.batch_size, limit=opts.limit,
            options=TaskOptions(video_fps=opts.video_fps, max_frames=opts.max_frames,
                                max_new_tokens=opts.max_new_tokens, judge=judge is not None,
                                strict_json=opts.strict_json),
            label=opts.label, published=not opts.no_published, echo=not opts.quiet, judge=judge)
        results = run_suite(config, prepare_only=opts.prepare_only)
    except (SuiteError, DataFormatError, UnsafePathError, FileNotFoundError, LmmsEvalError, ValueError,
            RuntimeError) as exc:
        print(f"egoforge evaluate suite: {exc}", file=sys.stderr)
        return 1
    if opts.prepare_only:
        print(f"tasks: {results['tasks']}\nrun it with:\n{results['command']}")
        return 0
    table = results["table"]
    print(markdown_table(table["rows"], table["columns"]), end="")
    print(f"results: {config.out}/results.json (+ results.md, results.csv, results.png, tasks/, lmms/)")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("benchmark", choices=["egocross", "suite"], help="benchmark protocol")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="`score ...` or the run options (see --help of each)")


def main(args) -> int:
    rest = list(args.rest)
    if args.benchmark == "suite":
        return _suite(rest)
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
            kwargs: dict = {"dtype": opts.dtype}
            if opts.backend == "transformers" and opts.device:
                kwargs["device"] = opts.device
            if opts.backend == "vllm" and opts.max_model_len:
                kwargs["max_model_len"] = opts.max_model_len
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
