"""``egoforge inspect DATA --out DIR``: render a dataset (and optionally its predictions) as an HTML report."""

from __future__ import annotations

import sys

from egoforge.tools.argtypes import non_negative_float, non_negative_int, positive_int

HELP = ("render a dataset (ShareGPT, EgoCross testbed, verl parquet) and optionally its predictions as a static "
        "HTML report: frames, questions, answers, predictions, filters, accuracy summary, validation issues")


def add_arguments(parser) -> None:
    parser.add_argument("data", help="dataset file: ShareGPT .json/.jsonl, EgoCross testbed .json, or verl .parquet")
    parser.add_argument("--out", required=True, help="report folder (index.html, thumbs/, summary.png); files it "
                        "did not write itself are never overwritten")
    parser.add_argument("--predictions", help="predictions.jsonl from `egoforge evaluate` ({id, prediction, ...})")
    parser.add_argument("--answers", help="EgoCross answers json (correct_option_letter) for a testbed")
    parser.add_argument("--media-dir", help="data root the media paths are relative to (default: the data file's "
                        "folder); paths may not leave it. The EgoCross testbed's /egocross_testbed/... paths resolve "
                        "under it (D holding egocross_testbed/, or that folder)")
    parser.add_argument("--format", default="auto", choices=["auto", "sharegpt", "egocross-testbed", "verl-parquet"])
    parser.add_argument("--issues", help="issues JSON written by `egoforge validate --json`, shown on their rows")
    parser.add_argument("--validate", action="store_true", help="run egoforge validate's checks now and show them")
    parser.add_argument("--fps", type=non_negative_float, default=0.5,
                        help="sampling rate of frame lists, for the timestamps (EgoCross: 0.5; its CholecTrack20 "
                        ".png clips and EgoSurgery are 1.0 regardless; 0: no timestamps)")
    parser.add_argument("--max-frames", type=positive_int, default=16,
                        help="frames shown per sample, spread evenly (16)")
    parser.add_argument("--page-size", type=non_negative_int, default=50, help="samples per page (0: all on one page)")
    parser.add_argument("--title", help="page title (default: the data file's name)")
    parser.add_argument("--label", default="this run", help="row name of these predictions in the summary table")
    parser.add_argument("--no-published", action="store_true", help="leave the seed's published rows out")
    parser.add_argument("--workers", type=positive_int,
                        help="threads making thumbnails (default: CPU count, at most 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(args) -> int:
    from tqdm.auto import tqdm

    from egoforge.inspect import build_report

    def progress(iterable, total, desc):
        return tqdm(iterable, total=total, desc=desc, unit="item", disable=args.quiet, file=sys.stderr)

    # a ReportError (bad input) is reported by egoforge.tools.cli: one line, exit 2
    built = build_report(
        args.data, args.out, predictions=args.predictions, answers=args.answers, media_dir=args.media_dir,
        fmt=args.format, issues_file=args.issues, validate=args.validate, fps=args.fps,
        max_frames=args.max_frames, page_size=args.page_size, title=args.title, label=args.label,
        published=not args.no_published, workers=args.workers, progress=progress)
    line = f"report: {built.path} ({built.samples} samples, {built.format}"
    if built.summary is not None:
        line += f", micro {built.summary.results.micro:.2f}, macro {built.summary.results.macro:.2f}"
    if built.rows_with_issues:
        line += f", {built.rows_with_issues} rows with issues"
    print(line + ")")
    return 0
