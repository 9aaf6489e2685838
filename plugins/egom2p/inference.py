"""The four EgoM2P tasks end to end on prepared clips: tokenize the condition, ROAR-decode the target, detokenize,
score against the clip's ground truth and write the predictions and a report.

Outputs in ``out``: ``<dataset>/<clip>/<target>.npy`` (the prediction in the clip format), ``results.json`` (mean and
per-clip metrics, settings), ``results.md`` (units in the headers; rgb2cam adds a static-camera baseline row) and
``preview.png`` (ground truth and prediction of the first clip, titled, with units, paired by colour).
Depth is scored against ``depth_metric.npy`` when the clip has it (else the normalised depth) after scale-shift
alignment; the camera in the clip's canonical frame after Sim(3) alignment; gaze over the valid samples.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from egoforge.data.atomic import atomic_write_json, atomic_write_text
from egoforge.egom2p.clips import has_modality, list_clips, load_clip
from egoforge.egom2p.generate import TASKS, GenerationConfig, roar_generate
from egoforge.egom2p.geometry import canonicalize
from egoforge.egom2p.metrics import camera_metrics, depth_metrics, gaze_l2, psnr
from egoforge.train.loss_log import save_figure

# the unit of each metric, shown in results.md's headers and read by people comparing runs
METRIC_UNITS = {"ate": "m", "rpe_trans": "m", "rpe_rot_deg": "°", "scale": "×", "abs_rel": "ratio",
                "delta1": "fraction", "gaze_l2": "crop coordinates, 0..1", "psnr": "dB"}


def metric_header(key: str) -> str:
    """``ate (m)``: a metric's name with its unit (a key without a known unit is shown as it is)."""
    return f"{key} ({METRIC_UNITS[key]})" if key in METRIC_UNITS else key


def static_camera_baseline(clip: Path) -> dict[str, float]:
    """rgb2cam's reference: every pose predicted as the first one (a camera that never moves), scored like a model."""
    gt = canonicalize(load_clip(clip, "cam"))
    return camera_metrics(np.broadcast_to(np.eye(4), gt.shape).copy(), gt)


def results_table(task: str, clips: int, mean: dict[str, float], baseline: dict[str, float] | None = None) -> str:
    """results.md: one row for the model and, where the task has one, one for its baseline; units in the header."""
    keys = sorted(mean)
    rows = ["| row | task | clips | " + " | ".join(metric_header(k) for k in keys) + " |",
            "|---|---|---|" + "---|" * len(keys),
            f"| model | {task} | {clips} | " + " | ".join(f"{mean[k]:.4f}" for k in keys) + " |"]
    if baseline:
        rows.append(f"| static camera (baseline) | {task} | {clips} | "
                    + " | ".join(f"{baseline[k]:.4f}" if k in baseline else "" for k in keys) + " |")
    return "\n".join(rows) + "\n"


def score(task: str, clip: Path, prediction: np.ndarray) -> dict[str, float]:
    """Metrics of one predicted clip against the ground truth stored in the clip folder."""
    target = TASKS[task].target
    if target == "depth":
        metric = clip / "depth_metric.npy"
        gt = np.load(metric, allow_pickle=False).astype(np.float64) if metric.is_file() else load_clip(clip, "depth")
        return depth_metrics(prediction, gt)
    if target == "cam":
        return camera_metrics(prediction, canonicalize(load_clip(clip, "cam")))
    if target == "gaze":
        gt = load_clip(clip, "gaze")
        return {"gaze_l2": gaze_l2(prediction[:, :2], gt[:, :2], gt[:, 2] > 0.5)}
    gt = load_clip(clip, "rgb").astype(np.float64) / 255.0
    return {"psnr": psnr(prediction.astype(np.float64) / 255.0, gt)}


def run_task(model, tokenizers: dict, task: str, clips_root: str | Path, out: str | Path,
             gen: GenerationConfig | None = None, batch_size: int = 4, seed: int = 0, limit: int | None = None,
             progress: bool = True) -> dict:
    """Run ``task`` on every clip under ``clips_root`` that has its condition and target; returns results."""
    from tqdm import tqdm

    spec = TASKS[task]
    gen = gen or GenerationConfig(steps=spec.steps)
    clips = [c for c in list_clips(clips_root) if all(has_modality(c, m) for m in (*spec.conditions, spec.target))]
    if limit:
        clips = clips[:limit]
    if not clips:
        raise FileNotFoundError(f"{clips_root}: no clips with {', '.join(spec.conditions)} and {spec.target}")
    out = Path(out)
    generator = torch.Generator().manual_seed(seed)
    per_clip: dict[str, dict] = {}
    first: tuple[Path, np.ndarray] | None = None
    for start in tqdm(range(0, len(clips), batch_size), desc=task, disable=not progress):
        chunk = clips[start: start + batch_size]
        conditions = {}
        for m in spec.conditions:
            tokens = tokenizers[m].encode(np.stack([load_clip(c, m) for c in chunk]))
            conditions[m] = torch.from_numpy(tokens.reshape(len(chunk), -1).astype(np.int64))
        decoded = roar_generate(model, conditions, spec.target, gen, generator).cpu().numpy()
        grid = tuple(model.table[spec.target].token_grid)
        predictions = tokenizers[spec.target].decode(decoded.reshape(len(chunk), *grid))
        for clip, prediction in zip(chunk, predictions):
            folder = out / clip.parent.name / clip.name
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{spec.target}.npy", prediction)
            per_clip[f"{clip.parent.name}/{clip.name}"] = score(task, clip, prediction)
            first = first or (clip, prediction)
    mean = _mean(per_clip)
    baseline = _mean({c.name: static_camera_baseline(c) for c in clips}) if spec.target == "cam" else None
    results = {"task": task, "clips": len(per_clip), "mean": mean, "generation": asdict(gen), "seed": seed,
               "per_clip": per_clip, **({"static_camera_baseline": baseline} if baseline else {})}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", results_table(task, len(per_clip), mean, baseline))
    if first is not None:
        fig = preview_figure(task, f"{first[0].parent.name}/{first[0].name}", load_clip(first[0], spec.target),
                             first[1])
        save_figure(fig, out / "preview.png", dpi=110)
    return results


def _mean(per_clip: dict[str, dict]) -> dict[str, float]:
    keys = sorted({k for metrics in per_clip.values() for k in metrics})
    return {k: float(np.mean([m[k] for m in per_clip.values() if k in m])) for k in keys}


def preview_figure(task: str, clip: str, gt: np.ndarray, pred: np.ndarray):
    """The first clip's ground truth and prediction: three frames of each (video, rows labelled) or one curve per
    coordinate in which ground truth (solid) and prediction (dashed) share a colour (gaze, camera), with units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = TASKS[task].target
    title = f"EgoM2P {task} on {clip}: ground truth vs prediction"
    if target in ("rgb", "depth"):
        fig, axes = plt.subplots(2, 3, figsize=(9, 6.4))
        for row, (name, video) in enumerate((("ground truth", gt), ("prediction", pred))):
            for col, index in enumerate((0, len(video) // 2, len(video) - 1)):
                ax = axes[row, col]
                ax.imshow(video[index], cmap=None if target == "rgb" else "magma", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"frame {index}", fontsize=9)
                if col == 0:
                    ax.set_ylabel(name, fontsize=11)
        if target == "depth":
            fig.colorbar(axes[0, 0].images[0], ax=axes, shrink=0.6, label="depth (normalised)")
    else:
        fig, ax = plt.subplots(figsize=(8, 4))
        if target == "gaze":
            names, truth, guess = "xy", gt[:, :2], pred[:, :2]
            ax.set_ylabel("gaze position (crop coordinates, 0..1)")
        else:
            names, truth, guess = "xyz", canonicalize(gt)[:, :3, 3], canonicalize(pred)[:, :3, 3]
            ax.set_ylabel("camera position (m, first-frame axes)")
        for k, name in enumerate(names):
            ax.plot(truth[:, k], "-", color=f"C{k}", linewidth=2, label=f"{name} ground truth")
            ax.plot(guess[:, k], "--", color=f"C{k}", linewidth=1.5, label=f"{name} prediction")
        ax.set_xlabel("sample (30 Hz)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.suptitle(title, fontsize=11)
    if target not in ("rgb", "depth"):
        fig.tight_layout()
    return fig


def load_pipeline(model_dir: str | Path, tokenizer_dirs: dict[str, str | Path], task: str, device: str = "cpu"):
    """(model, {modality: tokenizer}) for a task, with errors naming what is missing."""
    from egoforge.egom2p.tokenizers import load_tokenizer
    from egoforge.egom2p.train_model import load_model

    spec = TASKS[task]
    model = load_model(model_dir, device)
    tokenizers = {}
    for m in (*spec.conditions, spec.target):
        if m not in tokenizer_dirs:
            raise ValueError(f"task {task} needs a {m} tokenizer: pass --tokenizer {m}=FOLDER")
        tok = load_tokenizer(tokenizer_dirs[m], m, device)
        want = model.table[m]
        if getattr(tok, "vocab_size", None) != want.vocab_size:
            raise ValueError(f"{tokenizer_dirs[m]}: {m} tokenizer has {tok.vocab_size} codes, the model expects "
                             f"{want.vocab_size}")
        tokenizers[m] = tok
    return model, tokenizers


def results_json(results: dict) -> str:
    return json.dumps({k: v for k, v in results.items() if k != "per_clip"}, indent=2)
