"""``egoforge egom2p ...``: EgoM2P data preparation, tokenizers, generation and metrics.

    egoforge egom2p modalities
    egoforge egom2p synth RAW [--recordings 4]                      (generated recordings, to try everything offline)
    egoforge egom2p prepare RAW --out CLIPS --dataset NAME [--size 256]
    egoforge egom2p tokenizer train RECIPE [key=value ...]         (= egoforge train RECIPE)
    egoforge egom2p tokenizer encode|decode|eval ...
    egoforge egom2p tokenize CLIPS --out TOKENS --modality M --tokenizer DIR
    egoforge egom2p stats TOKENS [--clips CLIPS] [--dataset NAME] [--json]
    egoforge egom2p convert egoexo4d TAKE --out RAW/<rec> --calibration CALIB.json --video-start-us T
    egoforge egom2p convert holoassist RECORDING --out RAW/<rec>
    egoforge egom2p generate --model DIR --task rgb2depth --clips CLIPS --tokenizer rgb=DIR --tokenizer depth=DIR
    egoforge egom2p metrics --task rgb2depth --pred PRED --clips CLIPS
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from egoforge.tools.argtypes import non_negative_int, positive_float, positive_int, top_p

HELP = "EgoM2P: prepare clips, train/encode/decode tokenizers, tokenize to shards, ROAR generation, metrics"

TASK_NAMES = ("rgb2depth", "rgb2cam", "rgb2gaze", "depth2rgb")
MODALITY_NAMES = ("rgb", "depth", "gaze", "cam")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="egom2p_command", metavar="ACTION")
    sub.add_parser("modalities", help="print the modality table")

    p = sub.add_parser("synth", help="write generated egocentric recordings in the raw layout (offline try-out)")
    p.add_argument("raw", help="output folder (one sub-folder per recording)")
    p.add_argument("--recordings", type=positive_int, default=4)
    p.add_argument("--seconds", type=positive_float, default=4.5)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("prepare", help="cut raw recordings into aligned 2 s clips (never writes the source)")
    p.add_argument("raw", help="recordings: RAW/<recording>/rgb.mp4 [+ depth.npz or depth/, gaze.csv, camera.txt]")
    p.add_argument("--out", required=True, help="clip root; clips go to OUT/<dataset>/<recording>__<index>/")
    p.add_argument("--dataset", required=True, help="dataset name (one folder per dataset)")
    p.add_argument("--size", type=positive_int, default=256, help="output side after the centre crop (paper: 256)")
    p.add_argument("--stride", type=positive_float, default=2.0, help="seconds between clip starts (2.0: no overlap)")
    p.add_argument("--depth-resize", default="min", choices=["min", "nearest"],
                   help="depth resizing that keeps sensor holes (0) invalid: masked min-pool or nearest")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("tokenizer", help="tokenizer train / encode / decode / eval")
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    t = tsub.add_parser("train", help="train a tokenizer from a recipe (same as `egoforge train`)")
    t.add_argument("recipe")
    t.add_argument("overrides", nargs="*")
    t.add_argument("--dry-run", action="store_true")
    for name, text in (("encode", "clips -> tokens (.npz: one array per clip key)"),
                       ("decode", "tokens (.npz) -> clips (<out>/<key>/<modality>.npy)"),
                       ("eval", "round-trip reconstruction metrics on clips")):
        t = tsub.add_parser(name, help=text)
        t.add_argument("--tokenizer", required=True, help="tokenizer folder (or Cosmos folder with encoder.jit)")
        t.add_argument("--modality", required=True, choices=MODALITY_NAMES)
        t.add_argument("--device", default="cpu")
        t.add_argument("--out", required=name != "eval", help="output file (encode), folder (decode), json (eval)")
        if name == "decode":
            t.add_argument("--tokens", required=True, help=".npz written by `tokenizer encode`")
        else:
            t.add_argument("--clips", required=True, help="clip root (CLIPS or CLIPS/<dataset>)")
            t.add_argument("--limit", type=positive_int)

    p = sub.add_parser("tokenize", help="tokenize clips into WebDataset shards (ROOT/<modality>/<dataset>/)")
    p.add_argument("clips", help="clip root written by `prepare`")
    p.add_argument("--out", required=True, help="token shard root")
    p.add_argument("--modality", required=True, choices=MODALITY_NAMES)
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (trajectory VQ, egoforge FSQ, or Cosmos)")
    p.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    p.add_argument("--samples-per-shard", type=positive_int, default=1000, help="paper: 1000")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("convert", help="real dataset layouts -> the raw recording layout `prepare` reads")
    csub = p.add_subparsers(dest="convert_command", metavar="DATASET")
    c = csub.add_parser("egoexo4d", help="an Ego-Exo4D take (Aria RGB video + MPS closed-loop trajectory and gaze)")
    c.add_argument("take", help="takes/<take_name>/ with frame_aligned_videos/, trajectory/, eye_gaze/")
    c.add_argument("--gaze", default="general", choices=["general", "personalized"], help="which MPS gaze file")
    c = csub.add_parser("aria", help="any Aria recording: RGB video + MPS closed_loop_trajectory.csv / eye gaze csv")
    c.add_argument("--video", required=True, help="the RGB (camera-rgb, stream 214-1) video")
    c.add_argument("--trajectory", help="MPS closed_loop_trajectory.csv")
    c.add_argument("--eye-gaze", help="MPS general_eye_gaze.csv or personalized_eye_gaze.csv")
    aria_kinds = list(csub.choices.values())
    c = csub.add_parser("holoassist", help="a HoloAssist recording (Export_py: PV video, Pose_sync, Eyes_sync)")
    c.add_argument("recording", help="the recording folder holding Export_py/")
    c.add_argument("--out", required=True, help="recording folder to write (RAW/<recording>)")
    c.add_argument("--eye-distance", type=positive_float, default=0.5,
                   help="metres along the gaze ray (HoloAssist: 0.5)")
    for c in aria_kinds:
        c.add_argument("--out", required=True, help="recording folder to write (RAW/<recording>)")
        c.add_argument("--calibration", required=True,
                       help="Aria device calibration JSON (or MPS online_calibration.jsonl) with camera-rgb")
        c.add_argument("--video-start-us", type=int,
                       help="device time (tracking_timestamp_us clock) of the video's first frame (egoexo4d: "
                       "default from the capture's timesync.csv, frame by frame)")
        c.add_argument("--t-device-cpf", help="T_Device_CPF as 'tx,ty,tz,qx,qy,qz,qw' (when the JSON lacks it)")
        c.add_argument("--max-pose-hz", type=positive_float, default=120.0,
                       help="thin the 1 kHz trajectory to this rate")
        c.add_argument("--gaze-depth", type=positive_float, default=1.0, help="metres, when depth_m is missing or 0")

    p = sub.add_parser("stats", help="samples per modality combination as the trainer joins the shards; "
                                     "with --clips, check every clip against them")
    p.add_argument("tokens", help="token shard root (TOKENS/<modality>/<dataset>/)")
    p.add_argument("--clips", help="clip root written by `prepare` (CLIPS/<dataset>/<clip>/): check against it")
    p.add_argument("--dataset", action="append", help="only these datasets (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for name, text in (("generate", "ROAR-decode a task's target on clips, detokenize, score, report"),
                       ("metrics", "score existing predictions (<pred>/<dataset>/<clip>/<target>.npy)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--task", required=True, choices=TASK_NAMES)
        p.add_argument("--clips", required=True, help="clip root with the ground truth")
        p.add_argument("--out", help="output folder (generate: required; metrics: default <pred>)")
        if name == "metrics":
            p.add_argument("--pred", required=True, help="prediction folder")
            p.add_argument("--allow-partial", action="store_true",
                           help="score the clips that have a prediction and report the coverage (n of N) instead "
                           "of refusing a missing prediction")
            continue
        p.add_argument("--model", required=True, help="trained EgoM2P folder (config.json + model.safetensors)")
        p.add_argument("--tokenizer", action="append", default=[], metavar="MODALITY=FOLDER",
                       help="tokenizer of a modality the task uses (repeatable)")
        p.add_argument("--steps", type=positive_int, help="decoding steps (paper: 3 depth/cam, 5 gaze, 6 rgb)")
        p.add_argument("--schedule", default="linear", choices=["linear", "cosine"])
        p.add_argument("--temperature", type=positive_float, default=0.01)
        p.add_argument("--cfg-scale", type=float, default=2.0)
        p.add_argument("--top-p", type=top_p, default=0.8)
        p.add_argument("--top-k", type=non_negative_int, default=0)
        p.add_argument("--batch-size", type=positive_int, default=4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--limit", type=positive_int)
        p.add_argument("--device", default="cpu")
        p.add_argument("--quiet", action="store_true")


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or key not in MODALITY_NAMES:
            raise ValueError(f"--tokenizer {value!r}: expected MODALITY=FOLDER with MODALITY in {MODALITY_NAMES}")
        out[key] = path
    return out


def _tokenizer_action(args) -> int:
    import numpy as np

    from egoforge.egom2p.clips import has_modality, list_clips, load_clip
    from egoforge.egom2p.tokenizers import load_tokenizer

    if args.tokenizer_command == "train":
        from egoforge.tools import train as train_tool

        return train_tool.main(argparse.Namespace(recipe=args.recipe, overrides=args.overrides, dry_run=args.dry_run))
    tokenizer = load_tokenizer(args.tokenizer, args.modality, args.device)
    if args.tokenizer_command == "decode":
        from egoforge.data.atomic import atomic_write_bytes

        with np.load(args.tokens, allow_pickle=False) as data:
            keys = list(data.keys())
            tokens = np.stack([data[k] for k in keys])
        from egoforge.data.paths import resolve_under

        clips = tokenizer.decode(tokens)
        for key, clip in zip(keys, clips):
            import io

            buffer = io.BytesIO()
            np.save(buffer, clip)
            # keys come from the .npz: never let one write outside --out
            atomic_write_bytes(resolve_under(args.out, Path(key) / f"{args.modality}.npy"), buffer.getvalue())
        print(f"decoded {len(keys)} clips into {args.out}")
        return 0
    clips = [c for c in list_clips(args.clips) if has_modality(c, args.modality)][: args.limit]
    if not clips:
        raise FileNotFoundError(f"{args.clips}: no clips with {args.modality}")
    if args.tokenizer_command == "encode":
        import io

        from egoforge.data.atomic import atomic_write_bytes

        tokens = {f"{c.parent.name}__{c.name}": tokenizer.encode(load_clip(c, args.modality)[None])[0] for c in clips}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **tokens)
        atomic_write_bytes(args.out, buffer.getvalue())
        print(f"encoded {len(tokens)} clips into {args.out} (grid {next(iter(tokens.values())).shape})")
        return 0
    from egoforge.egom2p.pretokenize import reconstruction_report

    report = reconstruction_report(tokenizer, args.modality, clips)
    print(json.dumps(report, indent=2))
    if args.out:
        from egoforge.data.atomic import atomic_write_json

        atomic_write_json(args.out, report)
    return 0


def main(args) -> int:
    command = getattr(args, "egom2p_command", None)
    if not command:
        actions = "modalities,synth,prepare,convert,tokenizer,tokenize,stats,generate,metrics"
        print(f"usage: egoforge egom2p {{{actions}}} ...", file=sys.stderr)
        return 2
    from egoforge.egom2p.clips import check_dataset_name

    names = getattr(args, "dataset", None) or []  # prepare: one name; tokenize / stats: a list
    for name in [names] if isinstance(names, str) else names:
        check_dataset_name(name)
    # input errors (ClipDataError, ShardFormatError, UnsafePathError, a missing file ...) go through to the CLI:
    # one line, exit 2
    if command == "modalities":
        from egoforge.egom2p.modalities import describe

        print(describe())
        return 0
    if command == "synth":
        from egoforge.testing.egom2p_data import make_raw_dataset

        root = make_raw_dataset(args.raw, recordings=args.recordings, seed=args.seed, seconds=args.seconds)
        print(f"wrote {args.recordings} recordings to {root}")
        return 0
    if command == "prepare":
        from egoforge.egom2p.clips import ClipSettings, prepare_clips

        settings = ClipSettings(size=args.size, stride_s=args.stride, depth_resize=args.depth_resize)
        counts = prepare_clips(args.raw, args.out, args.dataset, settings, progress=not args.quiet)
        print(json.dumps(counts))
        return 0
    if command == "tokenizer":
        if not getattr(args, "tokenizer_command", None):
            print("usage: egoforge egom2p tokenizer {train,encode,decode,eval} ...", file=sys.stderr)
            return 2
        return _tokenizer_action(args)
    if command == "tokenize":
        from egoforge.egom2p.pretokenize import tokenize_clips
        from egoforge.egom2p.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer, args.modality, args.device)
        counts = tokenize_clips(tokenizer, args.modality, args.clips, args.out, args.dataset, args.batch_size,
                                args.samples_per_shard, progress=not args.quiet)
        print(json.dumps(counts))
        return 0
    if command == "stats":
        return _stats(args)
    if command == "convert":
        return _convert(args)
    if command == "generate":
        from egoforge.data.models import resolve_model_path
        from egoforge.egom2p.generate import TASKS, GenerationConfig
        from egoforge.egom2p.inference import load_pipeline, results_json, run_task

        if not args.out:
            raise ValueError("--out is required")
        gen = GenerationConfig(steps=args.steps or TASKS[args.task].steps, schedule=args.schedule,
                               temperature=args.temperature, cfg_scale=args.cfg_scale, top_p=args.top_p,
                               top_k=args.top_k)
        model_dir = resolve_model_path(args.model, what="--model")
        model, tokenizers = load_pipeline(model_dir, _pairs(args.tokenizer), args.task, args.device)
        results = run_task(model, tokenizers, args.task, args.clips, args.out, gen, args.batch_size, args.seed,
                           args.limit, progress=not args.quiet)
        print(results_json(results))
        return 0
    if command == "metrics":
        return _metrics(args)
    return 2


def _convert(args) -> int:
    import numpy as np

    from egoforge.egom2p.aria_mps import convert_aria_recording, egoexo4d_take_inputs, egoexo4d_video_clock
    from egoforge.egom2p.geometry import make_pose, quat_to_matrix

    if not getattr(args, "convert_command", None):
        print("usage: egoforge egom2p convert {egoexo4d,aria,holoassist} ...", file=sys.stderr)
        return 2
    if args.convert_command == "holoassist":
        from egoforge.egom2p.holoassist import convert_holoassist_recording

        counts = convert_holoassist_recording(args.recording, args.out, args.eye_distance)
        print(json.dumps({"out": str(args.out), **counts}))
        return 0
    if args.convert_command == "egoexo4d":
        inputs = egoexo4d_take_inputs(args.take, args.gaze)
    else:
        inputs = {"video": Path(args.video), "trajectory": args.trajectory, "eye_gaze": args.eye_gaze}
    cpf = None
    if args.t_device_cpf:
        try:
            values = [float(v) for v in args.t_device_cpf.split(",")]
        except ValueError:
            values = []
        if len(values) != 7 or not np.isfinite(values).all():
            raise ValueError(f"--t-device-cpf {args.t_device_cpf!r}: expected tx,ty,tz,qx,qy,qz,qw")
        cpf = make_pose(quat_to_matrix(np.array(values[3:])), values[:3])
    clock = args.video_start_us
    if clock is None:
        if args.convert_command != "egoexo4d":
            raise ValueError("--video-start-us is required for `convert aria`")
        clock = egoexo4d_video_clock(args.take, inputs["video"])
    counts = convert_aria_recording(args.out, inputs["video"], clock, args.calibration,
                                    inputs["trajectory"], inputs["eye_gaze"], cpf, args.max_pose_hz, args.gaze_depth)
    print(json.dumps({"out": str(args.out), **counts}))
    return 0


def _stats(args) -> int:
    """Exit 0 when every checked clip joined with exactly its modalities, 1 otherwise."""
    from egoforge.egom2p.token_stats import dataset_stats, format_stats, token_datasets

    names = args.dataset or token_datasets(args.tokens)
    if not names:
        raise FileNotFoundError(f"{args.tokens}: no token shards (<modality>/<dataset>/shard-*.tar)")
    stats = [dataset_stats(args.tokens, name, args.clips) for name in names]
    if args.json:
        print(json.dumps({s.name: s.as_dict() for s in stats}, indent=2))
    else:
        print(format_stats(stats))
    return 1 if any(s.problems for s in stats) else 0


def _metrics(args) -> int:
    """Score every clip with a ground-truth target; a clip without a prediction is an error unless
    ``--allow-partial``, which scores the rest and reports the coverage (n of N) in the printout and metrics.json."""
    import numpy as np

    from egoforge.data.atomic import atomic_write_json
    from egoforge.data.errors import InputError
    from egoforge.egom2p.clips import check_finite, list_clips
    from egoforge.egom2p.generate import TASKS
    from egoforge.egom2p.inference import score

    target = TASKS[args.task].target
    if not Path(args.pred).is_dir():
        raise InputError(args.pred, "prediction folder not found", fix="give the --out folder of `egom2p generate`")
    expected = [c for c in list_clips(args.clips) if (c / f"{target}.npy").is_file()]
    if not expected:
        raise InputError(args.clips, f"no clips with a ground-truth {target}.npy (<dataset>/<clip>/meta.json)",
                         fix="give the clip root written by `egom2p prepare`")
    per_clip, missing = {}, []
    for clip in expected:
        pred = Path(args.pred) / clip.parent.name / clip.name / f"{target}.npy"
        if not pred.is_file():
            missing.append(pred)
            continue
        prediction = check_finite(np.load(pred, allow_pickle=False), pred, target)
        per_clip[f"{clip.parent.name}/{clip.name}"] = score(args.task, clip, prediction)
    if missing and not (args.allow_partial and per_clip):
        fix = ("predict every clip, or pass --allow-partial to score the predicted ones and report the coverage"
               if not args.allow_partial else "no clip has a prediction: check --pred and --task")
        raise InputError(args.pred, f"{len(missing)} of {len(expected)} clips have no prediction "
                         f"(first: {missing[0]})", fix=fix)
    keys = sorted({k for m in per_clip.values() for k in m})
    mean = {k: float(np.mean([m[k] for m in per_clip.values() if k in m])) for k in keys}
    coverage = {"scored": len(per_clip), "clips": len(expected), "missing": [str(p) for p in missing]}
    result = {"task": args.task, "clips": len(per_clip), "coverage": coverage, "mean": mean, "per_clip": per_clip}
    atomic_write_json(Path(args.out or args.pred) / "metrics.json", result)
    summary = {"task": args.task, "clips": len(per_clip), "mean": mean}
    if missing:
        summary["coverage"] = f"{len(per_clip)} of {len(expected)} clips (--allow-partial)"
        print(f"egoforge egom2p metrics: scored {len(per_clip)} of {len(expected)} clips; {len(missing)} have no "
              f"prediction (first: {missing[0]})", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
