"""``egoforge select csm``: generate under the three conditions, cache, filter, and write the selected subset.

Outputs in ``out_dir``: ``responses.jsonl`` (the resumable cache: one line per sample and condition with the G
responses and their rewards), ``selected.json`` (the kept source rows, unchanged, in source order),
``selected.parquet`` (the same rows converted for verl), ``csm_report.json`` (settings, per-sample rewards, gaps,
deviations and decisions, kept fraction, generations spent) and ``csm_histogram.png``.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.data.paths import resolve_under
from egoforge.data.predictions import PredictionWriter, read_predictions
from egoforge.ego3s.convert import ConversionError, ConvertOptions, to_verl_rows, write_parquet
from egoforge.ego3s.csm import (
    CONDITIONS,
    CSMConfig,
    coarse_select,
    mean_total_reward,
    rank_score,
    response_rewards,
    select,
)
from egoforge.ego3s.generation import Request
from egoforge.ego3s.media import FrameBudget, load_clip, mask_region
from egoforge.ego3s.prompts import build_prompt
from egoforge.ego3s.schema import load_video_r1, validate_rows

# Egocentric prior for clips without an annotated interaction region: the hands work in the lower middle.
DEFAULT_ROI_BOX = (0.25, 0.4, 0.75, 1.0)


@dataclass
class CSMRunOptions:
    csm: CSMConfig = field(default_factory=CSMConfig)
    budget: FrameBudget = field(default_factory=FrameBudget)
    media_root: str | os.PathLike | None = None
    batch_size: int = 4  # requests per generate call (each yields G responses)
    missing_roi: str = "default"  # clips without roi_box(es): "default" box, or "keep" them (no fine test)
    default_box: tuple[float, float, float, float] = DEFAULT_ROI_BOX
    convert: ConvertOptions = field(default_factory=ConvertOptions)
    # What produced the responses (model fingerprint, sampling settings); the cache refuses another generator's
    # answers, so re-running CSM with a newer checkpoint into the same folder cannot silently reuse old responses.
    generator: dict = field(default_factory=dict)


@dataclass
class CSMResult:
    selected_json: Path
    selected_parquet: Path | None  # None when CSM kept nothing (no parquet is written)
    report: Path
    histogram: Path
    summary: dict


def _cache_id(problem_id, condition: str) -> str:
    return f"{problem_id}::{condition}"


def _request_needs_default_box(row: dict) -> bool:
    return row["data_type"] in ("video", "image") and not (row.get("roi_boxes") or row.get("roi_box"))


def _request(row: dict, condition: str, root: Path, opts: CSMRunOptions) -> Request | None:
    """The generation request of one sample under one condition (None: the condition does not apply)."""
    prompt = build_prompt(row["problem"], row["problem_type"], row.get("options") or [], irl=False)
    if condition == "text":
        return Request(prompt)
    frames, fps = load_clip(resolve_under(root, row["path"], allow_absolute=True), opts.budget)
    is_image = row["data_type"] == "image"
    if condition == "masked":
        boxes = row.get("roi_boxes") or row.get("roi_box")
        if not boxes:
            if opts.missing_roi == "keep":
                return None
            boxes = list(opts.default_box)
        frames = mask_region(frames, boxes)
    return Request(prompt, frames, fps, is_image)


def _generate_condition(rows: list[dict], condition: str, sampler, cache: PredictionWriter, root: Path,
                        opts: CSMRunOptions, progress: Callable | None) -> int:
    """Generate (and cache) the condition for every row not cached yet; returns how many generations ran."""
    todo = [r for r in rows if _cache_id(r["problem_id"], condition) not in cache.done]
    spent = 0
    chunks = [todo[i:i + opts.batch_size] for i in range(0, len(todo), opts.batch_size)]
    for chunk in (progress(chunks, desc=f"CSM {condition}") if progress else chunks):
        requests = [(r, _request(r, condition, root, opts)) for r in chunk]
        live = [(r, q) for r, q in requests if q is not None]
        responses = sampler.generate([q for _, q in live]) if live else []
        records = []
        for (row, _), texts in zip(live, responses):
            formats, accuracies = response_rewards(texts, row["solution"], row["problem_type"])
            records.append({"id": _cache_id(row["problem_id"], condition), "problem_id": str(row["problem_id"]),
                            "condition": condition, "responses": texts, "format": formats,
                            "accuracy": accuracies, "mean_reward": mean_total_reward(formats, accuracies)})
            spent += len(texts)
        cache.write(records)
    return spent


def _rewards(cache_path: Path, condition: str, key: str = "mean_reward") -> dict[str, float]:
    """Per-sample mean reward (or, with ``key="accuracy"``, mean accuracy) of one condition from the cache."""
    out = {}
    for r in read_predictions(cache_path).values():
        if r["condition"] == condition:
            out[r["problem_id"]] = r[key] if key == "mean_reward" else sum(r[key]) / max(1, len(r[key]))
    return out


def histogram_png(selection, cfg: CSMConfig, path: Path) -> Path:
    """Deviation histograms of the two filters with their thresholds (kept = beyond the dashed lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("coarse: (R_video - R_text) - mean", list(selection.coarse_deviation.values()), cfg.lambda_c,
               cfg.coarse_side)]
    if cfg.fine:
        title = ("fine: accuracy(video) - accuracy(masked)" if cfg.fine_rule == "absolute"
                 else "fine: (R_video - R_masked) - mean")
        panels.append((title, list(selection.fine_gap.values()), cfg.lambda_f, "positive"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, values, threshold, side) in zip(axes[0], panels):
        ax.hist(values or [0.0], bins=20, range=(-1.5, 1.5), color="#4c72b0")
        ax.axvline(threshold, color="#c44e52", linestyle="--")
        if side == "both":
            ax.axvline(-threshold, color="#c44e52", linestyle="--")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("gap (kept beyond the dashed line)")
        ax.set_ylabel("samples")
    kept = len(selection.kept)
    fig.suptitle(f"CSM: kept {kept} of {len(selection.coarse_deviation)}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def model_fingerprint(model: str | os.PathLike) -> dict:
    """Path, and name/size/mtime of each weight file of a local model folder: a new checkpoint written to the same
    folder changes it."""
    model = Path(model)
    patterns = ("*.safetensors", "*.bin", "*.pt")
    files = sorted(f for pattern in patterns for f in model.glob(pattern)) if model.is_dir() else []
    return {"model": str(model.resolve()) if model.exists() else str(model),
            "weights": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def check_cache_generator(cache_path: Path, generator: dict) -> None:
    """Record the generator beside a new cache; refuse a cache whose recorded generator differs."""
    meta_path = cache_path.with_name(cache_path.stem + ".generator.json")
    if meta_path.exists():
        recorded = json.loads(meta_path.read_text(encoding="utf-8"))
        if recorded != generator:
            changed = sorted(k for k in set(recorded) | set(generator) if recorded.get(k) != generator.get(k))
            raise ValueError(f"{cache_path}: cached responses come from another generator (differs in "
                             f"{', '.join(changed)}; recorded in {meta_path.name}); write to a new --out folder, "
                             "or delete the cache to start over")
    elif cache_path.exists() and cache_path.stat().st_size:
        raise ValueError(f"{cache_path}: a response cache without {meta_path.name} (written by an older egoforge): "
                         "its model is unknown; write to a new --out folder, or delete the cache to start over")
    else:
        atomic_write_json(meta_path, generator)


def run_csm(source: str | os.PathLike, out_dir: str | os.PathLike, sampler, opts: CSMRunOptions = CSMRunOptions(),
            progress: Callable | None = None) -> CSMResult:
    """CSM over a Video-R1 json with ``sampler`` (``egoforge.ego3s.generation``); resumable through the cache."""
    source, out_dir = Path(source), Path(out_dir)
    rows = load_video_r1(source)
    root = Path(opts.media_root) if opts.media_root else source.parent
    issues = validate_rows(rows, str(source), root, decode=opts.convert.decode)
    if issues:
        raise ConversionError(issues)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_path = out_dir / "responses.jsonl"
    if opts.generator:
        check_cache_generator(cache_path, opts.generator)
    spent = 0
    with PredictionWriter(cache_path) as cache:
        for condition in ("text", "video"):
            spent += _generate_condition(rows, condition, sampler, cache, root, opts, progress)
        text, video = _rewards(cache_path, "text"), _rewards(cache_path, "video")
        masked, masked_acc, untestable = None, None, set()
        if opts.csm.fine:
            _, _, coarse_kept = coarse_select(text, video, opts.csm)
            survivors = [r for r in rows if str(r["problem_id"]) in coarse_kept]
            spent += _generate_condition(survivors, "masked", sampler, cache, root, opts, progress)
            masked, masked_acc = _rewards(cache_path, "masked"), _rewards(cache_path, "masked", "accuracy")
            if opts.missing_roi == "keep":  # clips with no interaction region pass the fine test untested
                untestable = {str(r["problem_id"]) for r in survivors if _request_needs_default_box(r)}
    selection = select(text, video, masked, opts.csm, untestable, _rewards(cache_path, "video", "accuracy"),
                       masked_acc)
    kept_rows = [r for r in rows if str(r["problem_id"]) in selection.kept]
    selected_json = atomic_write_json(out_dir / "selected.json", kept_rows)
    selected_parquet: Path | None = out_dir / "selected.parquet"
    if not kept_rows:  # nothing to train on: no parquet, and none left over from an earlier run in this folder
        selected_parquet.unlink(missing_ok=True)
        selected_parquet = None
    else:
        convert = replace(opts.convert, media_root=root)
        verl_rows = to_verl_rows(kept_rows, root, convert, out_dir / "selected.frames")
        index_of = {str(r["problem_id"]): i for i, r in enumerate(rows)}
        for row in verl_rows:  # keep the source row number, as `egoforge ego3s convert` does
            row["extra_info"]["index"] = index_of[row["extra_info"]["problem_id"]]
        write_parquet(verl_rows, selected_parquet)
    generations = sum(len(r["responses"]) for r in read_predictions(cache_path).values())
    summary = selection.summary(len(rows)) | {
        "generations_total": generations,
        "generations_this_run": spent,
        "generations_per_sample": generations / len(rows) if rows else 0.0,
    }
    per_sample = {
        str(r["problem_id"]): {
            "text": text.get(str(r["problem_id"])), "video": video.get(str(r["problem_id"])),
            "masked": (masked or {}).get(str(r["problem_id"])),
            "coarse_deviation": selection.coarse_deviation.get(str(r["problem_id"])),
            "fine_gap": selection.fine_gap.get(str(r["problem_id"])),
            "kept": str(r["problem_id"]) in selection.kept,
        } for r in rows
    }
    report = atomic_write_json(out_dir / "csm_report.json", {
        "source": str(source), "settings": asdict(opts.csm), "conditions": list(CONDITIONS),
        "summary": summary, "samples": per_sample,
    })
    histogram = histogram_png(selection, opts.csm, out_dir / "csm_histogram.png")
    return CSMResult(selected_json, selected_parquet, report, histogram, summary)


@dataclass(frozen=True)
class PoolReport:
    """What a CSM report says about candidate samples: ranking scores and the ids CSM rejected."""

    scores: dict[str, float]
    rejected: frozenset


def load_report(path: str | os.PathLike) -> PoolReport:
    """A CSM report as ECR's pool ranking: ``rank_score`` of each coarse deviation (the report's own side rule,
    the same rule ``live_rescorer`` uses) and the samples the report did not keep."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        side = (data.get("settings") or {}).get("coarse_side", "both")
        samples = data["samples"]
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: not a CSM report (`egoforge select csm` writes csm_report.json): {exc!r}") from exc
    scores = {str(k): rank_score(float(v["coarse_deviation"]), side) for k, v in samples.items()
              if v.get("coarse_deviation") is not None}
    rejected = frozenset(str(k) for k, v in samples.items() if v.get("kept") is False)
    return PoolReport(scores, rejected)


def load_report_scores(path: str | os.PathLike) -> dict[str, float]:
    """problem_id -> ranking score from a CSM report (see ``load_report``)."""
    return load_report(path).scores


def live_rescorer(sampler, samples: dict[str, dict], root: str | os.PathLike, opts: CSMRunOptions = CSMRunOptions(),
                  limit: int | None = 32) -> Callable[[list[str]], dict[str, float]]:
    """An ECR ``rescore``: CSM's coarse test with the *current* policy on the first ``limit`` pool candidates.

    Each candidate is answered G times with and without its clip; its score is the deviation of the
    video-minus-text reward gap from the candidates' mean (``abs`` for the two-sided rule), so samples that need
    the video most come in first. Candidates beyond ``limit`` keep their pool order behind them.
    """
    root = Path(root)

    def rescore(pool_ids: list[str]) -> dict[str, float]:
        rows = [samples[i] for i in pool_ids[:limit]]
        means: dict[str, dict[str, float]] = {}
        for condition in ("text", "video"):
            requests = [_request(r, condition, root, opts) for r in rows]
            for row, texts in zip(rows, sampler.generate(requests)):
                formats, accuracies = response_rewards(texts, row["solution"], row["problem_type"])
                means.setdefault(condition, {})[str(row["problem_id"])] = mean_total_reward(formats, accuracies)
        _, deviation, _ = coarse_select(means.get("text", {}), means.get("video", {}), opts.csm)
        return {k: rank_score(d, opts.csm.coarse_side) for k, d in deviation.items()}

    return rescore
