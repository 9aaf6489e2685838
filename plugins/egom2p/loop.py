"""The optimisation loop shared by EgoM2P's trainers, on egoforge's trainer base (``egoforge.train``).

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
from egoforge.train import checkpoints, param_groups
from egoforge.train.accelerator import make_accelerator
from egoforge.train.loop import StepTrainer, due
from egoforge.train.loss_log import plot_loss_log

STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
LOG_FILE = "log.jsonl"


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


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    return checkpoints.latest_checkpoint(output_dir, STATE_FILE)


def resolve_resume(run: RunConfig) -> Path | None:
    return checkpoints.resolve_resume(run.resume, run.output_dir, STATE_FILE)


def save_state_dict(module: nn.Module, path: Path) -> None:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(path, save(state))


def load_state_dict(module: nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(path)))


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global torch seed of ``step`` on ``rank``: anything drawing from it (VQ restarts) replays on resume."""
    return (seed * 1_000_003 + step) * 4099 + rank


@dataclass
class Pipeline:
    """What a trainer plugs into :func:`fit`: its data, loss, final save and (optional) evaluation."""

    micro_batches: Callable[[int, Any], Iterator[Any]]  # (first micro-batch index, accelerator) -> batches
    loss_fn: Callable[[nn.Module, Any], tuple]  # (model, batch) -> (loss, {name: float})
    save_final: Callable[[nn.Module, Path], None]
    evaluate: Callable[[nn.Module], dict] | None = None
    eval_steps: int = 0


class EgoM2PLoop(StepTrainer):
    """AdamW with a per-step learning rate, manual gradient accumulation (no DDP sync before the last
    micro-batch), clipping, and a log window averaged per key."""

    def __init__(self, run: RunConfig, optim: OptimConfig, model: nn.Module, schedule: Schedule, pipeline: Pipeline,
                 config_record: dict, name: str, no_decay: set[str] | None = None) -> None:
        self.run, self.optim, self.model, self.schedule = run, optim, model, schedule
        self.pipeline, self.config_record, self.name, self.no_decay = pipeline, config_record, name, no_decay

    def setup(self) -> None:
        run = self.run
        self.accelerator = accelerator = make_accelerator(run.mixed_precision)
        self.output_dir, self.log_path = Path(run.output_dir), Path(run.output_dir) / LOG_FILE
        self.logging_steps, self.save_steps = run.logging_steps, run.save_steps
        self.save_total_limit, self.progress = run.save_total_limit, run.progress
        full = self.schedule.total_steps
        self.total_steps = min(full, run.max_steps) if run.max_steps else full
        resume_from = resolve_resume(run)
        self.start_step, self.tokens_seen = 0, 0
        if resume_from is not None:
            self._resume_model(resume_from)
        exempt = param_groups.named(self.no_decay) if self.no_decay is not None else param_groups.below_2d
        optimizer = torch.optim.AdamW(param_groups.decay_groups(self.model, exempt, self.optim.weight_decay),
                                      lr=self.schedule.peak_lr, betas=tuple(self.optim.betas), eps=self.optim.eps)
        if resume_from is not None:
            checkpoints.load_optimizer_state(resume_from, optimizer)
        self.model, self.optimizer = accelerator.prepare(self.model, optimizer)
        self.batches = self.pipeline.micro_batches(self.start_step * run.gradient_accumulation_steps, accelerator)
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            record = json.dumps(self.config_record, indent=2).encode()
            atomic_write_bytes(self.output_dir / "recipe_resolved.json", record)
        self.started = time.perf_counter()

    def _resume_model(self, folder: Path) -> None:
        run = self.run
        state = json.loads((folder / STATE_FILE).read_text())
        expected = {"world_size": self.accelerator.num_processes, "batch_size": run.batch_size,
                    "gradient_accumulation_steps": run.gradient_accumulation_steps, "seed": run.seed}
        differs = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if differs and self.accelerator.is_main_process:
            print(f"warning: resuming {folder} with a different {differs} (checkpoint, now): the data order "
                  "will not continue exactly")
        load_state_dict(self.model, folder / MODEL_FILE)
        self.start_step, self.tokens_seen = int(state["step"]), int(state.get("tokens_seen", 0))

    def optimizer_step(self, step: int) -> dict[str, float]:
        accelerator, model, accum = self.accelerator, self.model, self.run.gradient_accumulation_steps
        self.lr = self.schedule.lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        torch.manual_seed(step_seed(self.run.seed, step, accelerator.process_index))
        logs: dict[str, float] = {}
        for micro in range(accum):
            batch = next(self.batches)
            sync = accelerator.no_sync(model) if micro < accum - 1 and accelerator.num_processes > 1 else nullcontext()
            with sync, accelerator.autocast():
                loss, parts = self.pipeline.loss_fn(model, batch)
                accelerator.backward(loss / accum)
            logs["loss"] = logs.get("loss", 0.0) + float(loss.detach()) / accum
            for key, value in parts.items():
                logs[key] = logs.get(key, 0.0) + float(value) / accum
        if self.optim.clip_grad:
            logs["grad_norm"] = float(accelerator.clip_grad_norm_(model.parameters(), self.optim.clip_grad))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.tokens_seen += self.schedule.tokens_per_step
        return logs

    def log_record(self, done: int, window: list[dict]) -> dict:
        accelerator = self.accelerator
        record = {"step": done, "lr": self.lr, "tokens_seen": self.tokens_seen,
                  "elapsed_s": round(time.perf_counter() - self.started, 3)}
        for key in sorted({k for w in window for k in w}):
            values = [w[key] for w in window if key in w]
            record[key] = sum(values) / len(values)
        if accelerator.num_processes > 1:  # the logged loss is the mean over ranks (per-part losses: rank 0)
            record["loss"] = float(accelerator.reduce(torch.tensor(record["loss"], device=accelerator.device), "mean"))
        evaluate, every = self.pipeline.evaluate, self.pipeline.eval_steps
        if evaluate is not None and every and due(done, every, self.total_steps):
            record.update(evaluate(accelerator.unwrap_model(self.model)))
        return record

    def postfix(self, record: dict) -> dict:
        return {"loss": f"{record['loss']:.4f}", "lr": f"{self.lr:.2e}"}

    def save_checkpoint(self, done: int) -> Path:
        accelerator, run = self.accelerator, self.run
        folder = checkpoints.checkpoint_dir(self.output_dir, done)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = {"step": done, "tokens_seen": self.tokens_seen, "total_steps": self.schedule.total_steps,
                     "world_size": accelerator.num_processes, "batch_size": run.batch_size,
                     "gradient_accumulation_steps": run.gradient_accumulation_steps, "seed": run.seed}
            with atomic_dir(folder) as tmp:
                save_state_dict(accelerator.unwrap_model(self.model), tmp / MODEL_FILE)
                checkpoints.save_optimizer_state(tmp, self.optimizer)
                (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        return folder

    def finish(self, record: dict) -> dict:
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self.pipeline.save_final(accelerator.unwrap_model(self.model), self.output_dir)
            plot_loss_log(self.log_path, self.output_dir / "loss.png", self.name, xlabel="step")
        accelerator.end_training()
        return record


def fit(run: RunConfig, optim: OptimConfig, model: nn.Module, schedule: Schedule, pipeline: Pipeline,
        config_record: dict, name: str, no_decay: set[str] | None = None) -> dict:
    """Train ``model`` for ``schedule.total_steps`` (or ``run.max_steps``) optimizer steps; returns the last
    logged record. ``pipeline.micro_batches(start, accelerator)`` yields this rank's micro-batches from micro-batch
    index ``start``; ``pipeline.loss_fn(model, batch)`` returns (loss, {name: float})."""
    return EgoM2PLoop(run, optim, model, schedule, pipeline, config_record, name, no_decay).fit()
