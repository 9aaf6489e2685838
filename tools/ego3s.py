"""``egoforge ego3s {convert,validate,demo-data}``: Ego3S data tools (Video-R1 json -> verl parquet)."""

from __future__ import annotations

import json
import sys

from egoforge.data.errors import INPUT_ERROR_EXIT
from egoforge.tools.argtypes import non_negative_int, positive_float, positive_int

HELP = ("Ego3S: validate Video-R1 json, convert it to verl parquet (frame budget 2 fps, 4-16 frames), plan a verl "
        "recipe's schedule and effective values")


def _budget_arguments(parser) -> None:
    parser.add_argument("--fps", type=positive_float, default=2.0, help="frame sampling rate (paper: 2)")
    parser.add_argument("--min-frames", type=positive_int, default=4, help="(paper: 4)")
    parser.add_argument("--max-frames", type=positive_int, default=16, help="(paper: 16)")
    parser.add_argument("--max-pixels", type=positive_int, default=128 * 28 * 28,
                        help="per video frame (paper: 128*28*28)")
    parser.add_argument("--min-pixels", type=positive_int, default=3136)
    parser.add_argument("--image-max-pixels", type=positive_int, default=401408,
                        help="for image samples (paper: 401408)")
    parser.add_argument("--frames-fps", type=positive_float, default=2.0,
                        help="sampling rate of folders of frames (they carry no timing; default 2)")


def budget_from(args):
    from egoforge.ego3s.media import FrameBudget

    return FrameBudget(fps=args.fps, min_frames=args.min_frames, max_frames=args.max_frames,
                       max_pixels=args.max_pixels, min_pixels=args.min_pixels,
                       image_max_pixels=args.image_max_pixels, frames_fps=args.frames_fps)


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="ego3s_command", metavar="ACTION", required=True)
    convert = sub.add_parser("convert", help="Video-R1 json/jsonl -> verl parquet (prompt, data_source, "
                             "reward_model.ground_truth, extra_info, videos/images)")
    convert.add_argument("source", help="Video-R1 json or jsonl (never modified)")
    convert.add_argument("--out", required=True, help="output .parquet")
    convert.add_argument("--media-dir", help="data root of the media paths (default: the source's folder)")
    convert.add_argument("--video-mode", choices=["file", "frames"], default="file",
                         help="file: keep video paths, sampled at rollout by egoforge's dataset class (default); "
                         "frames: extract the sampled frames once into OUT.frames/ (works with verl's stock dataset)")
    convert.add_argument("--no-irl", action="store_true", help="plain Video-R1 prompt without the <object> list")
    convert.add_argument("--data-source", default="ego3s", help="data_source for rows that have none")
    convert.add_argument("--skip-invalid", action="store_true", help="drop rows with problems instead of refusing")
    convert.add_argument("--no-decode", action="store_true", help="only check that media exist (faster)")
    convert.add_argument("--quiet", action="store_true")
    _budget_arguments(convert)
    validate = sub.add_parser("validate", help="check a Video-R1 file row by row (file, row, field); exit 1 on "
                              "errors")
    validate.add_argument("source")
    validate.add_argument("--media-dir")
    validate.add_argument("--no-decode", action="store_true")
    validate.add_argument("--max-print", type=non_negative_int, default=50)
    plan = sub.add_parser("plan", help="compose a verl recipe with verl's Hydra config and print the values verl "
                          "will use and the schedule (steps, ECR checks, saves, validations, lr); exit 1 when a key "
                          "is never read or ECR would never fire")
    plan.add_argument("recipe", help="shell recipe, e.g. recipes/ego3s_grpo_qwen2_5_vl_7b.sh")
    plan.add_argument("--train-rows", type=positive_int, help="rows of the training files (default: counted in them)")
    plan.add_argument("overrides", nargs="*", help="extra Hydra overrides (key=value), as given to the recipe")
    sft = sub.add_parser("sft-data", help="Video-R1 CoT json (rows with `process`) -> LLaMA-Factory sharegpt json for "
                         "the CoT-SFT warm start (dataset ego3s_cot_sft)")
    sft.add_argument("source")
    sft.add_argument("--out", required=True, help="output .json (data/ego3s/cot_sft.json for dataset_info)")
    sft.add_argument("--media-dir", help="data root of the media paths (default: the source's folder)")
    sft.add_argument("--no-decode", action="store_true", help="only check that media exist (faster)")
    demo = sub.add_parser("demo-data", help="write generated Video-R1 samples (egocentric clips, ROIs) for a dry run")
    demo.add_argument("--out", required=True)
    demo.add_argument("-n", type=positive_int, default=20)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--first-id", type=non_negative_int, default=1)


def _print_issues(issues, limit: int) -> None:
    for issue in issues[:limit]:
        print(issue, file=sys.stderr)
    if len(issues) > limit:
        print(f"... {len(issues) - limit} more", file=sys.stderr)


def _plan(args) -> int:
    from egoforge.verl.plan import PlanError, compose_recipe, plan

    try:
        result = plan(compose_recipe(args.recipe, args.overrides), args.train_rows)
    except PlanError as exc:  # every problem of the recipe, one per line; other input errors go to the CLI
        for problem in exc.problems:
            print(f"egoforge ego3s plan: {args.recipe}: {problem}", file=sys.stderr)
        return INPUT_ERROR_EXIT
    sched = result["schedule"]
    print(json.dumps(result, indent=1, default=str))
    print(f"{sched['total_steps']} steps ({sched['steps_per_epoch']}/epoch), {len(sched['ecr_checks'])} ECR checks, "
          f"{len(sched['saves'])} saves, {len(sched['validations'])} validations", file=sys.stderr)
    return 0


def main(args) -> int:
    if args.ego3s_command == "plan":
        return _plan(args)
    if args.ego3s_command == "sft-data":
        from egoforge.ego3s.convert import ConversionError
        from egoforge.ego3s.sft import convert_sft_file

        try:
            out = convert_sft_file(args.source, args.out, args.media_dir, decode=not args.no_decode)
        except ConversionError as exc:
            _print_issues(exc.issues, 50)
            print(f"egoforge ego3s sft-data: {len(exc.issues)} problem(s); nothing written", file=sys.stderr)
            return INPUT_ERROR_EXIT
        print(json.dumps({"out": str(out)}))
        return 0
    if args.ego3s_command == "validate":
        from pathlib import Path

        from egoforge.ego3s.schema import load_video_r1, validate_rows

        rows = load_video_r1(args.source)  # an unreadable file: one line from the CLI, exit 2
        root = Path(args.media_dir) if args.media_dir else Path(args.source).parent
        issues = validate_rows(rows, args.source, root, decode=not args.no_decode)
        _print_issues(issues, args.max_print)
        print(json.dumps({"file": args.source, "rows": len(rows), "errors": len(issues)}))
        return 1 if issues else 0
    if args.ego3s_command == "demo-data":
        from egoforge.testing.ego3s_data import make_video_r1_dataset

        path = make_video_r1_dataset(args.out, n=args.n, seed=args.seed, first_id=args.first_id)
        print(path)
        return 0
    from tqdm.auto import tqdm

    from egoforge.ego3s.convert import ConversionError, ConvertOptions, convert_file

    opts = ConvertOptions(media_root=args.media_dir, video_mode=args.video_mode, irl=not args.no_irl,
                          budget=budget_from(args), default_source=args.data_source,
                          skip_invalid=args.skip_invalid, decode=not args.no_decode)
    try:
        out, skipped = convert_file(args.source, args.out, opts,
                                    progress=lambda rows: tqdm(rows, desc="converting", unit="row",
                                                               disable=args.quiet, file=sys.stderr))
    except ConversionError as exc:  # every bad row, one per line; other input errors go to the CLI (exit 2)
        _print_issues(exc.issues, 50)
        print(f"egoforge ego3s convert: {len(exc.issues)} problem(s); nothing written (--skip-invalid drops "
              "the bad rows)", file=sys.stderr)
        return INPUT_ERROR_EXIT
    if skipped:
        _print_issues(skipped, 50)
    print(json.dumps({"out": str(out), "skipped_rows": len({i.row for i in skipped})}))
    return 0
