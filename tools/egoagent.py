"""``egoforge egoagent ...``: EgoAgent data preparation, evaluation and export.

    egoforge egoagent synth --out runs/egoagent_demo                            # offline demo data
    egoforge egoagent frames data/WTour/*.mp4 --out data/wtour_frames          # 1 frame per second
    egoforge egoagent undistort --takes-root data/egoexo4d_v2/takes --out data/egoexo4d/processed_data
    egoforge egoagent poses --root data/egoexo4d_v2 --out data/egoexo4d_body_pose
    egoforge egoagent knn --model saves/egoagent_stage1_300m/checkpoint-751036 --train IMAGENET/train --val ...
    egoforge egoagent world --checkpoint saves/egoagent_stage2_300m/checkpoint-N --pose-dir ... --frames-root ...
    egoforge egoagent export --checkpoint saves/egoagent_stage1_300m/checkpoint-N --out hf_models/egoagent_300m

Training itself is ``egoforge train recipes/egoagent_*.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from egoforge.tools.argtypes import non_negative_int, positive_float, positive_int

HELP = "EgoAgent: demo data, frames, Ego-Exo4D undistortion and body poses, kNN / world-model evaluation, export"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="egoagent_command", metavar="STEP")

    synth = sub.add_parser("synth", help="offline demo data: walking-tour mp4s, Ego-Exo4D layout, ImageFolder")
    synth.add_argument("--out", required=True, help="writes <out>/wtour/*.mp4, <out>/egoexo4d/, <out>/cities/")
    synth.add_argument("--seconds", type=positive_int, default=30, help="length of each walking tour (default 30)")
    synth.add_argument("--seed", type=int, default=0)

    frames = sub.add_parser("frames", help="extract frames from walking-tour mp4s (one per second by default)")
    frames.add_argument("videos", nargs="+", help="mp4 files")
    frames.add_argument("--out", required=True, help="output folder: <out>/<video stem>/frame_<index>.jpg")
    frames.add_argument("--every", type=positive_int, default=None,
                        help="keep every N-th frame (default: the video's frame rate, i.e. one per second)")
    frames.add_argument("--max-side", type=positive_int, default=None,
                        help="downscale so the longer side is at most this")

    undistort = sub.add_parser("undistort", help="fisheye -> pinhole Ego-Exo4D Aria frames (needs projectaria_tools)")
    undistort.add_argument("--takes-root", required=True,
                           help="Ego-Exo4D takes/ folder (takes/<take_name>/: mp4 + VRS per take)")
    undistort.add_argument("--out", required=True, help="output: <out>/<take_uid>/<video stem>/frame_<index>.jpg")
    undistort.add_argument("--takes-json", default=None,
                           help="takes.json mapping take folders to take uids (default: beside --takes-root, "
                           "in it or its metadata/ folder)")
    undistort.add_argument("--takes", nargs="*", default=None, help="only these takes (uids or names)")
    undistort.add_argument("--size", type=positive_int, default=448, help="pinhole image size (default 448)")
    undistort.add_argument("--every", type=positive_int, default=5, help="keep every N-th frame (official: 5)")

    poses = sub.add_parser("poses", help="Ego-Exo4D body poses -> 100-frame json fragments (official layout)")
    poses.add_argument("--root", required=True, help="Ego-Exo4D root (metadata/, annotations/ego_pose/)")
    poses.add_argument("--out", required=True, help="output folder: <out>/<split>/<take>_<first>-<last>.json")
    poses.add_argument("--coord", default="camera", choices=["camera", "global", "first_frame", "aria"],
                       help="coordinate frame of the joints (default camera; 'aria' = first_frame)")
    poses.add_argument("--splits", nargs="+", default=["train", "val"])
    poses.add_argument("--manual-only", action="store_true", help="ignore the automatic (pseudo) labels")

    knn = sub.add_parser("knn", help="weighted kNN classification on CLS features over an ImageFolder dataset")
    knn.add_argument("--model", required=True, help="an HF export or a trainer checkpoint folder")
    knn.add_argument("--weights", default="teacher", choices=["teacher", "student"],
                     help="which network of a trainer checkpoint (default teacher)")
    knn.add_argument("--train", required=True, help="ImageFolder root of the labelled (train) images")
    knn.add_argument("--val", required=True, help="ImageFolder root of the evaluated images")
    knn.add_argument("--image-size", type=positive_int, default=None, help="default: the model's image_size")
    knn.add_argument("--k", type=positive_int, default=20)
    knn.add_argument("--temperature", type=positive_float, default=0.07)
    _common_eval(knn)

    world = sub.add_parser("world", help="future-state retrieval and 3D motion prediction (MPJPE) of a stage-2 model")
    world.add_argument("--checkpoint", required=True, help="a stage-2 trainer checkpoint folder")
    world.add_argument("--pose-dir", required=True, help="held-out pose fragments (e.g. .../val)")
    world.add_argument("--frames-root", required=True, help="undistorted frames root")
    world.add_argument("--takes-json", default=None,
                       help="the download's takes.json: also find frame folders named by take name")
    for name in ("history", "stride", "action-frames"):
        world.add_argument(f"--{name}", type=positive_int, default=None, help="default: the checkpoint's recipe")
    world.add_argument("--pose-scale", type=positive_float, default=None, help="default: the checkpoint's recipe")
    _common_eval(world)

    export = sub.add_parser("export", help="write a checkpoint's backbone in Hugging Face format")
    export.add_argument("--checkpoint", required=True, help="a trainer checkpoint folder")
    export.add_argument("--out", required=True)
    export.add_argument("--weights", default="teacher", choices=["teacher", "student"])


def _common_eval(parser) -> None:
    parser.add_argument("--out", required=True, help="folder for results.json and results.md")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--num-workers", type=non_negative_int, default=0)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's


def check_image_folder(root: str, flag: str) -> None:
    """An ImageFolder root with at least one class folder holding an image; an empty one would score n=0 (or
    chance) and exit 0."""
    from egoforge.data.errors import InputError

    path = Path(root)
    if not path.is_dir():
        raise InputError(root, "ImageFolder root not found" if not path.exists() else "is not a folder",
                         fix=f"{flag} needs <root>/<class>/<image>")
    classes = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if not any(f.suffix.lower() in IMAGE_SUFFIXES for d in classes for f in d.rglob("*") if f.is_file()):
        raise InputError(root, f"no images ({len(classes)} class folders, none with an image)",
                         fix=f"{flag} needs <root>/<class>/<image>")


def _device(value: str | None) -> str:
    import torch

    return value or ("cuda" if torch.cuda.is_available() else "cpu")


def _write_results(out: str, title: str, results: dict, rows: dict[str, dict], columns: list[str]) -> None:
    from egoforge.data.atomic import atomic_write_json, atomic_write_text
    from egoforge.eval.report import markdown_table

    atomic_write_json(Path(out) / "results.json", results)
    atomic_write_text(Path(out) / "results.md", f"# {title}\n\n" + markdown_table(rows, columns, "model"))
    print(markdown_table(rows, columns, "model"))


def _synth(args) -> int:
    from egoforge.testing.egoagent_data import make_city_imagefolder, make_egoexo, make_walking_tours

    out = Path(args.out)
    videos = make_walking_tours(out / "wtour", seconds=args.seconds, seed=args.seed)
    layout = make_egoexo(out / "egoexo4d", train_takes=8, val_takes=3, frames=90, seed=args.seed + 2)
    train, val = make_city_imagefolder(out / "cities", per_class_train=30, per_class_val=15, seed=args.seed + 1)
    print(f"{len(videos)} walking tours in {out / 'wtour'}; Ego-Exo4D layout in {layout.root} "
          f"({len(layout.takes['train'])} train / {len(layout.takes['val'])} val takes); ImageFolder {train}, {val}")
    return 0


def _frames(args) -> int:
    from egoforge.egoagent.data.frames import extract_videos

    for result in extract_videos(args.videos, args.out, every=args.every, max_side=args.max_side):
        state = "already extracted" if result.skipped else "extracted"
        print(f"{result.video}: {result.frames} frames {state} ({result.fps:g} fps, every {result.every}) "
              f"-> {result.folder}")
    return 0


def _undistort(args) -> int:
    from egoforge.egoagent.data.undistort import undistort_takes

    written = undistort_takes(args.takes_root, args.out, args.takes, size=args.size, every=args.every,
                              takes_json=args.takes_json)
    print(f"undistorted {len(written)} takes ({sum(written.values())} frames) into {args.out}")
    return 0


def _poses(args) -> int:
    from egoforge.egoagent.data.egoexo_pose import PoseOptions, preprocess

    options = PoseOptions(coord=args.coord, use_pseudo=not args.manual_only, splits=tuple(args.splits))
    report = preprocess(args.root, args.out, options)
    for split in options.splits:
        print(f"{split}: {report.takes.get(split, 0)} takes, {report.written.get(split, 0)} fragments")
    for line in report.skipped:
        print(f"skipped {line}")
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    return 1 if report.errors else 0


def _knn(args) -> int:
    from egoforge.data.models import resolve_model_path
    from egoforge.egoagent.eval.knn import evaluate_knn, knn_table
    from egoforge.egoagent.network import load_backbone

    model = resolve_model_path(args.model, what="--model")
    for flag, root in (("--train", args.train), ("--val", args.val)):
        check_image_folder(root, flag)
    backbone = load_backbone(model, args.weights)
    size = args.image_size or backbone.config.image_size
    results = evaluate_knn(backbone, args.train, args.val, size, k=args.k, temperature=args.temperature,
                           batch_size=args.batch_size, device=_device(args.device), num_workers=args.num_workers)
    results["model"] = args.model
    _write_results(args.out, f"kNN (k={args.k}, T={args.temperature}) on {args.val}", results,
                   *knn_table(results, Path(args.model).name))
    return 0


def _world(args) -> int:
    import yaml

    from egoforge.data.errors import InputError
    from egoforge.data.models import resolve_model_path
    from egoforge.egoagent.data.sequences import SequenceSpec
    from egoforge.egoagent.eval.world import evaluate_world, world_table
    from egoforge.egoagent.network import read_spec

    checkpoint = Path(resolve_model_path(args.checkpoint, online=False, what="--checkpoint"))
    recipe_path = checkpoint / "recipe.yaml"
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8")) if recipe_path.exists() else {}
    if not isinstance(recipe, dict) or not all(isinstance(recipe.get(k, {}), dict) for k in ("data", "stage2")):
        raise InputError(recipe_path, "expected a mapping with 'data' and 'stage2' sections",
                         fix="the recipe.yaml a stage-2 training run saved beside its checkpoints")
    data, options = recipe.get("data", {}), recipe.get("stage2", {})
    spec = SequenceSpec(history=args.history or data.get("history", 4), stride=args.stride or data.get("stride", 5),
                        action_frames=args.action_frames or data.get("action_frames", 1),
                        pose_scale=args.pose_scale or data.get("pose_scale", 1.0))
    image_size = read_spec(checkpoint)["backbone"]["image_size"]
    results = evaluate_world(checkpoint, args.pose_dir, args.frames_root, spec, image_size,
                             history_attention=options.get("history_attention", True), batch_size=args.batch_size,
                             device=_device(args.device), num_workers=args.num_workers,
                             takes_json=args.takes_json or data.get("takes_json"))
    _write_results(args.out, f"Future-state retrieval and 3D motion prediction on {args.pose_dir}", results,
                   *world_table(results, checkpoint.name))
    return 0


def _export(args) -> int:
    from egoforge.data.models import resolve_model_path
    from egoforge.egoagent.export import export_backbone

    checkpoint = resolve_model_path(args.checkpoint, online=False, what="--checkpoint")
    out = export_backbone(checkpoint, args.out, args.weights)
    print(f"exported the {args.weights} backbone of {args.checkpoint} to {out} (AutoModel.from_pretrained after "
          "`import egoforge.egoagent.backbone`)")
    return 0


STEPS = {"synth": _synth, "frames": _frames, "undistort": _undistort, "poses": _poses, "knn": _knn, "world": _world,
         "export": _export}


def main(args) -> int:
    if not getattr(args, "egoagent_command", None):
        print("egoforge egoagent: choose a step: " + ", ".join(STEPS), file=sys.stderr)
        return 2
    # input errors (DataFormatError, VideoError, a missing file or model folder ...) go through to the CLI: one line,
    # exit 2; a missing optional package (MissingDependencyError) is a failure, exit 1
    return STEPS[args.egoagent_command](args)
