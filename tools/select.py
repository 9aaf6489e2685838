"""``egoforge select csm``: Ego3S's counterfactual selection (CSM) of training samples with the current model."""

from __future__ import annotations

import json
import sys

from egoforge.tools.argtypes import check_order_or_raise, non_negative_float, positive_int, probability, top_p

HELP = "select training samples: `csm` = Ego3S counterfactual selection (question only / video / masked video)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="select_method", metavar="METHOD", required=True)
    csm = sub.add_parser("csm", help="G sampled answers per condition, coarse (video vs text) and fine (video vs "
                         "masked interaction region) filters; resumable")
    csm.add_argument("source", help="Video-R1 json/jsonl pool (never modified)")
    csm.add_argument("--model", required=True, help="checkpoint (or LoRA adapter folder) of the current policy")
    csm.add_argument("--out", required=True, help="output folder (cache, selected.json/.parquet, report, PNG)")
    csm.add_argument("--media-dir", help="data root of the media paths (default: the source's folder)")
    csm.add_argument("--preset", choices=["paper", "official"], default="paper",
                     help="paper: lambda_c 0.1 + fine filter lambda_f 0.5; official: csm_selection.py, coarse 0.12 "
                     "only")
    csm.add_argument("--lambda-c", type=probability,
                     help="coarse threshold on an accuracy deviation, in [0, 1] (overrides the preset)")
    csm.add_argument("--lambda-f", type=probability,
                     help="fine threshold on an accuracy drop, in [0, 1] (overrides the preset)")
    csm.add_argument("--coarse-side", choices=["both", "positive"], help="keep |deviation| (both, official) or "
                     "only video-helps deviations")
    csm.add_argument("--no-fine", action="store_true", help="coarse filter only")
    csm.add_argument("--fine-rule", choices=["absolute", "deviation"],
                     help="absolute (default): keep when masking costs >= lambda_f accuracy; deviation: the coarse "
                     "test's form on the masked reward gap")
    csm.add_argument("--missing-roi", choices=["default", "keep"], default="default",
                     help="clips without roi_box: mask a lower-centre box (default) or keep them untested")
    csm.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    csm.add_argument("-G", "--num-generations", type=positive_int, default=5,
                     help="responses per condition (paper: 5)")
    csm.add_argument("--temperature", type=non_negative_float, default=0.7)
    csm.add_argument("--top-p", type=top_p, default=1.0)
    csm.add_argument("--max-new-tokens", type=positive_int, default=768)
    csm.add_argument("--batch-size", type=positive_int, default=4, help="requests per generate call")
    csm.add_argument("--seed", type=int, default=0)
    csm.add_argument("--tensor-parallel-size", type=positive_int, default=1, help="vllm only")
    csm.add_argument("--max-model-len", type=positive_int, default=32768, help="vllm only: context length")
    csm.add_argument("--quiet", action="store_true")
    from egoforge.tools.ego3s import _budget_arguments

    _budget_arguments(csm)


def main(args) -> int:
    from dataclasses import replace

    from tqdm.auto import tqdm

    from egoforge.data.models import resolve_model_path
    from egoforge.ego3s.convert import ConversionError, ConvertOptions
    from egoforge.ego3s.csm import CSMConfig
    from egoforge.ego3s.csm_run import CSMRunOptions, model_fingerprint, run_csm
    from egoforge.ego3s.generation import SamplingSettings, make_sampler
    from egoforge.tools.ego3s import budget_from

    check_order_or_raise(args, ("min_frames", "max_frames"), ("min_pixels", "max_pixels"))
    args.model = resolve_model_path(args.model)
    csm = CSMConfig.preset(args.preset, lambda_c=args.lambda_c, lambda_f=args.lambda_f,
                           coarse_side=args.coarse_side, fine_rule=args.fine_rule)
    if args.no_fine:
        csm = replace(csm, fine=False)
    budget = budget_from(args)
    opts = CSMRunOptions(csm=csm, budget=budget, media_root=args.media_dir, batch_size=args.batch_size,
                         missing_roi=args.missing_roi, convert=ConvertOptions(budget=budget))
    settings = SamplingSettings(n=args.num_generations, temperature=args.temperature, top_p=args.top_p,
                                max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed)
    opts.generator = model_fingerprint(args.model) | {
        "backend": args.backend, "n": args.num_generations, "temperature": args.temperature, "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens, "seed": args.seed}
    extra = ({"tensor_parallel_size": args.tensor_parallel_size, "max_model_len": args.max_model_len}
             if args.backend == "vllm" else {})
    try:
        sampler = make_sampler(args.backend, args.model, settings, **extra)
        result = run_csm(args.source, args.out, sampler, opts,
                         progress=None if args.quiet else lambda it, desc: tqdm(it, desc=desc, unit="batch",
                                                                              file=sys.stderr))
    except ConversionError as exc:  # bad input rows: listed, then exit 2 like every input error
        from egoforge.data.errors import INPUT_ERROR_EXIT

        for issue in exc.issues[:50]:
            print(issue, file=sys.stderr)
        print(f"egoforge select csm: {len(exc.issues)} problem(s) in {args.source}", file=sys.stderr)
        return INPUT_ERROR_EXIT
    # other input errors (exit 2) and failures (exit 1) are reported by egoforge.tools.cli, one line each
    s = result.summary
    print(f"CSM kept {s['kept']} of {s['samples']} samples ({100 * s['kept_fraction']:.1f}%); coarse filter kept "
          f"{s['coarse_kept']}; {s['generations_per_sample']:.1f} generations per sample", file=sys.stderr)
    if not s["kept"]:
        print("no sample was kept: nothing to train on (selected.parquet not written)", file=sys.stderr)
    print(json.dumps({"selected_json": str(result.selected_json), "selected_parquet": (str(result.selected_parquet)
                                                                          if result.selected_parquet else None),
                      "report": str(result.report), "histogram": str(result.histogram), **s}))
    return 0
