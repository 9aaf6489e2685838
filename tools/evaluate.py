"""``egoforge evaluate egocross [run|score]``: the EgoCross CloseQA protocol and its scorer;
``egoforge evaluate suite``: the egocentric benchmarks (EgoSchema, EgoPlan-Bench2, EgoThink, QAEgo4D, EgoTextVQA,
EgoCross) through lmms-eval, beside the papers' rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from egoforge.tools.argtypes import check_order_or_raise, non_negative_int, positive_float, positive_int

HELP = ("evaluate a model on a benchmark (egocross: CloseQA generation + scoring, `egocross score` alone, "
        "`egocross submit` for Codabench, `egocross openqa` with an LLM judge; suite: the egocentric benchmarks "
        "through lmms-eval)")


def _add_score_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testbed", required=True, help="egocross_testbed_imgs.json")
    parser.add_argument("--answers", required=True, help="answers json with correct_option_letter")
    parser.add_argument("--predictions", required=True, help="predictions.jsonl ({id, prediction, ...} per line)")
    parser.add_argument("--out", required=True, help="output folder for results.json, tables, chart, submission")
    parser.add_argument("--label", default="this run", help="row name of these predictions in the tables")
    parser.add_argument("--no-published", action="store_true", help="leave the seed's published rows out")
    parser.add_argument("--allow-partial", action="store_true",
                        help="score a run that lacks predictions for some questions: they count as wrong (the "
                             "denominator stays every question) and every table prints the coverage 'n of N'; "
                             "without it a partial run is refused")


def _add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (a full checkpoint, or a LoRA adapter folder)")
    parser.add_argument("--testbed", required=True, help="egocross_testbed_imgs.json")
    parser.add_argument("--media-dir", help="folder holding the testbed's frames: the published absolute "
                        "/egocross_testbed/... paths resolve under D/egocross_testbed (or D itself when D is that "
                        "folder); relative paths under D. Default: relative paths under the testbed's folder, "
                        "absolute paths as they are")
    parser.add_argument("--answers", help="answers json; when given, predictions are scored right away")
    parser.add_argument("--out", required=True, help="output folder (predictions.jsonl is resumed if present)")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--protocol", default="official", choices=["official", "sft"],
                        help="official: eval_os_closedset.py (JSON answer, frames as one 0.5 fps video, 2048 "
                             "tokens); sft: the EgoCross SFT repository's inference (frames as images, 'A) ..' "
                             "options, one letter, 16 tokens), to compare with its published rows")
    parser.add_argument("--frames-as", choices=["video", "images"],
                        help="override the protocol's choice (official: video; sft: images)")
    parser.add_argument("--max-new-tokens", type=positive_int, help="override the protocol's (official 2048, sft 16)")
    parser.add_argument("--max-pixels", type=positive_int, help="per-frame pixel cap (official 480*360, sft 360000)")
    parser.add_argument("--min-pixels", type=non_negative_int, help="per-frame minimum (official 32*32, sft 50176)")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--fps", type=positive_float, default=0.5, help="rate the frames are fed at (official 0.5)")
    parser.add_argument("--true-fps", action="store_true",
                        help="deviation from the official protocol: give EgoSurgery and CholecTrack20 .png clips "
                             "their true 1.0 fps in the prompt and the video timing (official: the prompt says 1.0 "
                             "only for CholecTrack20 .png, and every clip is fed at --fps)")
    parser.add_argument("--strict-json", action="store_true",
                        help="score exactly like the benchmark script: no bare-letter fallback, no <think> dropping")
    parser.add_argument("--limit", type=positive_int, help="only the first N questions")
    parser.add_argument("--device", help="transformers backend device (default: cuda if available)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                        help="weights' dtype for either backend (auto: bfloat16 on GPU; transformers on CPU: float32)")
    parser.add_argument("--max-model-len", type=positive_int, help="vLLM backend: context length (default 32768)")
    parser.add_argument("--label", default="this run")
    parser.add_argument("--quiet", action="store_true")


def _add_submit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", required=True, help="predictions.jsonl of a run over the whole testbed")
    parser.add_argument("--template", required=True, help="Codabench submission_template.json")
    parser.add_argument("--out", required=True, help="the file to upload, e.g. submission.json")
    parser.add_argument("--allow-missing", action="store_true",
                        help="submit template ids without a prediction unanswered instead of refusing")


def _add_openqa_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--testbed", required=True, help="egocross_testbed_imgs.json")
    parser.add_argument("--answers", required=True, help="answers json with answer_text and detailed_answer")
    parser.add_argument("--out", required=True, help="output folder (predictions and judgments are resumed)")
    parser.add_argument("--judge-url", required=True,
                        help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1")
    parser.add_argument("--judge-model", required=True, help="judge model name (official: gpt-4.1)")
    parser.add_argument("--judge-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the judge's API key (unset: no key is sent)")
    parser.add_argument("--judge-retries", type=non_negative_int, default=3)
    parser.add_argument("--judge-timeout", type=positive_float, default=120.0)
    parser.add_argument("--model", help="model folder to answer the open questions (or give --predictions)")
    parser.add_argument("--predictions", help="existing OpenQA predictions.jsonl to judge instead of generating")
    parser.add_argument("--allow-partial", action="store_true",
                        help="with --predictions: judge a run that lacks some questions (they count as wrong, the "
                             "denominator stays every question, the table prints the coverage 'n of N')")
    parser.add_argument("--media-dir", help="folder holding the testbed's frames (see `evaluate egocross run`)")
    parser.add_argument("--backend", default="transformers", choices=["transformers", "vllm"])
    parser.add_argument("--frames-as", choices=["video", "images"], help="default: video (as for CloseQA)")
    parser.add_argument("--max-new-tokens", type=positive_int, help="default 2048")
    parser.add_argument("--max-pixels", type=positive_int, help="per-frame pixel cap (default 480*360)")
    parser.add_argument("--min-pixels", type=non_negative_int)
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--fps", type=positive_float, default=0.5)
    parser.add_argument("--true-fps", action="store_true", help="per-domain true rates (a deviation)")
    parser.add_argument("--limit", type=positive_int, help="only the first N questions")
    parser.add_argument("--device", help="transformers backend device")
    parser.add_argument("--label", default="this run")
    parser.add_argument("--quiet", action="store_true")


def _openqa(opts) -> int:
    import os

    from tqdm.auto import tqdm

    from egoforge.data.atomic import atomic_write_json
    from egoforge.data.egocross import DOMAINS, load_testbed
    from egoforge.data.predictions import read_predictions
    from egoforge.eval.egocross_openqa import JudgeCache, JudgeClient, judge_predictions, load_open_answers
    from egoforge.eval.egocross_run import generate_predictions
    from egoforge.eval.report import markdown_table, write_tables

    if bool(opts.model) == bool(opts.predictions):
        raise ValueError("give exactly one of --model (generate the open answers) and --predictions")
    out = Path(opts.out)
    answers = load_open_answers(opts.answers)  # before any generation: a wrong answers file fails fast
    items = load_testbed(opts.testbed)[: opts.limit] if opts.limit else load_testbed(opts.testbed)
    predictions = opts.predictions
    if opts.model:
        opts.protocol = "openqa"
        kwargs = {"device": opts.device} if opts.backend == "transformers" and opts.device else {}
        predictions = generate_predictions(
            opts.model, opts.testbed, out, media_dir=opts.media_dir, backend=opts.backend, settings=_settings(opts),
            fps=opts.fps, true_fps=opts.true_fps, protocol="openqa", allow_bare_letter=False, limit=opts.limit,
            progress=not opts.quiet, backend_kwargs=kwargs)
    judge = JudgeClient(opts.judge_url, opts.judge_model, api_key=os.environ.get(opts.judge_key_env) or None,
                        timeout=opts.judge_timeout, retries=opts.judge_retries)
    cache = JudgeCache(out / "judgments.jsonl")
    # a given --predictions file is scored as it is (strict, covering the testbed); a generated one was just
    # completed by the run
    records = read_predictions(predictions, strict=bool(opts.predictions))
    coverage = None
    if opts.predictions:
        from egoforge.eval.egocross_score import check_coverage

        check_coverage(items, records, opts.predictions, allow_partial=opts.allow_partial)
        covered = sum(str(item["id"]) in records for item in items)
        coverage = f"{covered} of {len(items)}" if covered < len(items) else None
    results = judge_predictions(items, answers, records, judge,
                                cache,
                                progress=lambda it: tqdm(it, desc="judging", unit="q", disable=opts.quiet),
                                answers_file=opts.answers)
    atomic_write_json(out / "openqa_results.json", results.as_dict() | {"label": opts.label,
                                                                         "judge_model": opts.judge_model,
                                                                         "coverage": coverage})
    atomic_write_json(out / "openqa_marks.json", results.records)
    row = {d: 100.0 * c / t for d, (c, t) in results.per_domain.items() if t} | {"micro": results.micro,
                                                                                   "macro": results.macro}
    columns = [*(d for d in DOMAINS if results.per_domain[d][1]), "micro", "macro"]
    if coverage:  # a partial run (--allow-partial): the missing questions count as wrong
        row["coverage"] = coverage
        columns.append("coverage")
    write_tables({opts.label: row}, columns, out, "results_openqa",
                 f"EgoCross OpenQA accuracy (%), judge {opts.judge_model}, mark >= 4"
                 + (f", predictions for {coverage} questions" if coverage else ""))
    print(markdown_table({opts.label: row}, columns), end="")
    print(f"judge calls {results.judge_calls}, cached {results.cached}; results: {out}/openqa_results.json "
          "(+ openqa_marks.json, results_openqa.md/.csv/.png, judgments.jsonl)")
    return 0


def _settings(opts):
    from egoforge.eval.backends import GenerationSettings
    from egoforge.eval.egocross_protocol import PROTOCOLS

    protocol = PROTOCOLS[getattr(opts, "protocol", "official")]

    def pick(value, default):
        return default if value is None else value

    return GenerationSettings(frames_as=pick(opts.frames_as, protocol.frames_as),
                              max_new_tokens=pick(opts.max_new_tokens, protocol.max_new_tokens),
                              max_pixels=pick(opts.max_pixels, protocol.max_pixels),
                              min_pixels=pick(opts.min_pixels, protocol.min_pixels), batch_size=opts.batch_size)


def _submit(opts) -> int:
    from egoforge.data.atomic import atomic_write_json
    from egoforge.data.predictions import read_predictions
    from egoforge.eval.egocross_submit import fill_template, load_template

    result = fill_template(load_template(opts.template), read_predictions(opts.predictions, strict=True),
                           allow_missing=opts.allow_missing)
    atomic_write_json(opts.out, result.rows)
    if result.unparsed:
        print(f"warning: {len(result.unparsed)} predictions are not one option letter and are submitted as \"\": "
              f"{', '.join(result.unparsed[:10])}", file=sys.stderr)
    print(f"{opts.out}: {len(result.rows)} rows, {result.answered} answered; coverage: predictions for "
          f"{result.coverage} template questions")
    return 0


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
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--limit", type=positive_int, help="only the first N docs of every task (smoke runs)")
    parser.add_argument("--max-new-tokens", type=positive_int, help="override every task's generation length")
    parser.add_argument("--video-fps", type=positive_float, default=2.0, help="video sampling rate (Ego3S: 2)")
    parser.add_argument("--max-frames", type=positive_int, default=16, help="frames per video at most (Ego3S: 16)")
    parser.add_argument("--frames-as", default="video", choices=["video", "images"])
    parser.add_argument("--video-max-pixels", type=positive_int, default=128 * 28 * 28, help="per video frame (Ego3S)")
    parser.add_argument("--image-max-pixels", type=positive_int, default=401408, help="per image (Ego3S)")
    parser.add_argument("--judge", default="none", choices=["none", "openai"],
                        help="openai: the benchmarks' GPT judges (EgoTextVQA, EgoThink; needs OPENAI_API_KEY and "
                             "the network) instead of egoforge's local metrics")
    parser.add_argument("--judge-url", help="judge EgoTextVQA and EgoThink with the LLM at this OpenAI-compatible "
                                            "server (e.g. a local `vllm serve`: http://127.0.0.1:8000/v1)")
    parser.add_argument("--judge-model", help="the judge's model name (default: gpt-4o-mini for --judge openai; "
                                              "the one model a --judge-url server lists)")
    parser.add_argument("--judge-extra-body", help="a JSON object merged into every judge request")
    parser.add_argument("--strict-json", action="store_true", help="EgoCross: the official parser only")
    parser.add_argument("--true-fps", action="store_true",
                        help="EgoCross: true per-domain frame rates (a deviation from the official 0.5 fps)")
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

    from egoforge.eval.report import markdown_table
    from egoforge.lmms.suite import SuiteConfig, data_dirs, parse_benchmarks, run_suite
    from egoforge.lmms.taskgen import TaskOptions

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
                            strict_json=opts.strict_json, true_fps=opts.true_fps),
        label=opts.label, published=not opts.no_published, echo=not opts.quiet, judge=judge)
    results = run_suite(config, prepare_only=opts.prepare_only)
    if opts.prepare_only:
        print(f"tasks: {results['tasks']}\nrun it with:\n{results['command']}")
        return 0
    table = results["table"]
    print(markdown_table(table["rows"], table["columns"]), end="")
    print(f"results: {config.out}/results.json (+ results.md, results.csv, results.png, tasks/, lmms/)")
    return 0


ACTIONS = {"run": _add_run_args, "score": _add_score_args, "submit": _add_submit_args, "openqa": _add_openqa_args}


def add_arguments(parser) -> None:
    parser.add_argument("benchmark", choices=["egocross", "suite"], help="benchmark protocol")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="`score ...` or the run options (see --help of each)")


def main(args) -> int:
    rest = list(args.rest)
    if args.benchmark == "suite":
        return _suite(rest)
    action = rest.pop(0) if rest and rest[0] in ACTIONS else "run"
    parser = argparse.ArgumentParser(prog=f"egoforge evaluate {args.benchmark} {action}")
    ACTIONS[action](parser)
    opts = parser.parse_args(rest)
    check_order_or_raise(opts, ("min_pixels", "max_pixels"))
    if action == "run":  # a missing folder fails now, not after minutes of hub retries
        from egoforge.data.models import resolve_model_path

        opts.model = resolve_model_path(opts.model)

    # errors (bad input: exit 2; a failed run: exit 1) go through egoforge.tools.cli, one line each
    from egoforge.eval.egocross_run import generate_predictions, score_and_report

    if action == "submit":
        return _submit(opts)
    if action == "openqa":
        return _openqa(opts)
    if action == "score":
        results = score_and_report(opts.testbed, opts.answers, opts.predictions, opts.out, label=opts.label,
                                   published=not opts.no_published, allow_partial=opts.allow_partial)
    else:
        kwargs: dict = {"dtype": opts.dtype}
        if opts.backend == "transformers" and opts.device:
            kwargs["device"] = opts.device
        if opts.backend == "vllm" and opts.max_model_len:
            kwargs["max_model_len"] = opts.max_model_len
        predictions = generate_predictions(
            opts.model, opts.testbed, opts.out, media_dir=opts.media_dir, backend=opts.backend,
            settings=_settings(opts), fps=opts.fps, true_fps=opts.true_fps, protocol=opts.protocol,
            allow_bare_letter=not opts.strict_json, limit=opts.limit, progress=not opts.quiet,
            backend_kwargs=kwargs)
        print(f"predictions: {predictions}")
        if not opts.answers:
            return 0
        results = score_and_report(opts.testbed, opts.answers, predictions, opts.out, label=opts.label,
                                   limit=opts.limit)
    from egoforge.eval.report import markdown_table

    rows = {opts.label: {d: t.accuracy for d, t in results.per_domain.items() if t.total}
            | {"micro": results.micro, "macro": results.macro, "coverage": results.coverage}}
    print(markdown_table(rows, [*(d for d, t in results.per_domain.items() if t.total), "micro", "macro",
                                "coverage"]), end="")
    if results.missing_predictions:
        print(f"warning: partial run: predictions for {results.coverage} questions; the "
              f"{len(results.missing_predictions)} missing ones are counted wrong", file=sys.stderr)
    print(f"results: {opts.out}/results.json (+ results.md, results.csv, results.png, submission.json)")
    return 0
