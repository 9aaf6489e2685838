"""Tokenizer training on prepared clips: the camera / gaze VQ-VAEs and egoforge's FSQ video tokenizer.

Both read clip folders written by ``egoforge egom2p prepare`` (``data.clips``: roots holding ``<dataset>/<clip>/``),
hold out ``data.val_fraction`` of the clips (chosen by a hash of the clip key, so stable across runs), sample
micro-batches deterministically from (seed, rank, micro-batch index) and run the shared accelerate loop. The output
folder is the tokenizer (``config.json`` + ``model.safetensors``) plus ``log.jsonl``, ``loss.png``,
``metrics.json`` (held-out reconstruction error) and checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from egoforge.data.atomic import atomic_write_json
from egoforge.egom2p.clips import has_modality, list_clips, load_clip
from egoforge.egom2p.loop import OptimConfig, RunConfig, Schedule, epochs_to_steps, fit
from egoforge.egom2p.schedule import absolute_lr
from egoforge.train.recipe import build_config


@dataclass
class ClipData:
    clips: list[str] = field(default_factory=lambda: ["data/egom2p/clips"])
    datasets: list[str] | None = None  # None: every dataset folder under the roots
    val_fraction: float = 0.05
    max_clips: int | None = None


def _traj_optim() -> OptimConfig:  # papers.md 5.2: AdamW (0.9, 0.99), warm-up from 1e-6, clip 1.0
    return OptimConfig(blr=2.5e-5, betas=[0.9, 0.99], warmup_start_lr=1e-6, clip_grad=1.0)


@dataclass
class TrajTrainConfig(RunConfig):
    tokenizer: dict = field(default_factory=dict)  # TrajTokenizerConfig fields
    normalization: str = "fit"  # camera: "fit" (statistics of the training clips) or "egom2p" (paper constants)
    data: ClipData = field(default_factory=ClipData)
    optim: OptimConfig = field(default_factory=_traj_optim)
    epochs: float = 200
    warmup_epochs: float = 5
    eval_steps: int = 0  # 0: evaluate at logging steps that are also the last step only


@dataclass
class VideoTrainConfig(RunConfig):
    tokenizer: dict = field(default_factory=dict)  # VideoTokenizerConfig fields
    modalities: list[str] = field(default_factory=lambda: ["rgb", "depth"])
    data: ClipData = field(default_factory=ClipData)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(blr=1e-4, betas=[0.9, 0.95], clip_grad=1.0))
    epochs: float = 100
    warmup_epochs: float = 1
    eval_steps: int = 0


def split_clips(data: ClipData, modality: str) -> tuple[list[Path], list[Path]]:
    """(train, val) clip folders that contain ``modality``; val by a stable hash of the clip key."""
    folders: list[Path] = []
    for root in data.clips:
        for folder in list_clips(root):
            if data.datasets is not None and folder.parent.name not in data.datasets:
                continue
            if has_modality(folder, modality):
                folders.append(folder)
    if data.max_clips:
        folders = folders[: data.max_clips]
    if not folders:
        raise FileNotFoundError(f"no clips with {modality} under {data.clips} (run `egoforge egom2p prepare` first)")

    def bucket(p: Path) -> float:
        return int(hashlib.sha1(f"{p.parent.name}/{p.name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    val = [p for p in folders if bucket(p) < data.val_fraction]
    train = [p for p in folders if bucket(p) >= data.val_fraction] or folders
    return train, val or train[: max(1, len(train) // 10)]


def guarded(trainer, recipe: dict, dry_run: bool) -> int:
    """Run a tokenizer trainer; missing or malformed clips end with a message and exit status 1."""
    from egoforge.egom2p.clips import ClipDataError

    try:
        return trainer(recipe, dry_run)
    except (FileNotFoundError, ClipDataError) as exc:
        print(f"egoforge train: {exc}", file=sys.stderr)
        return 1


def _batch_indices(seed: int, rank: int, micro: int, n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([seed, rank, micro])
    return rng.choice(n, size=size, replace=n < size)


def _write_metrics(folder: Path, metrics: dict) -> None:
    atomic_write_json(folder / "metrics.json", metrics)


# ---- trajectory tokenizers ----

def _epoch_schedule(cfg, samples: int, num_processes: int) -> tuple[int, Schedule]:
    """Global batch and the epoch-based warm-up/cosine schedule of a tokenizer recipe (lr scaled by batch)."""
    global_batch = cfg.batch_size * cfg.gradient_accumulation_steps * num_processes
    warmup = epochs_to_steps(cfg.warmup_epochs, samples, global_batch) if cfg.warmup_epochs else 0
    schedule = Schedule(total_steps=epochs_to_steps(cfg.epochs, samples, global_batch), warmup_steps=warmup,
                        peak_lr=absolute_lr(cfg.optim.blr, global_batch),
                        min_lr=absolute_lr(cfg.optim.min_blr, global_batch),
                        warmup_start_lr=cfg.optim.warmup_start_lr)
    return global_batch, schedule


def train_traj(recipe: dict, dry_run: bool = False) -> int:
    from accelerate import PartialState

    from egoforge.egom2p.metrics import camera_metrics, gaze_l2
    from egoforge.egom2p.traj_tokenizer import (
        TrajectoryVQVAE,
        TrajTokenizerConfig,
        clip_features,
        features_to_clips,
        fit_statistics,
        reconstruction_error,
        save_traj_tokenizer,
        vq_loss,
    )

    cfg = build_config(TrajTrainConfig, recipe)
    tcfg = build_config(TrajTokenizerConfig, cfg.tokenizer, "recipe.tokenizer")
    modality = tcfg.modality
    train_dirs, val_dirs = split_clips(cfg.data, modality)
    state = PartialState()
    global_batch, schedule = _epoch_schedule(cfg, len(train_dirs), state.num_processes)
    total = schedule.total_steps
    summary = (f"{modality} tokenizer: {len(train_dirs)} train / {len(val_dirs)} val clips, global batch "
               f"{global_batch}, lr {schedule.peak_lr:.3g}, {total} steps")
    if dry_run:
        print(summary)
        return 0
    if state.is_main_process:
        print(summary)

    def load(dirs):
        feats, valid = clip_features(modality, np.stack([load_clip(d, modality) for d in dirs]))
        return feats, valid

    train_x, train_valid = load(train_dirs)
    val_x, val_valid = load(val_dirs)
    torch.manual_seed(cfg.seed)
    model = TrajectoryVQVAE(tcfg)
    model.set_statistics(*fit_statistics(modality, train_x, train_valid, cfg.normalization))
    tx = model.normalize(torch.from_numpy(train_x))
    tm = torch.from_numpy(train_valid)
    vx = model.normalize(torch.from_numpy(val_x))
    vm = torch.from_numpy(val_valid)
    use_mask = modality == "gaze"

    def micro_batches(start: int, accelerator):
        micro = start
        while True:
            idx = torch.from_numpy(_batch_indices(cfg.seed, state.process_index, micro, len(tx), cfg.batch_size))
            micro += 1
            yield tx[idx].to(accelerator.device), tm[idx].to(accelerator.device)

    def loss_fn(model, batch):
        x, mask = batch  # through the (possibly DDP-wrapped) forward so gradients are reduced
        return vq_loss(*model(x, mask if use_mask else None), x, mask if use_mask else None)

    def evaluate(module) -> dict:
        device = next(module.parameters()).device
        err = reconstruction_error(module, vx.to(device), vm.to(device) if use_mask else None)
        usage = module.quantizer.cluster_size.gt(1e-3).float().mean().item()
        return {"val_recon_mse": err, "codebook_usage": usage}

    def save_final(module, out: Path) -> None:
        save_traj_tokenizer(module, out)
        with torch.no_grad():
            recon = module.denormalize(module.decode(module.encode(vx, vm if use_mask else None))).numpy()
        clips = features_to_clips(modality, recon)
        gt = features_to_clips(modality, val_x)
        metrics = {"val_clips": len(val_dirs), "val_recon_mse": reconstruction_error(module, vx,
                                                                                      vm if use_mask else None)}
        if modality == "cam":
            per = [camera_metrics(p, g, align="none") for p, g in zip(clips, gt)]
            metrics.update({f"val_{k}": float(np.mean([m[k] for m in per])) for k in ("ate", "rpe_trans",
                                                                                       "rpe_rot_deg")})
        else:
            metrics["val_gaze_l2"] = gaze_l2(clips[..., :2], gt[..., :2], val_valid)
        _write_metrics(out, metrics)
        print(json.dumps(metrics))

    fit(cfg, cfg.optim, model, schedule, micro_batches, loss_fn, save_final=save_final,
        config_record={**asdict(cfg), "tokenizer": asdict(tcfg)}, name=f"{modality} tokenizer",
        evaluate=evaluate, eval_steps=cfg.eval_steps or cfg.logging_steps)
    return 0


# ---- video tokenizer ----

def train_video(recipe: dict, dry_run: bool = False) -> int:
    from accelerate import PartialState

    from egoforge.egom2p.metrics import psnr
    from egoforge.egom2p.video_tokenizer import (
        FSQVideoAutoencoder,
        VideoTokenizerConfig,
        save_video_tokenizer,
        tensor_to_video,
        video_to_tensor,
    )

    cfg = build_config(VideoTrainConfig, recipe)
    vcfg = build_config(VideoTokenizerConfig, cfg.tokenizer, "recipe.tokenizer")
    items, val_items = [], []
    for modality in cfg.modalities:
        if modality not in ("rgb", "depth"):
            raise ValueError(f"recipe.modalities: {modality!r} is not a video modality (rgb, depth)")
        train_dirs, val_dirs = split_clips(cfg.data, modality)
        items += [(d, modality) for d in train_dirs]
        val_items += [(d, modality) for d in val_dirs]
    probe = load_clip(items[0][0], items[0][1])
    if probe.shape[0] != vcfg.frames or probe.shape[1] != vcfg.size:
        raise ValueError(f"{items[0][0]}: clips are {probe.shape[0]} frames at {probe.shape[1]} px but "
                         f"recipe.tokenizer says {vcfg.frames} frames at {vcfg.size} px")
    state = PartialState()
    global_batch, schedule = _epoch_schedule(cfg, len(items), state.num_processes)
    total = schedule.total_steps
    summary = (f"video tokenizer: {len(items)} train clips ({', '.join(cfg.modalities)}), grid {vcfg.token_grid}, "
               f"vocabulary {vcfg.vocab_size}, global batch {global_batch}, {total} steps")
    if dry_run:
        print(summary)
        return 0
    if state.is_main_process:
        print(summary)

    def tensors(pairs) -> torch.Tensor:
        return torch.cat([video_to_tensor(load_clip(d, m)[None], m) for d, m in pairs])

    torch.manual_seed(cfg.seed)
    model = FSQVideoAutoencoder(vcfg)

    def micro_batches(start: int, accelerator):
        micro = start
        while True:
            idx = _batch_indices(cfg.seed, state.process_index, micro, len(items), cfg.batch_size)
            micro += 1
            yield tensors([items[i] for i in idx]).to(accelerator.device)

    def loss_fn(model, x):
        recon, _ = model(x)
        mse, l1 = torch.nn.functional.mse_loss(recon, x), torch.nn.functional.l1_loss(recon, x)
        return mse + l1, {"recon_mse": float(mse.detach()), "l1": float(l1.detach())}

    def evaluate(module) -> dict:
        device = next(module.parameters()).device
        scores = []
        for d, m in val_items[:16]:
            x = video_to_tensor(load_clip(d, m)[None], m).to(device)
            with torch.no_grad():
                recon = module.decode(module.encode(x))
            scores.append(psnr((recon.clamp(-1, 1).cpu().numpy() + 1) / 2, (x.cpu().numpy() + 1) / 2))
        return {"val_psnr": float(np.mean(scores))}

    def save_final(module, out: Path) -> None:
        save_video_tokenizer(module, out, cfg.modalities[0])
        metrics = {"val_clips": len(val_items), **evaluate(module)}
        sample = load_clip(*val_items[0])
        with torch.no_grad():
            recon = tensor_to_video(module.decode(module.encode(video_to_tensor(sample[None], val_items[0][1]))),
                                    val_items[0][1])[0]
        _save_preview(out / "reconstruction.png", sample, recon)
        _write_metrics(out, metrics)
        print(json.dumps(metrics))

    fit(cfg, cfg.optim, model, schedule, micro_batches, loss_fn, save_final=save_final,
        config_record={**asdict(cfg), "tokenizer": asdict(vcfg)}, name="video tokenizer", evaluate=evaluate,
        eval_steps=cfg.eval_steps or cfg.logging_steps)
    return 0


def _save_preview(path: Path, clip: np.ndarray, recon: np.ndarray) -> None:
    """First / middle / last frame of a clip above its reconstruction, as a PNG."""
    from PIL import Image

    def frames(video: np.ndarray) -> np.ndarray:
        picks = [0, len(video) // 2, len(video) - 1]
        rows = [video[i] if video.ndim == 4 else np.repeat((np.clip(video[i], 0, 1) * 255)[..., None], 3, -1)
                for i in picks]
        return np.concatenate([np.asarray(r, dtype=np.uint8) for r in rows], axis=1)

    grid = np.concatenate([frames(clip), frames(recon)], axis=0)
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(grid).save(tmp)
    tmp.replace(path)
