"""The optimisation loop shared by EgoM2P's trainers, on HF accelerate.

One process or many: launched plainly, with ``torchrun``, or with ``accelerate launch`` (any number of GPUs and
nodes), ``accelerate.Accelerator`` picks the setting up from the environment and wraps the model in DDP. Every rank
reads its own part of the data (the trainers shard by rank), so no sampler is prepared here.

Checkpoints (``output_dir/checkpoint-<step>/``) hold the model as safetensors, the AdamW state (loaded back with
``torch.load(weights_only=True)``) and ``trainer_state.json``. Nothing else is needed to resume exactly: the
learning rate is a pure function of the step, the global torch RNG is re-seeded from (seed, step, rank) before
every step, and the data streams are deterministic and replayed up to the step (see ``shards.MixtureBatches``).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from egoforge.data.atomic import atomic_dir, atomic_write_bytes
from egoforge.egom2p.schedule import lr_at


@dataclass
class OptimConfig:
    blr: float = 1e-4  # base lr: absolute lr = blr * global batch / 256
    min_blr: float = 0.0
    warmup_start_lr: float = 0.0  # absolute lr at step 0 of the warm-up
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    clip_grad: float | None = 1.0


@dataclass
class RunConfig:
    output_dir: str = "runs/egom2p"
    seed: int = 0
    batch_size: int = 4  # per device
    gradient_accumulation_steps: int = 1
    mixed_precision: str | bool = "no"  # "no", "bf16" or "fp16" (accelerate); YAML's bare `no` reads as False
    max_steps: int | None = None  # stop early (tests, smoke runs); the schedule keeps its full length
    save_steps: int = 1000
    save_total_limit: int = 2
    logging_steps: int = 10
    resume: str = "auto"  # "auto" (latest checkpoint in output_dir), "none", or a checkpoint folder
    progress: bool = True


@dataclass
class Schedule:
    total_steps: int
    warmup_steps: int
    peak_lr: float
    min_lr: float
    warmup_start_lr: float
    tokens_per_step: int = 0  # for logging "tokens seen"

    def lr(self, step: int) -> float:
        return lr_at(step, self.peak_lr, self.total_steps, self.warmup_steps, self.min_lr, self.warmup_start_lr)


def make_accelerator(run: RunConfig):
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    precision = "no" if run.mixed_precision in (False, None, "no") else str(run.mixed_precision)
    return Accelerator(mixed_precision=precision, dataloader_config=DataLoaderConfiguration())


def param_groups(model: nn.Module, weight_decay: float, no_decay: set[str] | None = None) -> list[dict]:
    no_decay = no_decay if no_decay is not None else {n for n, p in model.named_parameters() if p.ndim < 2}
    decay, skip = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (skip if name in no_decay else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": skip, "weight_decay": 0.0}]


# ---- checkpoints ----

def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = [p for p in Path(output_dir).glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None


def resolve_resume(run: RunConfig) -> Path | None:
    if run.resume in ("none", "", None):
        return None
    if run.resume == "auto":
        return latest_checkpoint(run.output_dir)
    path = Path(run.resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"resume: {path} is not a checkpoint folder (no trainer_state.json)")
    return path


def save_state_dict(module: nn.Module, path: Path) -> None:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(path, save(state))


def load_state_dict(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path)))


def _save_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from safetensors.torch import save_file

    with atomic_dir(folder) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")


def _rotate(output_dir: Path, keep: int) -> None:
    found = sorted((p for p in output_dir.glob("checkpoint-*") if p.is_dir()),
                   key=lambda p: int(p.name.split("-")[-1]))
    for old in found[: max(0, len(found) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def plot_losses(log_path: Path, png_path: Path, title: str) -> Path | None:
    """Loss (and per-part losses) against steps from ``log.jsonl``, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = log_path.read_text().splitlines() if log_path.exists() else []
    rows = [r for r in (json.loads(line) for line in lines if line.strip()) if "loss" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    keys = ["loss"] + sorted({k for r in rows for k in r if k.startswith("loss_")})
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*pts), label=key, linewidth=1.5 if key == "loss" else 1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(png_path)
    return png_path


# ---- the loop ----

def fit(run: RunConfig, optim: OptimConfig, model: nn.Module, schedule: Schedule,
        micro_batches: Callable[[int, Any], Iterator[Any]], loss_fn: Callable[[nn.Module, Any], tuple],
        save_final: Callable[[nn.Module, Path], None], config_record: dict, name: str,
        evaluate: Callable[[nn.Module], dict] | None = None, eval_steps: int = 0,
        no_decay: set[str] | None = None) -> dict:
    """Train ``model`` for ``schedule.total_steps`` (or ``run.max_steps``) optimizer steps.

    ``micro_batches(start, accelerator)`` yields micro-batches starting at micro-batch index ``start`` for this rank;
    ``loss_fn(model, batch)`` returns (loss, {name: float}). Returns the final logged record.
    """
    accelerator = make_accelerator(run)
    output_dir = Path(run.output_dir)
    resume_from = resolve_resume(run)
    start_step, tokens_seen = 0, 0
    if resume_from is not None:
        state = json.loads((resume_from / "trainer_state.json").read_text())
        expected = {"world_size": accelerator.num_processes, "batch_size": run.batch_size,
                    "gradient_accumulation_steps": run.gradient_accumulation_steps, "seed": run.seed}
        differs = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if differs and accelerator.is_main_process:
            print(f"warning: resuming {resume_from} with a different {differs} (checkpoint, now): the data order "
                  "will not continue exactly")
        load_state_dict(model, resume_from / "model.safetensors")
        start_step, tokens_seen = int(state["step"]), int(state.get("tokens_seen", 0))
    optimizer = torch.optim.AdamW(param_groups(model, optim.weight_decay, no_decay), lr=schedule.peak_lr,
                                  betas=tuple(optim.betas), eps=optim.eps)
    if resume_from is not None:
        optimizer.load_state_dict(torch.load(resume_from / "optimizer.pt", map_location="cpu", weights_only=True))
    model, optimizer = accelerator.prepare(model, optimizer)
    end_step = min(schedule.total_steps, run.max_steps) if run.max_steps else schedule.total_steps
    accum = run.gradient_accumulation_steps
    batches = micro_batches(start_step * accum, accelerator)
    log_path = output_dir / "log.jsonl"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(output_dir / "recipe_resolved.json", json.dumps(config_record, indent=2).encode())
    from tqdm import tqdm

    bar = tqdm(total=end_step, initial=start_step, desc=name, disable=not (run.progress and
                                                                           accelerator.is_local_main_process))
    record: dict = {}
    window: list[dict] = []
    started = time.perf_counter()
    for step in range(start_step, end_step):
        lr = schedule.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # Re-seed per step so anything drawing from the global RNG (VQ restarts) replays exactly on resume.
        torch.manual_seed((run.seed * 1_000_003 + step) * 4099 + accelerator.process_index)
        logs: dict[str, float] = {}
        for micro in range(accum):
            batch = next(batches)
            sync = accelerator.no_sync(model) if micro < accum - 1 and accelerator.num_processes > 1 else nullcontext()
            with sync, accelerator.autocast():
                loss, parts = loss_fn(model, batch)
                accelerator.backward(loss / accum)
            logs["loss"] = logs.get("loss", 0.0) + float(loss.detach()) / accum
            for key, value in parts.items():
                logs[key] = logs.get(key, 0.0) + float(value) / accum
        if optim.clip_grad:
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), optim.clip_grad)
            logs["grad_norm"] = float(grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += schedule.tokens_per_step
        window.append(logs)
        bar.update(1)
        done = step + 1
        if done % max(1, run.logging_steps) == 0 or done == end_step:
            record = {"step": done, "lr": lr, "tokens_seen": tokens_seen,
                      "elapsed_s": round(time.perf_counter() - started, 3)}
            for key in sorted({k for w in window for k in w}):
                values = [w[key] for w in window if key in w]
                record[key] = sum(values) / len(values)
            window = []
            if accelerator.num_processes > 1:  # the logged loss is the mean over ranks (per-part losses: rank 0)
                mean = accelerator.reduce(torch.tensor(record["loss"], device=accelerator.device), "mean")
                record["loss"] = float(mean)
            if evaluate is not None and eval_steps and (done % eval_steps == 0 or done == end_step):
                record.update(evaluate(accelerator.unwrap_model(model)))
            if accelerator.is_main_process:
                with open(log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
        if done % max(1, run.save_steps) == 0 or done == end_step:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                state = {"step": done, "tokens_seen": tokens_seen, "total_steps": schedule.total_steps,
                         "world_size": accelerator.num_processes, "batch_size": run.batch_size,
                         "gradient_accumulation_steps": accum, "seed": run.seed}
                _save_checkpoint(output_dir / f"checkpoint-{done}", accelerator.unwrap_model(model), optimizer, state)
                _rotate(output_dir, run.save_total_limit)
    bar.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_final(accelerator.unwrap_model(model), output_dir)
        plot_losses(log_path, output_dir / "loss.png", name)
    accelerator.end_training()
    return record


def epochs_to_steps(epochs: float, samples: int, global_batch: int) -> int:
    return max(1, math.ceil(epochs * samples / global_batch))
