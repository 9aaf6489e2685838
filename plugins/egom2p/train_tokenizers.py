"""Tokenizer training on prepared clips: the camera / gaze VQ-VAEs and egoforge's FSQ video tokenizer.

One trainer, :func:`train_tokenizer`, runs both: it reads clip folders written by ``egoforge egom2p prepare``
(``data.clips``: roots holding ``<dataset>/<clip>/``), holds out ``data.val_fraction`` of the clips (chosen by a hash
of the clip key, so stable across runs), samples micro-batches deterministically from (seed, rank, micro-batch
index) and runs the shared accelerate loop; a job class per tokenizer (:class:`TrajJob`, :class:`VideoJob`) supplies
the data, model, loss, evaluation and final save. The output
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
from egoforge.egom2p.loop import OptimConfig, Pipeline, RunConfig, Schedule, fit
from egoforge.egom2p.schedule import absolute_lr
from egoforge.train.loop import steps_plan
from egoforge.train.recipe import build_config
from egoforge.train.steps import epochs_to_steps, global_batch


@dataclass
class ClipData:
    clips: list[str] = field(default_factory=lambda: ["data/egom2p/clips"])
    datasets: list[str] | None = None  # None: every dataset folder under the roots
    val_fraction: float = 0.05
    max_clips: int | None = None


def _traj_optim() -> OptimConfig:  # official tokenizer config: AdamW (0.9, 0.99), warm-up from 1e-6, clip 1
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


def guarded(kind: str, recipe: dict, dry_run: bool) -> int:
    """Train the ``kind`` tokenizer; missing or malformed clips end with a message and exit status 1."""
    from egoforge.egom2p.clips import ClipDataError

    try:
        return train_tokenizer(kind, recipe, dry_run)
    except (FileNotFoundError, ClipDataError) as exc:
        print(f"egoforge train: {exc}", file=sys.stderr)
        return 1


def _batch_indices(seed: int, rank: int, micro: int, n: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([seed, rank, micro])
    return rng.choice(n, size=size, replace=n < size)


def _write_metrics(folder: Path, metrics: dict) -> None:
    atomic_write_json(folder / "metrics.json", metrics)


# ---- the one tokenizer trainer ----

def _epoch_schedule(cfg, samples: int, num_processes: int) -> tuple[int, Schedule]:
    """Global batch and the epoch-based warm-up/cosine schedule of a tokenizer recipe (lr scaled by batch)."""
    batch = global_batch(cfg.batch_size, cfg.gradient_accumulation_steps, num_processes)
    warmup = epochs_to_steps(cfg.warmup_epochs, samples, batch) if cfg.warmup_epochs else 0
    schedule = Schedule(total_steps=epochs_to_steps(cfg.epochs, samples, batch), warmup_steps=warmup,
                        peak_lr=absolute_lr(cfg.optim.blr, batch), min_lr=absolute_lr(cfg.optim.min_blr, batch),
                        warmup_start_lr=cfg.optim.warmup_start_lr)
    return batch, schedule


def train_tokenizer(kind: str, recipe: dict, dry_run: bool = False) -> int:
    """Train the ``kind`` tokenizer (``traj`` or ``video``) of a recipe; ``dry_run`` prints the plan only."""
    from accelerate import PartialState

    job_cls = JOBS[kind]
    cfg = build_config(job_cls.config_cls, recipe)
    job = job_cls(cfg)
    state = PartialState()
    batch, schedule = _epoch_schedule(cfg, job.samples, state.num_processes)
    summary = job.summary(batch, schedule)
    if dry_run or state.is_main_process:
        print(summary)
    if dry_run:
        return 0
    job.load()

    def micro_batches(start: int, accelerator):
        micro = start
        while True:
            idx = _batch_indices(cfg.seed, state.process_index, micro, job.samples, cfg.batch_size)
            micro += 1
            yield job.batch(idx, accelerator.device)

    pipeline = Pipeline(micro_batches, job.loss_fn, job.save_final, job.evaluate,
                        eval_steps=cfg.eval_steps or cfg.logging_steps)
    fit(cfg, cfg.optim, job.model, schedule, pipeline, config_record={**asdict(cfg), "tokenizer": asdict(job.tcfg)},
        name=job.name)
    return 0


class TrajJob:
    """The camera / gaze VQ-VAE: whole clips as feature sequences, normalised by the training clips' statistics."""

    config_cls = TrajTrainConfig

    def __init__(self, cfg: TrajTrainConfig) -> None:
        from egoforge.egom2p.traj_tokenizer import TrajTokenizerConfig

        self.cfg = cfg
        self.tcfg = build_config(TrajTokenizerConfig, cfg.tokenizer, "recipe.tokenizer")
        self.modality = self.tcfg.modality
        self.train_dirs, self.val_dirs = split_clips(cfg.data, self.modality)
        self.samples, self.name = len(self.train_dirs), f"{self.modality} tokenizer"
        self.use_mask = self.modality == "gaze"

    def summary(self, batch: int, schedule: Schedule) -> str:
        return (f"{self.modality} tokenizer: {len(self.train_dirs)} train / {len(self.val_dirs)} val clips, global "
                f"batch {batch}, lr {schedule.peak_lr:.3g}, "
                f"{steps_plan(schedule.total_steps, self.cfg.max_steps, schedule.lr)}")

    def _features(self, dirs: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        from egoforge.egom2p.traj_tokenizer import clip_features

        return clip_features(self.modality, np.stack([load_clip(d, self.modality) for d in dirs]))

    def load(self) -> None:
        from egoforge.egom2p.traj_tokenizer import TrajectoryVQVAE, fit_statistics

        train_x, train_valid = self._features(self.train_dirs)
        self.val_x, self.val_valid = self._features(self.val_dirs)
        torch.manual_seed(self.cfg.seed)
        self.model = TrajectoryVQVAE(self.tcfg)
        self.model.set_statistics(*fit_statistics(self.modality, train_x, train_valid, self.cfg.normalization))
        self.tx, self.tm = self.model.normalize(torch.from_numpy(train_x)), torch.from_numpy(train_valid)
        self.vx, self.vm = self.model.normalize(torch.from_numpy(self.val_x)), torch.from_numpy(self.val_valid)

    def batch(self, idx: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.from_numpy(idx)
        return self.tx[idx].to(device), self.tm[idx].to(device)

    def loss_fn(self, model, batch):
        from egoforge.egom2p.traj_tokenizer import vq_loss

        x, mask = batch  # through the (possibly DDP-wrapped) forward so gradients are reduced
        mask = mask if self.use_mask else None
        return vq_loss(*model(x, mask), x, mask)

    def evaluate(self, module) -> dict:
        from egoforge.egom2p.traj_tokenizer import reconstruction_error

        device = next(module.parameters()).device
        err = reconstruction_error(module, self.vx.to(device), self.vm.to(device) if self.use_mask else None)
        usage = module.quantizer.cluster_size.gt(1e-3).float().mean().item()
        return {"val_recon_mse": err, "codebook_usage": usage}

    def save_final(self, module, out: Path) -> None:
        from egoforge.egom2p.metrics import camera_metrics, gaze_l2
        from egoforge.egom2p.traj_tokenizer import features_to_clips, reconstruction_error, save_traj_tokenizer

        save_traj_tokenizer(module, out)
        mask = self.vm if self.use_mask else None
        with torch.no_grad():
            recon = module.denormalize(module.decode(module.encode(self.vx, mask))).numpy()
        clips, gt = features_to_clips(self.modality, recon), features_to_clips(self.modality, self.val_x)
        metrics = {"val_clips": len(self.val_dirs), "val_recon_mse": reconstruction_error(module, self.vx, mask)}
        if self.modality == "cam":
            per = [camera_metrics(p, g, align="none") for p, g in zip(clips, gt)]
            metrics.update({f"val_{k}": float(np.mean([m[k] for m in per]))
                            for k in ("ate", "rpe_trans", "rpe_rot_deg")})
        else:
            metrics["val_gaze_l2"] = gaze_l2(clips[..., :2], gt[..., :2], self.val_valid)
        _write_metrics(out, metrics)
        print(json.dumps(metrics))


class VideoJob:
    """egoforge's FSQ video autoencoder on rgb / depth clips, loaded per micro-batch."""

    config_cls = VideoTrainConfig
    name = "video tokenizer"

    def __init__(self, cfg: VideoTrainConfig) -> None:
        from egoforge.egom2p.video_tokenizer import VideoTokenizerConfig

        self.cfg = cfg
        self.tcfg = build_config(VideoTokenizerConfig, cfg.tokenizer, "recipe.tokenizer")
        self.items, self.val_items = [], []
        for modality in cfg.modalities:
            if modality not in ("rgb", "depth"):
                raise ValueError(f"recipe.modalities: {modality!r} is not a video modality (rgb, depth)")
            train_dirs, val_dirs = split_clips(cfg.data, modality)
            self.items += [(d, modality) for d in train_dirs]
            self.val_items += [(d, modality) for d in val_dirs]
        probe = load_clip(*self.items[0])
        if probe.shape[0] != self.tcfg.frames or probe.shape[1] != self.tcfg.size:
            raise ValueError(f"{self.items[0][0]}: clips are {probe.shape[0]} frames at {probe.shape[1]} px but "
                             f"recipe.tokenizer says {self.tcfg.frames} frames at {self.tcfg.size} px")
        self.samples = len(self.items)

    def summary(self, batch: int, schedule: Schedule) -> str:
        return (f"video tokenizer: {len(self.items)} train clips ({', '.join(self.cfg.modalities)}), grid "
                f"{self.tcfg.token_grid}, vocabulary {self.tcfg.vocab_size}, global batch {batch}, "
                f"{steps_plan(schedule.total_steps, self.cfg.max_steps, schedule.lr)}")

    def load(self) -> None:
        from egoforge.egom2p.video_tokenizer import FSQVideoAutoencoder

        torch.manual_seed(self.cfg.seed)
        self.model = FSQVideoAutoencoder(self.tcfg)

    @staticmethod
    def _tensor(folder: Path, modality: str) -> torch.Tensor:
        from egoforge.egom2p.video_tokenizer import video_to_tensor

        return video_to_tensor(load_clip(folder, modality)[None], modality)

    def batch(self, idx: np.ndarray, device) -> torch.Tensor:
        return torch.cat([self._tensor(*self.items[i]) for i in idx]).to(device)

    def loss_fn(self, model, x):
        recon, _ = model(x)
        mse, l1 = torch.nn.functional.mse_loss(recon, x), torch.nn.functional.l1_loss(recon, x)
        return mse + l1, {"recon_mse": float(mse.detach()), "l1": float(l1.detach())}

    def evaluate(self, module) -> dict:
        from egoforge.egom2p.metrics import psnr

        device = next(module.parameters()).device
        scores = []
        for folder, modality in self.val_items[:16]:
            x = self._tensor(folder, modality).to(device)
            with torch.no_grad():
                recon = module.decode(module.encode(x))
            scores.append(psnr((recon.clamp(-1, 1).cpu().numpy() + 1) / 2, (x.cpu().numpy() + 1) / 2))
        return {"val_psnr": float(np.mean(scores))}

    def save_final(self, module, out: Path) -> None:
        from egoforge.egom2p.video_tokenizer import save_video_tokenizer, tensor_to_video, video_to_tensor

        save_video_tokenizer(module, out, self.cfg.modalities[0])
        metrics = {"val_clips": len(self.val_items), **self.evaluate(module)}
        folder, modality = self.val_items[0]
        sample = load_clip(folder, modality)
        with torch.no_grad():
            recon = tensor_to_video(module.decode(module.encode(video_to_tensor(sample[None], modality))), modality)[0]
        _save_preview(out / "reconstruction.png", modality, sample, recon, f"{folder.parent.name}/{folder.name}")
        _write_metrics(out, metrics)
        print(json.dumps(metrics))


JOBS = {"traj": TrajJob, "video": VideoJob}


def reconstruction_figure(modality: str, clip: np.ndarray, recon: np.ndarray, where: str = ""):
    """First / middle / last frame of a held-out clip (row "original") above the tokenizer's reconstruction (row
    "reconstruction"), each frame shown large with nearest-neighbour pixels and its PSNR in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from egoforge.egom2p.metrics import psnr

    def shown(frame: np.ndarray) -> np.ndarray:
        return frame if frame.ndim == 3 else np.clip(frame, 0, 1)

    scale = 255.0 if clip.ndim == 4 else 1.0
    picks = [0, len(clip) // 2, len(clip) - 1]
    height, width = clip.shape[1:3]
    fig, axes = plt.subplots(2, 3, figsize=(3 * max(2.6, 2.6 * width / height), 2 * 2.6 + 0.8))
    for row, (name, video) in enumerate((("original", clip), ("reconstruction", recon))):
        for col, index in enumerate(picks):
            ax = axes[row, col]
            ax.imshow(shown(video[index]), cmap=None if video.ndim == 4 else "magma", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {index}", fontsize=9)
            else:
                value = psnr(np.asarray(recon[index], np.float64) / scale, np.asarray(clip[index], np.float64) / scale)
                ax.set_title(f"frame {index}, PSNR {value:.1f} dB", fontsize=9)
            if col == 0:
                ax.set_ylabel(name, fontsize=11)
    fig.suptitle(f"{modality} tokenizer: held-out clip {where} ({width}x{height} px, upscaled)".replace("  ", " "),
                 fontsize=11)
    fig.tight_layout()
    return fig


def _save_preview(path: Path, modality: str, clip: np.ndarray, recon: np.ndarray, where: str = "") -> Path:
    """``reconstruction.png``: :func:`reconstruction_figure`, written atomically."""
    from egoforge.train.loss_log import save_figure

    return save_figure(reconstruction_figure(modality, clip, recon, where), path, dpi=100)
