"""``egoforge prepare FILE --out CACHE``: pre-resize frames to a recipe's pixel budget (source untouched)."""

from __future__ import annotations

import sys

HELP = "pre-resize a dataset's frames to a pixel budget into a separate cache folder (then set media_dir to it)"


def add_arguments(parser) -> None:
    parser.add_argument("file", help="dataset json/jsonl (ShareGPT or EgoCross testbed)")
    parser.add_argument("--out", required=True, help="cache folder (mirrors the data root's relative paths)")
    parser.add_argument("--media-dir", help="data root of the media paths (default: the file's folder); the EgoCross "
                        "testbed's /egocross_testbed/... paths resolve under it, and the cache mirrors it")
    parser.add_argument("--recipe", help="read image_max_pixels / image_min_pixels from this LLaMA-Factory recipe")
    parser.add_argument("--max-pixels", type=int, help="per-frame pixel budget (overrides the recipe)")
    parser.add_argument("--min-pixels", type=int, help="per-frame minimum (overrides the recipe)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of re-encoded frames")
    parser.add_argument("--quiet", action="store_true")


def main(args) -> int:
    import yaml
    from tqdm.auto import tqdm

    from egoforge.data.prepare import prepare_frames

    recipe = {}
    if args.recipe:
        with open(args.recipe, encoding="utf-8") as handle:
            recipe = yaml.safe_load(handle) or {}
    max_pixels = args.max_pixels or recipe.get("image_max_pixels")
    min_pixels = args.min_pixels if args.min_pixels is not None else recipe.get("image_min_pixels", 0)
    if not max_pixels:
        print("egoforge prepare: give --max-pixels or a --recipe with image_max_pixels", file=sys.stderr)
        return 2
    try:
        stats = prepare_frames(args.file, args.out, int(max_pixels), int(min_pixels), media_dir=args.media_dir,
                               quality=args.quality,
                               progress=lambda p: tqdm(p, desc="preparing frames", unit="frame", disable=args.quiet))
    except (ValueError, OSError) as exc:
        print(f"egoforge prepare: {exc}", file=sys.stderr)
        return 1
    print(f"written {stats.written}, already prepared {stats.skipped}, within budget (copied) "
          f"{stats.unchanged_size}; train with media_dir: {args.out}")
    return 0
