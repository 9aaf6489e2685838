"""The four EgoM2P tasks end to end on prepared clips: tokenize the condition, ROAR-decode the target, detokenize,
score against the clip's ground truth and write the predictions and a report.

Outputs in ``out``: ``<dataset>/<clip>/<target>.npy`` (the prediction in the clip format), ``results.json`` (mean and
per-clip metrics, settings), ``results.md`` and ``preview.png`` (ground truth above prediction for the first clip).
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
    keys = sorted({k for metrics in per_clip.values() for k in metrics})
    mean = {k: float(np.mean([m[k] for m in per_clip.values() if k in m])) for k in keys}
    results = {"task": task, "clips": len(per_clip), "mean": mean, "generation": asdict(gen), "seed": seed,
               "per_clip": per_clip}
    atomic_write_json(out / "results.json", results)
    table = ["| task | clips | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys),
             f"| {task} | {len(per_clip)} | " + " | ".join(f"{mean[k]:.4f}" for k in keys) + " |"]
    atomic_write_text(out / "results.md", "\n".join(table) + "\n")
    if first is not None:
        _preview(out / "preview.png", spec.target, load_clip(first[0], spec.target), first[1])
    return results


def _preview(path: Path, target: str, gt: np.ndarray, pred: np.ndarray) -> None:
    """Ground truth above prediction: three frames for video, x/y (gaze) or positions (camera) curves for traj."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    video = target in ("rgb", "depth")
    fig, axes = plt.subplots(2, 3, figsize=(7.5, 5)) if video else plt.subplots(1, 1, figsize=(6, 3.5))
    if video:
        for row, video in enumerate((gt, pred)):
            for col, index in enumerate((0, len(video) // 2, len(video) - 1)):
                ax = axes[row, col]
                ax.imshow(video[index], cmap=None if target == "rgb" else "magma")
                ax.set_axis_off()
                ax.set_title(f"{'ground truth' if row == 0 else 'prediction'} t={index}", fontsize=8)
    elif target == "gaze":
        for series, style in ((gt, "-"), (pred, "--")):
            axes.plot(series[:, 0], style, label="x " + ("gt" if style == "-" else "pred"))
            axes.plot(series[:, 1], style, label="y " + ("gt" if style == "-" else "pred"))
        axes.set_xlabel("sample (30 Hz)")
        axes.legend(fontsize=7)
    else:
        gt_pos = canonicalize(gt)[:, :3, 3]
        for k, name in enumerate("xyz"):
            axes.plot(gt_pos[:, k], "-", label=f"{name} gt")
            axes.plot(pred[:, :3, 3][:, k], "--", label=f"{name} pred")
        axes.set_xlabel("sample (30 Hz)")
        axes.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


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
