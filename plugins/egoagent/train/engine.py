"""The training loop both EgoAgent stages share, on accelerate (one process, DDP via torchrun or
``accelerate launch``, DeepSpeed ZeRO-1/2).

Per optimiser step: the stage computes its loss on each micro-batch (student forward, teacher forward without
gradient) against the current DINO centre; after the last micro-batch the teacher's mean over all of them
(all-reduced across processes) updates the centre once, as the official run does with its 4-step accumulation
(``dino.center_update: micro_batch`` updates it after every forward instead); gradients are clipped, AdamW steps
with the scheduled learning rate and weight decay, then the EMA teacher moves towards the student with the
scheduled momentum. fp16 loss scaling starts at 2**16 and grows every 1000 overflow-free steps (the official
``grad_scaler``). Stages implement ``network_spec``, ``build_dataset``, ``initialise`` and ``compute_loss``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from egoforge.egoagent import schedules
from egoforge.egoagent.data.sampler import ResumableSampler
from egoforge.egoagent.ema import ema_update_, make_teacher, paired_parameters
from egoforge.egoagent.losses import batch_center, update_center
from egoforge.egoagent.network import build_network
from egoforge.egoagent.train.checkpoint import TrainState, load_checkpoint, resolve_checkpoint, save_checkpoint
from egoforge.train import param_groups as groups
from egoforge.train.loop import StepTrainer
from egoforge.train.loss_log import plot_loss_log, read_log  # noqa: F401  (read_log: the log's reader)

LOG_FILE = "trainer_log.jsonl"


class UnsupportedSetupError(RuntimeError):
    pass


def loss_scaler_kwargs(config):
    """accelerate's GradScaler settings: the official fp16 scaling (init 2**16, x2 / x0.5, growth every 1000)."""
    from accelerate.utils import GradScalerKwargs

    return GradScalerKwargs(init_scale=config.loss_scale_init, growth_factor=2.0, backoff_factor=0.5,
                            growth_interval=config.loss_scale_growth_interval)


def make_accelerator(config):
    from accelerate.utils import DeepSpeedPlugin, DistributedType

    from egoforge.train.accelerator import make_accelerator as accelerator_from

    kwargs = {}
    if config.mixed_precision == "fp16" and not config.deepspeed:
        kwargs["kwargs_handlers"] = [loss_scaler_kwargs(config)]
    if config.deepspeed:
        plugin = DeepSpeedPlugin(hf_ds_config=str(config.deepspeed),
                                 gradient_accumulation_steps=config.gradient_accumulation_steps,
                                 gradient_clipping=config.optim.max_grad_norm or None)
        # The loop feeds its own (resumable) data loader, so DeepSpeed cannot infer the micro-batch size.
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.per_device_batch_size
        kwargs["deepspeed_plugin"] = plugin
    if config.deepspeed and config.optim.freeze_last_layer_steps:
        raise UnsupportedSetupError("optim.freeze_last_layer_steps needs the gradients, which DeepSpeed's engine owns;"
                                    " set it to 0 with deepspeed")
    accelerator = accelerator_from(
        config.mixed_precision, config.gradient_accumulation_steps,
        # The LR scheduler counts optimiser steps; accelerate would otherwise step it once per process.
        step_scheduler_with_optimizer=False,
        log_with=None if config.report_to in ("none", "", None) else config.report_to,
        project_dir=config.output_dir,
        **kwargs,
    )
    # The EMA teacher reads every student parameter after each step: sharded parameters would need a gather.
    if accelerator.distributed_type == DistributedType.FSDP:
        raise UnsupportedSetupError("FSDP shards the student's parameters, which the EMA teacher update reads in "
                                    "full every step; use DDP (torchrun / accelerate launch) or DeepSpeed ZeRO-1/2")
    if accelerator.distributed_type == DistributedType.DEEPSPEED and \
            accelerator.state.deepspeed_plugin.zero_stage == 3:
        raise UnsupportedSetupError("DeepSpeed ZeRO-3 shards the student's parameters, which the EMA teacher update "
                                    "reads in full every step; use ZeRO-1/2 (recipes/deepspeed/ds_z2_config.json)")
    return accelerator


def param_groups(model: torch.nn.Module) -> list[dict]:
    """DINO's split: biases and 1-D parameters (norms) get no weight decay (the scheduled decay is group 0's)."""
    return groups.decay_groups(model, groups.bias_or_1d)


class EgoAgentTrainer(StepTrainer):
    stage = "egoagent"

    def __init__(self, config, recipe: dict) -> None:
        self.config, self.recipe = config, recipe

    # --- what each stage provides ------------------------------------------------------------------------------
    def network_spec(self) -> dict:
        raise NotImplementedError

    def build_dataset(self):
        raise NotImplementedError

    def initialise(self, student, teacher, center: torch.Tensor) -> None:
        """Load starting weights (stage 2: from stage 1). Called before anything is prepared."""

    def compute_loss(self, student, teacher, batch: dict, step: int) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """-> (loss, {name: scalar tensor} for the log, teacher logits for the centre update)."""
        raise NotImplementedError

    def images_in(self, batch: dict) -> int:
        raise NotImplementedError

    def loss_units(self) -> dict[str, str]:
        """The y-axis label (quantity and unit) of each logged loss term: one axes per label in ``loss.png``."""
        return {"loss": "DINO cross-entropy (nats)"}

    # --- schedules -------------------------------------------------------------------------------------------------
    def teacher_temp(self, step: int) -> float:
        dino = self.config.dino
        return schedules.teacher_temperature(step, dino.warmup_teacher_temp_steps, dino.warmup_teacher_temp,
                                             dino.teacher_temp)

    # --- set-up ----------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        from accelerate.utils import set_seed

        config = self.config
        self.accelerator = accelerator = make_accelerator(config)
        set_seed(config.seed)
        self.name, self.output_dir = self.stage, Path(config.output_dir)
        self.log_path = self.output_dir / LOG_FILE
        self.total_steps, self.logging_steps = config.max_steps, config.logging_steps
        self.save_steps = config.save_steps
        self.save_total_limit, self.progress = config.save_total_limit, config.progress
        self._build_networks()
        self._build_data()
        self.state = TrainState(world_size=accelerator.num_processes,
                                per_device_batch_size=config.per_device_batch_size,
                                gradient_accumulation_steps=config.gradient_accumulation_steps, seed=config.seed)
        resume = resolve_checkpoint(config.output_dir, config.resume_from_checkpoint)
        if resume is not None:
            self.state = load_checkpoint(accelerator, resume, self.teacher, self.center)
            accelerator.print(f"resumed from {resume} at step {self.state.global_step}")
        self.start_step = self.state.global_step
        if accelerator.log_with:
            accelerator.init_trackers(self.stage, config={k: v for k, v in _flatten(asdict(config)).items()
                                                          if isinstance(v, (int, float, str, bool))})
        # the log window (micro-batch sums since the last record) and the data stream start here
        self._sums, self._count, self._images, self._started = {}, 0, 0, time.perf_counter()
        self._grad_norm = None
        self.batches = self._micro_batches()
        self.student.train()

    def _build_networks(self) -> None:
        """Student and EMA teacher (same start), the DINO centre, AdamW with the warm-up cosine LR, prepared."""
        config, accelerator = self.config, self.accelerator
        self.spec = self.network_spec()
        student = build_network(self.spec)
        teacher = make_teacher(build_network(self.spec, with_actions=False))
        teacher.load_state_dict({k: v for k, v in student.state_dict().items()
                                 if k in teacher.state_dict()})
        self.center = torch.zeros(self.spec["head"]["out_dim"], device=accelerator.device)
        self._pending_centers: list[torch.Tensor] = []  # micro-batch means awaiting the optimiser step
        self.initialise(student, teacher, self.center)
        if config.model.gradient_checkpointing:
            student.backbone.gradient_checkpointing = True
        optimizer = torch.optim.AdamW(param_groups(student), lr=config.optim.lr, betas=tuple(config.optim.betas),
                                      eps=config.optim.eps, weight_decay=config.optim.weight_decay)
        warmup = int(round(config.optim.warmup_ratio * config.max_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, schedules.WarmupCosineLR(config.max_steps, warmup, config.optim.min_lr / config.optim.lr))
        self.student, self.optimizer, self.scheduler = accelerator.prepare(student, optimizer, scheduler)
        self.teacher = teacher.to(accelerator.device)
        self.ema_pairs = paired_parameters(self.teacher, accelerator.unwrap_model(self.student))

    def _build_data(self) -> None:
        config, accelerator = self.config, self.accelerator
        self.dataset = self.build_dataset()
        self.sampler = ResumableSampler(len(self.dataset), config.seed, accelerator.process_index,
                                        accelerator.num_processes)
        if self.sampler.per_rank < config.per_device_batch_size:
            raise ValueError(f"{len(self.dataset)} samples over {accelerator.num_processes} processes is less than "
                             f"one batch of {config.per_device_batch_size}")

    def loader(self) -> DataLoader:
        self.sampler.set_position(self.state.epoch, self.state.consumed)
        workers = self.config.num_workers
        # Worker seeds come from a generator of (seed, epoch), not from the global RNG, which a resumed run would
        # otherwise consume once more when it rebuilds the loader mid-epoch.
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.state.epoch)
        return DataLoader(self.dataset, batch_size=self.config.per_device_batch_size, sampler=self.sampler,
                          num_workers=workers, drop_last=True, pin_memory=torch.cuda.is_available(),
                          prefetch_factor=2 if workers else None, generator=generator)

    def _micro_batches(self):
        """This process's micro-batches from the saved data position on; an exhausted epoch moves to the next."""
        while True:
            yield from self.loader()
            self.state.epoch, self.state.consumed = self.state.epoch + 1, 0

    # --- the loop (egoforge.train.loop.StepTrainer.fit) --------------------------------------------------------------
    def train(self) -> TrainState:
        return self.fit()

    def optimizer_step(self, step: int) -> None:
        """Micro-batches until accelerate syncs the gradients (the optimiser stepped), then the EMA teacher."""
        config, state = self.config, self.state
        while True:
            batch = next(self.batches)
            loss, metrics, self._grad_norm = self.train_step(batch, step)
            state.consumed += config.per_device_batch_size
            for name, value in {"loss": loss, **metrics}.items():
                self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())
            self._count, self._images = self._count + 1, self._images + self.images_in(batch)
            if self.accelerator.sync_gradients:
                break
        ema_update_(*self.ema_pairs, self._momentum(step))
        state.global_step += 1

    def log_record(self, done: int, window: list) -> dict:
        """The mean of every loss term over the micro-batches since the last record (and over processes)."""
        elapsed = time.perf_counter() - self._started
        rate = self._images * self.accelerator.num_processes / elapsed
        record = self._log_record(self._sums, self._count, rate, self._grad_norm)
        self._sums, self._count, self._images, self._started = {}, 0, 0, time.perf_counter()
        return record

    def save_checkpoint(self, done: int) -> Path:
        return save_checkpoint(self.accelerator, self.config.output_dir, self.state, self.student, self.teacher,
                               self.center, self.spec, self.recipe)

    def finish(self, record: dict) -> TrainState:
        if self.accelerator.is_main_process:
            plot_log(self.log_path, self.output_dir / "loss.png", self.stage, self.loss_units())
        self.accelerator.end_training()
        return self.state

    def train_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict, float | None]:
        """One micro-batch: loss, backward, centre update and (on the last micro-batch of an accumulation) the
        optimiser step. The EMA update follows in the loop, once per optimiser step."""
        accelerator = self.accelerator
        self._apply_schedules(step)
        with accelerator.accumulate(self.student):
            with accelerator.autocast():
                loss, metrics, teacher_logits = self.compute_loss(self.student, self.teacher, batch, step)
            accelerator.backward(loss)
            self._update_center(teacher_logits)
            grad_norm = self._optimizer_step(step)
        return loss, metrics, grad_norm

    def _apply_schedules(self, step: int) -> None:
        optim = self.config.optim
        weight_decay = schedules.cosine(step, self.total_steps, optim.weight_decay, optim.weight_decay_end)
        self.optimizer.param_groups[0]["weight_decay"] = weight_decay

    def _momentum(self, step: int) -> float:
        return schedules.teacher_momentum(step, self.total_steps, self.config.dino.momentum_teacher, 1.0)

    def _update_center(self, teacher_logits: torch.Tensor) -> None:
        """Move the centre per ``dino.center_update``: after every micro-batch, or once per optimiser step with
        the mean over the accumulated micro-batches (equal-sized, so the mean of their means)."""
        self._pending_centers.append(batch_center(teacher_logits))
        if self.config.dino.center_update == "optimizer_step" and not self.accelerator.sync_gradients:
            return
        local = torch.stack(self._pending_centers).mean(0)
        self._pending_centers.clear()
        mean = self.accelerator.reduce(local, reduction="mean")
        self.center.copy_(update_center(self.center, mean, self.config.dino.center_momentum))

    def _optimizer_step(self, step: int) -> float | None:
        """Clip, (optionally) freeze the prototypes, step. Runs inside ``accumulate``: accelerate makes the
        optimiser a no-op on accumulation micro-steps."""
        accelerator, optim = self.accelerator, self.config.optim
        grad_norm = None
        if accelerator.sync_gradients:
            if optim.max_grad_norm:
                norm = accelerator.clip_grad_norm_(self.student.parameters(), optim.max_grad_norm)
                grad_norm = float(norm) if norm is not None else None
            if step < optim.freeze_last_layer_steps:
                accelerator.unwrap_model(self.student).head.prototypes.grad = None
            self.optimizer.step()
            if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: the schedule waits, as in HF Trainer
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def _log_record(self, sums: dict, count: int, images_per_s: float, grad_norm: float | None) -> dict:
        step = self.state.global_step - 1  # the schedules' values at the step just taken
        values = torch.tensor([sums[k] / max(count, 1) for k in sums], device=self.accelerator.device)
        values = self.accelerator.reduce(values, reduction="mean").tolist()
        record = {"step": self.state.global_step, **dict(zip(sums, values)),
                  "lr": self.scheduler.get_last_lr()[0],
                  "weight_decay": self.optimizer.param_groups[0]["weight_decay"],
                  "momentum": self._momentum(step), "teacher_temp": self.teacher_temp(step),
                  "grad_norm": grad_norm, "images_per_s": images_per_s, "epoch": self.state.epoch}
        if self.accelerator.log_with:
            self.accelerator.log({k: v for k, v in record.items() if v is not None}, step=self.state.global_step)
        return record


def _flatten(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def plot_log(log_path: Path, out: Path, title: str, units: dict[str, str] | None = None) -> Path | None:
    """``loss.png``: every loss term of the log against the optimiser step, one axes per unit."""
    return plot_loss_log(log_path, out, f"{title}: training losses", xlabel="optimiser step", units=units)
