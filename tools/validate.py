"""``egoforge validate FILE``: check a dataset row by row without modifying it; non-zero exit on errors."""

from __future__ import annotations

import json
import sys

from egoforge.tools.argtypes import non_negative_int

HELP = "check a dataset (LLaMA-Factory ShareGPT json/jsonl or EgoCross testbed) row by row; never modifies it"


def add_arguments(parser) -> None:
    parser.add_argument("file", help="dataset file (.json or .jsonl)")
    parser.add_argument("--media-dir", help="data root the media paths are relative to (default: the file's folder);"
                        " paths may not leave it. The EgoCross testbed's absolute /egocross_testbed/... paths resolve "
                        "under it (D holding egocross_testbed/, or that folder itself); without it, absolute paths "
                        "are used as they are")
    parser.add_argument("--format", default="auto", choices=["auto", "sharegpt", "egocross-testbed"])
    parser.add_argument("--answers", help="EgoCross answers file: also check each correct letter is an option")
    parser.add_argument("--no-decode", action="store_true", help="only check that media files exist")
    parser.add_argument("--json", dest="json_out", help="also write the issues as JSON to this path")
    parser.add_argument("--max-print", type=non_negative_int, default=50,
                        help="print at most this many issues (default 50)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args) -> int:
    """Exit 0 clean, 1 when the dataset has problems (listed), 2 when it cannot be read at all (one line)."""
    from tqdm.auto import tqdm

    from egoforge.data.atomic import atomic_write_json
    from egoforge.data.validate import validate_file

    def progress(rows):
        return tqdm(rows, desc=f"validating {args.file}", unit="row", disable=args.quiet, file=sys.stderr)

    issues = validate_file(args.file, media_dir=args.media_dir, fmt=args.format, answers=args.answers,
                           decode=not args.no_decode, progress=progress, raise_unreadable=True)
    errors = [i for i in issues if i.severity == "error"]
    for issue in issues[: args.max_print]:
        print(issue)
    if len(issues) > args.max_print:
        print(f"... {len(issues) - args.max_print} more")
    if args.json_out:
        atomic_write_json(args.json_out, [i.as_dict() for i in issues])
    print(json.dumps({"file": args.file, "errors": len(errors), "warnings": len(issues) - len(errors)}))
    return 1 if errors else 0
