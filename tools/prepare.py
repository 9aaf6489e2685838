"""``egoforge prepare FILE --out CACHE``: pre-resize frames to a recipe's pixel budget (source untouched)."""

from __future__ import annotations

import argparse

from egoforge.tools.argtypes import non_negative_int, positive_int

HELP = "pre-resize a dataset's frames to a pixel budget into a separate cache folder (then set media_dir to it)"


def add_arguments(parser) -> None:
    parser.add_argument("file", help="dataset json/jsonl (ShareGPT or EgoCross testbed)")
    parser.add_argument("--out", required=True, help="cache folder (mirrors the data root's relative paths)")
    parser.add_argument("--media-dir", help="data root of the media paths (default: the file's folder); the EgoCross "
                        "testbed's /egocross_testbed/... paths resolve under it, and the cache mirrors it")
    parser.add_argument("--recipe", help="read image_max_pixels / image_min_pixels from this LLaMA-Factory recipe")
    parser.add_argument("--max-pixels", type=positive_int, help="per-frame pixel budget (overrides the recipe)")
    parser.add_argument("--min-pixels", type=non_negative_int, help="per-frame minimum (overrides the recipe)")
    parser.add_argument("--quality", type=_jpeg_quality, default=95, help="JPEG quality of re-encoded frames (1-100)")
    parser.add_argument("--quiet", action="store_true")


def _jpeg_quality(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 100], got {text}")
    return value


def _recipe_budget(path: str) -> tuple[int | None, int | None]:
    """``image_max_pixels`` / ``image_min_pixels`` of a LLaMA-Factory recipe, type-checked."""
    import yaml

    from egoforge.data.errors import InputError

    with open(path, encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle) or {}
    if not isinstance(recipe, dict):
        raise InputError(path, f"expected a YAML mapping of training arguments, got {type(recipe).__name__}")
    values = []
    for key, minimum in (("image_max_pixels", 1), ("image_min_pixels", 0)):
        value = recipe.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise InputError(path, f"must be an integer >= {minimum}, got {value!r}", field=key)
        values.append(value)
    return values[0], values[1]


def main(args) -> int:
    from tqdm.auto import tqdm

    from egoforge.data.errors import InputError
    from egoforge.data.prepare import prepare_frames

    recipe_max, recipe_min = _recipe_budget(args.recipe) if args.recipe else (None, None)
    max_pixels = args.max_pixels or recipe_max
    min_pixels = args.min_pixels if args.min_pixels is not None else (recipe_min or 0)
    if not max_pixels:
        raise InputError(args.recipe, "no image_max_pixels", fix="give --max-pixels or a --recipe with "
                         "image_max_pixels")
    if min_pixels > max_pixels:
        raise InputError(None, f"min pixels {min_pixels} is larger than max pixels {max_pixels}",
                         fix="swap or fix the two values")
    # input errors (exit 2) and failures go through egoforge.tools.cli, one line each
    stats = prepare_frames(args.file, args.out, int(max_pixels), int(min_pixels), media_dir=args.media_dir,
                           quality=args.quality,
                           progress=lambda p: tqdm(p, desc="preparing frames", unit="frame", disable=args.quiet))
    print(f"written {stats.written}, already prepared {stats.skipped}, within budget (copied) "
          f"{stats.unchanged_size}; train with media_dir: {args.out}")
    return 0
