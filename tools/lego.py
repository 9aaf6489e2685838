"""``egoforge lego``: LEGO data conversion, stage-A feature extraction, action-frame sampling and metrics.

Training itself runs through the upstream commands: ``llamafactory-cli train recipes/lego_vllm_*.yaml`` (stage A)
and ``egoforge train recipes/lego_ldm_*.yaml`` (stage B).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from egoforge.data.errors import INPUT_ERROR_EXIT
from egoforge.tools.argtypes import non_negative_int, positive_float, positive_int

HELP = "LEGO action-frame generation: convert data, extract VLLM features, sample frames, compute metrics"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="lego_command", metavar="STEP", required=True)

    p = sub.add_parser("convert", help="LEGO json / GPT-curation files -> ShareGPT (stage A) and the LDM index")
    p.add_argument("file", nargs="?", help="one LEGO json or GPT-curation file (omit with --root)")
    p.add_argument("--root", help="the download root (EgoGen/, curation_from_gpt/): convert everything found")
    p.add_argument("--to", choices=["sharegpt", "ldm"], help="output kind for FILE")
    p.add_argument("--dataset", default="ego4d", choices=["ego4d", "epickitchen"])
    p.add_argument("--frames-dir", help="the split's frame folder FILE's paths are relative to")
    p.add_argument("--media-root", help="common root the outputs' paths are made relative to (LLaMA-Factory "
                   "media_dir; default: <root>/EgoGen)")
    p.add_argument("--out", help="output file for FILE, or output folder for --root (default <root>/egoforge)")
    p.add_argument("--prompt-key", default="llava_forecast_finetune",
                   help="LEGO field used as the text prompt / tuning answer (default llava_forecast_finetune)")
    p.add_argument("--fallback-to-action", action="store_true", help="use `action` where the prompt key is missing")
    p.add_argument("--no-check-frames", action="store_true", help="do not require every frame to exist")

    p = sub.add_parser("validate", help="check a LEGO json or GPT-curation file row by row (never modifies it)")
    p.add_argument("file")
    p.add_argument("--frames-dir", help="frame folder the paths are relative to (default: the file's folder)")
    p.add_argument("--no-decode", action="store_true", help="only check that frames exist")
    p.add_argument("--prompt-key", default="llava_forecast_finetune",
                   help="the field `lego convert` will take the prompt from: rows without it are errors")
    p.add_argument("--fallback-to-action", action="store_true",
                   help="as `convert --fallback-to-action`: rows without the prompt key are fine")

    p = sub.add_parser("features", help="stage-A VLLM: descriptions, image features, text hidden states (shards)")
    p.add_argument("--model", required=True, help="tuned VLLM folder (full checkpoint or LoRA adapter)")
    p.add_argument("--index", required=True, help="LDM index jsonl (egoforge lego convert --to ldm)")
    p.add_argument("--media-root", required=True, help="root of the index's frame paths")
    p.add_argument("--out", required=True, help="feature folder (resumable; several chunks may share it)")
    p.add_argument("--num-chunks", type=positive_int, default=1)
    p.add_argument("--chunk", type=non_negative_int, default=0,
                   help="0-based chunk this process extracts (one per GPU)")
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.add_argument("--max-new-tokens", type=positive_int, default=1024)
    p.add_argument("--temperature", type=positive_float, default=0.2, help="sampling temperature (the paper: 0.2)")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--recipe", help="the stage-A recipe the model was tuned with (recipes/lego_vllm_*.yaml): frames "
                   "get its pixel budget (image_min_pixels / image_max_pixels) and prompts its LLaMA-Factory "
                   "template (system prompt, turn format), as in training")
    p.add_argument("--max-pixels", type=positive_int, help="per-frame pixel budget (fixes the number of visual "
                   "tokens); default: the recipe's image_max_pixels, else LLaMA-Factory's default")
    p.add_argument("--min-pixels", type=positive_int,
                   help="default: the recipe's image_min_pixels, else LLaMA-Factory's")
    p.add_argument("--shard-size", type=positive_int, default=256)
    p.add_argument("--save-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--limit", type=positive_int, help="only the first N rows")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("sample", help="generate action frames (Euler ancestral, dual classifier-free guidance)")
    p.add_argument("--model", required=True, help="LDM run folder or checkpoint-N folder")
    p.add_argument("--no-ema", action="store_true", help="use the raw instead of the EMA weights")
    p.add_argument("--index", required=True, help="LDM index jsonl of the frames to generate (e.g. the val split)")
    p.add_argument("--media-root", required=True)
    p.add_argument("--features", help="feature folder of this index (egoforge lego features)")
    p.add_argument("--npy-image-dir", help="official release: vllm_image_feature/<model>/<split>")
    p.add_argument("--npy-text-dir", help="official release: vllm_text_feature/<model>/<split>")
    p.add_argument("--prompt", default="prompt", choices=["prompt", "action", "description"])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=positive_int, default=100)
    p.add_argument("--text-scale", type=float, default=7.5)
    p.add_argument("--image-scale", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--resolution", type=positive_int, help="default: the training resolution")
    p.add_argument("--protocol", default="official", choices=["official", "egoforge"],
                   help="how frames are saved: official (default; metrics/inference.py: bicubic resize to the clip's "
                   "native aspect, min-max stretch, PIL's default JPEG quality) or egoforge (clamped, square, "
                   "quality 95)")
    p.add_argument("--metadata", help="the download's <dataset>_metadata.json with each clip's height and width "
                   "(official protocol; default: beside the media root's folder)")
    p.add_argument("--device", help="default: cuda when available")
    p.add_argument("--fp16", action="store_true", help="half-precision weights (GPU)")
    p.add_argument("--limit", type=positive_int, help="only the first N rows")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("metrics", help="EgoVLP / EgoVLP+ / CLIP / PSNR / LPIPS / FID of generated vs ground-truth "
                       "frames")
    p.add_argument("--generated", required=True, help="the `egoforge lego sample` output folder")
    p.add_argument("--index", required=True)
    p.add_argument("--media-root", required=True)
    p.add_argument("--gt-dir", help="ground-truth folder <clip>/<action>/<frame> (EgoGen/.../val_gt_for_metric); "
                   "default: each row's target frame")
    p.add_argument("--out", required=True)
    p.add_argument("--metrics", help="comma-separated subset of egovlp,egovlp_plus,clip,psnr,lpips,fid (default: "
                   "clip,psnr,lpips,fid, and egovlp,egovlp_plus with --egovlp-checkpoint)")
    p.add_argument("--egovlp-checkpoint", help="the released EgoVLP weights: egovlp.pth (Ego4D) or epic_mir_plus.pth "
                   "(Epic-Kitchens), from LEGO's scripts/download_metric_weights.sh")
    p.add_argument("--egovlp-dataset", choices=("ego4d", "epickitchen"),
                   help="EgoVLP clip length as LEGO's egovlp_args (ego4d: 4 frames, epickitchen: 16); default: from "
                   "the index rows' source folders")
    p.add_argument("--clip-model", help="local transformers CLIP folder (the paper: ViT-L/14)")
    p.add_argument("--fid-weights", help="torch-fidelity Inception weights (default: torch's hub cache)")
    p.add_argument("--lpips-nets", default="alex,vgg,squeeze")
    p.add_argument("--lpips-as-official", action="store_true",
                   help="feed [0,1] images to LPIPS unscaled, as the official script did")
    p.add_argument("--skip-missing", action="store_true", help="compute only the metrics whose weights exist")
    p.add_argument("--name", default="egoforge LEGO", help="row name in the results table")
    p.add_argument("--limit", type=positive_int)
    p.add_argument("--quiet", action="store_true")


def _progress(desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return lambda items: tqdm(items, desc=desc, disable=quiet, file=sys.stderr)


# --- convert / validate ------------------------------------------------------------------------------------------


def _find_json(root: Path, dataset: str, split: str) -> Path | None:
    for candidate in (root / "EgoGen" / f"{dataset}_{split}.json", root / f"{dataset}_{split}.json"):
        if candidate.is_file():
            return candidate
    return None


def convert_root(root: Path, out: Path, media_root: Path, prompt_key: str, fallback: bool, check: bool) -> list:
    from egoforge.lego.actions import DATASETS, FRAME_FOLDERS
    from egoforge.lego.convert import convert_file

    done = []
    for dataset in DATASETS:
        frames = {split: media_root / FRAME_FOLDERS[dataset] / split for split in ("train", "val")}
        for split in ("train", "val"):
            source = _find_json(root, dataset, split)
            if source is None:
                continue
            path, n = convert_file(source, "ldm", frames[split], media_root, out / f"ldm_{dataset}_{split}.jsonl",
                                   dataset, prompt_key, fallback, check)
            done.append({"source": str(source), "out": str(path), "rows": n})
        curation = root / "curation_from_gpt" / f"{dataset}_for_tuning_forecasting.json"
        train_json = _find_json(root, dataset, "train")
        sft_source = curation if curation.is_file() else train_json
        if sft_source is not None:
            path, n = convert_file(sft_source, "sharegpt", frames["train"], media_root,
                                   out / f"lego_{dataset}_sft.json", dataset, prompt_key, fallback, check)
            done.append({"source": str(sft_source), "out": str(path), "rows": n})
    return done


def _convert(args) -> int:
    from egoforge.data.errors import InputError
    from egoforge.lego.convert import convert_file

    # input errors (DataFormatError, UnsafePathError ...) go through to the CLI: one line, exit 2
    if args.root:
        root = Path(args.root)
        media_root = Path(args.media_root) if args.media_root else root / "EgoGen"
        out = Path(args.out) if args.out else root / "egoforge"
        done = convert_root(root, out, media_root, args.prompt_key, args.fallback_to_action,
                            not args.no_check_frames)
        if not done:
            raise InputError(root, "nothing found to convert", fix="expected EgoGen/<dataset>_<split>.json and "
                             "curation_from_gpt/")
    else:
        if not (args.file and args.to and args.frames_dir and args.out):
            print("egoforge lego convert: FILE needs --to, --frames-dir and --out (or use --root)",
                  file=sys.stderr)
            return 2
        path, n = convert_file(args.file, args.to, args.frames_dir, args.media_root or args.frames_dir,
                               args.out, args.dataset, args.prompt_key, args.fallback_to_action,
                               not args.no_check_frames)
        done = [{"source": args.file, "out": str(path), "rows": n}]
    for item in done:
        print(json.dumps(item))
    return 0


def _validate(args) -> int:
    from egoforge.lego.formats import detect_kind, validate_lego_file

    detect_kind(args.file)  # a missing / unreadable / non-JSON file: one line and exit 2, not "1 problem found"
    issues = validate_lego_file(args.file, args.frames_dir, decode=not args.no_decode,
                                prompt_key=None if args.fallback_to_action else args.prompt_key)
    for issue in issues[:50]:
        print(issue)
    errors = sum(i.severity == "error" for i in issues)
    print(json.dumps({"file": args.file, "errors": errors, "warnings": len(issues) - errors}))
    return 1 if errors else 0


# --- features / sample / metrics ---------------------------------------------------------------------------------


def _features(args) -> int:
    from egoforge.data.models import resolve_model_path
    from egoforge.lego.features import ExtractionSettings, extract_features, stage_a_pixel_budget, stage_a_template

    model = resolve_model_path(args.model, what="--model")
    rows = index_rows(args.index, args.limit)
    min_pixels, max_pixels = stage_a_pixel_budget(args.recipe)
    template = stage_a_template(args.recipe) if args.recipe else None
    min_pixels, max_pixels = args.min_pixels or min_pixels, args.max_pixels or max_pixels
    source = args.recipe or "LLaMA-Factory's defaults (pass --recipe with the stage-A recipe if it set others)"
    if not args.quiet:
        print(f"frames resized into [{min_pixels}, {max_pixels}] pixels as in stage-A training ({source})",
              file=sys.stderr)
    if not args.quiet:
        print(f"prompts in the format of LLaMA-Factory's {template!r} template, as stage A trained" if template
              else "prompts from the model's chat template (pass --recipe to use the training template)",
              file=sys.stderr)
    settings = ExtractionSettings(max_new_tokens=args.max_new_tokens, do_sample=not args.greedy,
                                  temperature=args.temperature, seed=args.seed, min_pixels=min_pixels,
                                  max_pixels=max_pixels, batch_size=args.batch_size, shard_size=args.shard_size,
                                  save_dtype=args.save_dtype, template=template)
    try:
        progress = _progress(f"VLLM features (chunk {args.chunk})", args.quiet)
        stats = extract_features(model, rows, args.media_root, args.out, settings, args.chunk,
                                 args.num_chunks, progress=progress)
    except _input_errors() as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"egoforge lego features: {message}", file=sys.stderr)
        return INPUT_ERROR_EXIT
    print(json.dumps({"out": args.out, **stats}))
    return 0


def index_rows(index: str, limit: int | None) -> list[dict]:
    """The LDM index's rows (the first ``limit``); an index without rows is an error, not a run over nothing that
    reports n=0 and exits 0."""
    from egoforge.data.errors import InputError
    from egoforge.lego.convert import read_index

    rows = read_index(index)[:limit]
    if not rows:
        raise InputError(index, "the index has no rows", fix="build it with `egoforge lego convert --to ldm`")
    return rows


def _input_errors():
    """The exceptions a bad input raises (missing or unreadable files, bad rows, mismatched models); ``features``,
    ``sample`` and ``metrics`` report them as one line instead of a traceback, with the CLI's input-error exit code
    (``INPUT_ERROR_EXIT``, 2)."""
    from egoforge.data.jsonio import DataFormatError
    from egoforge.data.paths import UnsafePathError
    from egoforge.lego.config import LegoSetupError
    from egoforge.train.recipe import RecipeError

    # OSError covers missing and undecodable frames (PIL's UnidentifiedImageError is one).
    return (DataFormatError, UnsafePathError, LegoSetupError, RecipeError, ValueError, KeyError, OSError)


def _one_line_errors(step: str, run, args) -> int:
    """Run ``egoforge lego STEP``; a bad input is one line (no traceback) and the CLI's input-error exit code."""
    try:
        return run(args)
    except _input_errors() as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"egoforge lego {step}: {message}", file=sys.stderr)
        return INPUT_ERROR_EXIT


def _sample(args) -> int:
    return _one_line_errors("sample", _run_sample, args)


def _run_sample(args) -> int:
    import torch

    from egoforge.data.atomic import atomic_write_json
    from egoforge.data.models import resolve_model_path
    from egoforge.lego.config import FeaturesConfig
    from egoforge.lego.dataset import open_features
    from egoforge.lego.model import LegoLDM
    from egoforge.lego.sampling import SamplingSettings, default_metadata_path, generate_index, load_clip_sizes

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = index_rows(args.index, args.limit)
    model, info = LegoLDM.load(resolve_model_path(args.model, online=False, what="--model"), use_ema=not args.no_ema,
                               device=device,
                               dtype=torch.float16 if args.fp16 else torch.float32)
    features = None
    if model.conditioner is not None or args.prompt == "description":
        if args.features:
            features = open_features(FeaturesConfig(format="shards", dir=args.features))
        elif args.npy_image_dir and args.npy_text_dir:
            features = open_features(FeaturesConfig(format="npy", image_dir=args.npy_image_dir,
                                                    text_dir=args.npy_text_dir))
        else:
            print("egoforge lego sample: this model is conditioned on VLLM features: pass --features DIR or "
                  "--npy-image-dir/--npy-text-dir", file=sys.stderr)
            return 2
        # every row's features before the first image is generated, not a crash mid-run
        absent = [r["feature_key"] for r in rows if r["feature_key"] not in features]
        if absent:
            print(f"egoforge lego sample: no features for {len(absent)} of {len(rows)} rows of {args.index} "
                  f"(first: {absent[0]!r}); extract them with `egoforge lego features` on this index",
                  file=sys.stderr)
            return INPUT_ERROR_EXIT
    settings = SamplingSettings(steps=args.steps, text_scale=args.text_scale, image_scale=args.image_scale,
                                seed=args.seed, batch_size=args.batch_size, protocol=args.protocol)
    clip_sizes = None
    if args.protocol == "official":
        datasets = sorted({r.get("dataset", "ego4d") for r in rows}) or ["ego4d"]
        paths = [Path(args.metadata)] if args.metadata else [default_metadata_path(args.media_root, d)
                                                              for d in datasets]
        clip_sizes = {}
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no clip metadata; the official protocol needs the download's "
                                        "<dataset>_metadata.json (pass --metadata FILE), or use --protocol egoforge")
            clip_sizes.update(load_clip_sizes(path))
    resolution = args.resolution or info.get("resolution", 256)
    stats = generate_index(model, rows, args.media_root, args.out, features, resolution, settings, args.prompt,
                           progress=_progress("sampling", args.quiet), clip_sizes=clip_sizes)
    atomic_write_json(Path(args.out) / "sampling.json", {"model": args.model, "ema": not args.no_ema,
                                                         "resolution": resolution, **vars(settings), **stats})
    write_examples(rows[:8], args.media_root, args.out)
    print(json.dumps({"out": args.out, **stats}))
    return 0


def write_examples(rows: list[dict], media_root: str, out: str) -> None:
    """``examples.png``: source | generated | ground truth for a few rows, to look at."""
    import io

    from PIL import Image

    from egoforge.data.atomic import atomic_write_bytes
    from egoforge.data.paths import resolve_under
    from egoforge.lego.sampling import output_name

    cell = 128
    grid = Image.new("RGB", (3 * cell + 8, len(rows) * (cell + 4)), (255, 255, 255))
    for i, row in enumerate(rows):
        paths = (resolve_under(media_root, row["source"]), Path(out) / output_name(row),
                 resolve_under(media_root, row["target"]))
        for j, path in enumerate(paths):
            with Image.open(path) as img:
                grid.paste(img.convert("RGB").resize((cell, cell)), (j * (cell + 4), i * (cell + 4)))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    atomic_write_bytes(Path(out) / "examples.png", buf.getvalue())


def _metrics(args) -> int:
    return _one_line_errors("metrics", _run_metrics, args)


def _run_metrics(args) -> int:
    from egoforge.data.atomic import atomic_write_json, atomic_write_text
    from egoforge.lego.metrics import (
        ALL_METRICS,
        EGOVLP_METRICS,
        LPIPS_NETS,
        METRICS,
        PAPER_COLUMNS,
        MetricWeights,
        egovlp_dataset_of,
        evaluate_pairs,
        missing_weights,
        pairs_from_index,
        results_markdown,
    )

    requested = args.metrics or ",".join(METRICS + (EGOVLP_METRICS if args.egovlp_checkpoint else ()))
    metrics = [m.strip() for m in requested.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown or not metrics:
        raise ValueError(f"--metrics {requested!r}: unknown {unknown}; choose from {', '.join(ALL_METRICS)}")
    nets = [n.strip() for n in args.lpips_nets.split(",") if n.strip()]
    if any(n not in LPIPS_NETS for n in nets):
        raise ValueError(f"--lpips-nets {args.lpips_nets!r}: choose from {', '.join(LPIPS_NETS)}")
    weights = MetricWeights(clip_model=args.clip_model, fid_weights=args.fid_weights,
                            lpips_nets=tuple(n.strip() for n in args.lpips_nets.split(",") if n.strip()),
                            egovlp_checkpoint=args.egovlp_checkpoint, egovlp_dataset=args.egovlp_dataset)
    if args.skip_missing:
        missing = missing_weights(metrics, weights)
        for line in missing:
            print(f"skipping (weights missing): {line}", file=sys.stderr)
        absent = {line.split(":")[0] for line in missing}
        weights.lpips_nets = tuple(n for n in weights.lpips_nets if f"lpips-{n}" not in absent)
        metrics = [m for m in metrics if m not in absent and not (m == "lpips" and not weights.lpips_nets)]
    rows = index_rows(args.index, args.limit)
    if set(EGOVLP_METRICS) & set(metrics) and weights.egovlp_dataset is None:
        weights.egovlp_dataset = egovlp_dataset_of(rows)
    # a missing weights file (MissingWeights) is a missing input: one line, exit 2
    pairs = pairs_from_index(rows, args.generated, args.media_root, args.gt_dir, with_source="egovlp_plus" in metrics)
    result = evaluate_pairs(pairs, metrics, weights, args.lpips_as_official, progress=_progress("metrics", args.quiet))
    out = Path(args.out)
    table = {args.name: result.paper_row(weights.lpips_nets[0] if weights.lpips_nets else "alex")}
    atomic_write_json(out / "results.json", {"n": result.n, "metrics": result.values, "table": table,
                                             "lpips_as_official": args.lpips_as_official,
                                             "egovlp_dataset": weights.egovlp_dataset if set(EGOVLP_METRICS)
                                             & set(metrics) else None})
    from egoforge.eval.report import csv_table

    atomic_write_text(out / "results.csv", csv_table(table, list(PAPER_COLUMNS)))
    atomic_write_text(out / "per_sample.jsonl", "".join(json.dumps(r) + "\n" for r in result.per_sample))
    egovlp_note = ("EgoVLP / EgoVLP+: " + weights.egovlp_checkpoint + f" ({weights.egovlp_dataset} clips). "
                   if set(EGOVLP_METRICS) & set(metrics) else
                   "EgoVLP / EgoVLP+ (the paper's main metric) not computed: pass --egovlp-checkpoint (egovlp.pth "
                   "or epic_mir_plus.pth from LEGO's scripts/download_metric_weights.sh). ")
    note = (egovlp_note + "BLIP-B / BLIP-L are not computed by egoforge (they need the BLIP captioners "
            "model_base_caption_capfilt_large.pth / model_large_caption.pth, https://huggingface.co/bolinlai/"
            "LEGO-Metrics, and the official metrics/all_metrics_in_one.py). LPIPS column: "
            + (weights.lpips_nets[0] if weights.lpips_nets else "-") + ".\n")
    atomic_write_text(out / "results.md", "# LEGO action-frame metrics\n\n" + results_markdown(table) + "\n" + note)
    print(results_markdown(table))
    print(json.dumps({"n": result.n, **result.values}))
    return 0


def main(args) -> int:
    return {"convert": _convert, "validate": _validate, "features": _features, "sample": _sample,
            "metrics": _metrics}[args.lego_command](args)
