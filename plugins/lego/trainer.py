"""LEGO's latent diffusion model trained with accelerate, on egoforge's trainer base (``egoforge.train``).

One process per GPU (``accelerate launch ... -m egoforge.tools.cli train RECIPE``; multi-node through accelerate's
own flags), each taking its slice of every global batch; gradient accumulation, mixed precision and an EMA of the
trained weights (diffusers ``EMAModel``). Checkpoints (``checkpoint-N/``: trained parts, their EMA, optimizer and
LR-scheduler state) resume exactly: the data order and every random draw of a step derive from (seed, step), so a
resumed run repeats the uninterrupted one. The run folder ends up a complete model for ``egoforge lego sample``
(EMA weights in ``unet/`` and ``conditioner/``), with ``trainer_log.jsonl`` and ``training_loss.png``.
The ``egoforge train`` entry is :mod:`egoforge.lego.register`; torch, diffusers and accelerate load when it runs.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from egoforge.lego.config import LegoRecipe, LegoSetupError
from egoforge.train import checkpoints, steps
from egoforge.train.loop import StepTrainer
from egoforge.train.loss_log import plot_curves, read_records, series

TRAINER_NAME = "lego_ldm"
STATE_FILE = "state.json"
LOG_FILE = "trainer_log.jsonl"


def check_train_options(cfg: LegoRecipe) -> None:
    from egoforge.lego.config import EMA_CADENCES

    if cfg.train.ema_every not in EMA_CADENCES:
        raise LegoSetupError(f"train.ema_every {cfg.train.ema_every!r}: choose one of {EMA_CADENCES}")


def make_dataset(cfg: LegoRecipe, split: str):
    from egoforge.lego.convert import read_index
    from egoforge.lego.dataset import LegoPairs, open_features

    index = cfg.data.train_index if split == "train" else cfg.data.val_index
    if not index:
        raise LegoSetupError("data.train_index is not set (an LDM index from `egoforge lego convert --to ldm`)")
    features_cfg = cfg.data.train_features if split == "train" else cfg.data.val_features
    features = open_features(features_cfg, f"data.{split}_features") if cfg.model.use_vllm else None
    if cfg.model.use_vllm and features is None:
        raise LegoSetupError(f"model.use_vllm is true but data.{split}_features names no features")
    rows = read_index(index)
    if features is not None:
        cfg.model.image_tokens = resolve_image_tokens(cfg.model.image_tokens, features, rows, f"data.{split}_features")
    return LegoPairs(rows, cfg.data.media_root, features, cfg.data.resolution,
                     cfg.data.flip_prob if split == "train" else 0.0, cfg.model.image_tokens, cfg.model.text_tokens,
                     cfg.data.prompt, index_file=index)


def resolve_image_tokens(configured: int | None, features, rows: list[dict], where: str) -> int:
    """The visual-token count of stage B: the features' (when ``configured`` is None), or ``configured`` when it
    equals them; any other value is refused by name (see :class:`~egoforge.lego.config.ModelConfig`)."""
    from egoforge.lego.features import image_token_counts

    counts = image_token_counts(features, [r["feature_key"] for r in rows if r["feature_key"] in features])
    if not counts:
        return configured or 256
    most = max(counts)
    if configured is None:
        if len(counts) > 1:
            print(f"note: the image features of {where} have {min(counts)}..{most} visual tokens; shorter rows are "
                  f"zero-padded to {most}", file=sys.stderr)
        return most
    if configured != most:
        found = ", ".join(f"{n} tokens x {k} samples" for n, k in sorted(counts.items()))
        raise LegoSetupError(f"model.image_tokens is {configured} but the image features of {where} have {found} "
                             f"(LLaVA at 224 px: 256, LLaVA-1.5 at 336 px: 576): set model.image_tokens: {most}, "
                             "or null to read it from the features")
    return configured


def _steps_per_epoch(cfg: LegoRecipe, n: int, world: int) -> int:
    from egoforge.lego.dataset import EpochBatchSampler

    batches = EpochBatchSampler.batches_per_epoch(n, cfg.train.batch_size, world)
    per_epoch = steps.steps_per_epoch(batches, cfg.train.gradient_accumulation_steps)
    if per_epoch < 1:
        raise LegoSetupError(f"{n} training samples make no optimizer step with batch_size {cfg.train.batch_size}"
                             f" x {world} processes x {cfg.train.gradient_accumulation_steps} accumulation")
    return per_epoch


def find_checkpoint(resume: str, output_dir: Path) -> Path | None:
    """``train.resume``: none, auto (the latest complete checkpoint of ``output_dir``) or a checkpoint folder."""
    return checkpoints.resolve_resume(resume, output_dir, STATE_FILE)


EMA_KEYS = ("decay", "min_decay", "optimization_step", "update_after_step", "use_ema_warmup", "inv_gamma", "power")


def load_ema(folder: Path, model_cls):
    """An ``EMAModel`` saved by ``EMAModel.save_pretrained`` (its averaging state sits in the config)."""
    from diffusers.training_utils import EMAModel

    model = model_cls.from_pretrained(folder, use_safetensors=True)
    config = json.loads((folder / "config.json").read_text())
    ema = EMAModel(model.parameters(), model_cls=model_cls, model_config=model.config)
    ema.load_state_dict({k: config[k] for k in EMA_KEYS if k in config})
    return ema


def _check_feature_dims(cfg: LegoRecipe, dataset) -> None:
    if not cfg.model.use_vllm:
        return
    sample = dataset[0]
    for key, want, name in (("image_features", cfg.model.vllm_image_dim, "vllm_image_dim"),
                            ("text_features", cfg.model.vllm_text_dim, "vllm_text_dim")):
        got = sample[key].shape[-1]
        if got != want:
            raise LegoSetupError(f"the {key.replace('_', ' ')} of the training data are {got}-d but "
                                    f"model.{name} is {want}: set it to the stage-A VLLM's hidden size")


def plot_loss(log_path: Path, out: Path) -> Path | None:
    """``training_loss.png``: the train loss (log windows) and the validation loss against the optimizer step."""
    rows = read_records(log_path)
    curves = {"train loss": series(rows, "loss"), "val loss": series(rows, "val_loss")}
    if not curves["train loss"]:
        return None
    return plot_curves(out, curves, "LEGO LDM training", ylabel="epsilon MSE", markers=("val loss",), dpi=110,
                       grid=True)


def train(cfg: LegoRecipe) -> dict:
    """Train; returns a summary (steps, last loss, throughput)."""
    return LegoTrainer(cfg).fit()


class LegoTrainer(StepTrainer):
    """The UNet (and, with ``model.train_conditioner``, the VLLM conditioner) under AdamW, constant LR after warm-up,
    ``accelerator.accumulate`` and optional EMAs stepped per micro-batch (official) or per optimizer step."""

    name = "LEGO LDM"

    def __init__(self, cfg: LegoRecipe) -> None:
        self.cfg, self.t = cfg, cfg.train

    # --- set-up --------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        import torch

        from egoforge.train.accelerator import make_accelerator

        cfg, t = self.cfg, self.t
        self.output_dir = out = Path(t.output_dir)
        self.log_path = out / LOG_FILE
        self.accelerator = make_accelerator(t.mixed_precision, t.gradient_accumulation_steps)
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.train_set = make_dataset(cfg, "train")
        self.val_set = make_dataset(cfg, "val") if cfg.data.val_index and t.val_steps else None
        _check_feature_dims(cfg, self.train_set)
        self.steps_per_epoch = _steps_per_epoch(cfg, len(self.train_set), self.world)
        self.total_steps = t.max_steps or t.max_epochs * self.steps_per_epoch
        self.logging_steps, self.save_steps, self.save_total_limit = t.logging_steps, t.save_steps, t.save_total_limit
        self.progress = self.accelerator.is_main_process
        torch.manual_seed(t.seed)  # identical initial weights on every process
        self._build_model()
        self._build_optimization()
        self._prepare()
        self._write_run_files()
        self.step = self.start_step  # optimizer steps done: the data position of the next micro-batch
        self.micro_batches = self._micro_batches()
        self.start_time, self.seen, self.last_loss = time.perf_counter(), 0, float("nan")
        for module in self.trained:
            module.train()

    def _build_model(self) -> None:
        import torch
        from diffusers import UNet2DConditionModel

        from egoforge.lego.conditioning import VLLMConditioner
        from egoforge.lego.model import CONFIG_FILE, LegoLDM

        cfg, t, out = self.cfg, self.t, self.output_dir
        self.ldm = ldm = LegoLDM.from_config(cfg.model)
        self.checkpoint = checkpoint = find_checkpoint(t.resume, out)
        if checkpoint is None and list(out.glob("checkpoint-*")):
            raise LegoSetupError(f"{out} holds checkpoints of an earlier run: resume it (train.resume=auto) or "
                                 "choose a new train.output_dir")
        train_conditioner = ldm.conditioner is not None and cfg.model.train_conditioner
        self.trained = [ldm.unet] + ([ldm.conditioner] if train_conditioner else [])
        if checkpoint is not None:
            ldm.unet.load_state_dict(UNet2DConditionModel.from_pretrained(checkpoint / "unet").state_dict())
            if ldm.conditioner is not None:
                conditioner = VLLMConditioner.from_pretrained(checkpoint / "conditioner")
                ldm.conditioner.load_state_dict(conditioner.state_dict())
        if t.gradient_checkpointing:
            ldm.unet.enable_gradient_checkpointing()
        weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.mixed_precision, torch.float32)
        ldm.to(self.accelerator.device, weight_dtype)
        if cfg.model.scale_by_std:
            if checkpoint is not None and (out / CONFIG_FILE).exists():  # fitted when the run started
                ldm.scaling_factor = json.loads((out / CONFIG_FILE).read_text())["scaling_factor"]
            else:  # the same samples on every process, so every process gets the same scale
                from egoforge.lego.dataset import collate

                first = collate([self.train_set[i] for i in range(min(len(self.train_set), t.batch_size))])
                ldm.fit_scaling_factor(first["target"])

    def _build_optimization(self) -> None:
        import torch
        from diffusers.optimization import get_scheduler

        t = self.t
        self.params = [p for module in self.trained for p in module.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=t.learning_rate, weight_decay=t.weight_decay)
        self.lr_scheduler = get_scheduler("constant_with_warmup", self.optimizer, num_warmup_steps=t.warmup_steps)
        self.emas = self._build_emas() if t.ema else {}
        self.start_step = 0
        if self.checkpoint is not None:
            checkpoints.load_optimizer_state(self.checkpoint, self.optimizer, self.lr_scheduler)
            self.start_step = json.loads((self.checkpoint / STATE_FILE).read_text())["global_step"]

    def _build_emas(self) -> dict:
        from diffusers import UNet2DConditionModel
        from diffusers.training_utils import EMAModel

        from egoforge.lego.conditioning import VLLMConditioner

        t, emas = self.t, {}
        for name, module, cls in (("unet", self.ldm.unet, UNet2DConditionModel),
                                  ("conditioner", self.ldm.conditioner, VLLMConditioner)):
            if module is None or (name == "conditioner" and not self.cfg.model.train_conditioner):
                continue
            if self.checkpoint is not None and (self.checkpoint / f"ema_{name}").is_dir():
                emas[name] = load_ema(self.checkpoint / f"ema_{name}", cls)
            else:
                # update_after_step -1: the n-th update decays by (1 + n) / (10 + n), LitEma's warm-up
                emas[name] = EMAModel(module.parameters(), decay=t.ema_decay, model_cls=cls,
                                      model_config=module.config,
                                      update_after_step=-1 if t.ema_every == "micro_batch" else 0)
            emas[name].to(self.accelerator.device)
        return emas

    def _prepare(self) -> None:
        prepared = self.accelerator.prepare(*self.trained, self.optimizer)
        self.unet, self.optimizer = prepared[0], prepared[-1]
        self.conditioner = prepared[1] if len(self.trained) == 2 else self.ldm.conditioner
        self.accumulated = [self.unet] + ([self.conditioner] if len(self.trained) == 2 else [])

    def _write_run_files(self) -> None:
        import yaml

        from egoforge.data.atomic import atomic_write_text
        from egoforge.lego.model import CONFIG_FILE

        out = self.output_dir
        if not self.accelerator.is_main_process:
            return
        out.mkdir(parents=True, exist_ok=True)
        if self.checkpoint is None or not (out / CONFIG_FILE).exists():
            self.ldm.save_frozen(out, self.cfg.data.resolution)
        recipe = {"trainer": TRAINER_NAME, **asdict(self.cfg)}
        atomic_write_text(out / "lego_recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))
        if self.checkpoint is None and self.log_path.exists():
            self.log_path.unlink()  # a fresh run in an old folder starts a fresh log

    # --- the steps -----------------------------------------------------------------------------------------------
    def _micro_batches(self):
        """(epoch, micro-batch index in the step, batch), from the data position of the current step: each epoch's
        order derives from (seed, epoch), and an epoch ends after its last whole optimizer step."""
        from torch.utils.data import DataLoader

        from egoforge.lego.dataset import EpochBatchSampler, collate

        t, accum = self.t, self.t.gradient_accumulation_steps
        while True:
            epoch, done_in_epoch = steps.epoch_position(self.step, self.steps_per_epoch)
            sampler = EpochBatchSampler(len(self.train_set), t.batch_size, t.seed, epoch, self.rank, self.world,
                                        start_batch=done_in_epoch * accum)
            loader = DataLoader(self.train_set, batch_sampler=sampler, collate_fn=collate,
                                num_workers=self.cfg.data.num_workers,
                                pin_memory=self.accelerator.device.type == "cuda")
            for micro, batch in enumerate(loader):
                if micro >= (self.steps_per_epoch - done_in_epoch) * accum:
                    break
                yield epoch, micro % accum, batch

    def optimizer_step(self, step: int):
        import torch

        from egoforge.lego.dataset import mix_seed

        accelerator, t = self.accelerator, self.t
        self.step, running = step, []
        while True:
            self.epoch, micro, batch = next(self.micro_batches)
            torch.manual_seed(mix_seed(t.seed, step, micro, self.rank))
            with accelerator.accumulate(*self.accumulated):
                loss = self.ldm.training_loss(batch, t.uncond, self.unet, self.conditioner)
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm:
                    accelerator.clip_grad_norm_(self.params, t.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            running.append(loss.detach())
            self.seen += batch["source"].shape[0] * self.world
            if t.ema_every == "micro_batch":  # the official cadence: every micro-batch, stepped or not
                self._step_emas()
            if accelerator.sync_gradients:
                break
        self.lr_scheduler.step()
        if t.ema_every == "optimizer_step":
            self._step_emas()
        self.step = step + 1
        return torch.stack(running).mean()

    def _step_emas(self) -> None:
        for name, ema in self.emas.items():
            ema.step(self._module(name).parameters())

    def _module(self, name: str):
        return self.accelerator.unwrap_model(self.unet if name == "unet" else self.conditioner)

    def log_record(self, done: int, window: list) -> dict:
        import torch

        # the mean over the logging window: single steps are noisy (one random timestep per sample)
        self.last_loss = self.accelerator.reduce(torch.stack(window).mean(), "mean").item()
        rate = self.seen / (time.perf_counter() - self.start_time)
        return {"step": done, "epoch": self.epoch, "loss": self.last_loss, "lr": self.lr_scheduler.get_last_lr()[0],
                "images_per_second": rate}

    def postfix(self, record: dict) -> dict:
        return {"loss": f"{record['loss']:.4f}", "img_s": f"{record['images_per_second']:.1f}"}

    # --- validation ----------------------------------------------------------------------------------------------
    def extra_records(self, done: int) -> list[dict]:
        if self.val_set is None or done % self.t.val_steps:
            return []
        record = {"step": done, "val_loss": self.validation_loss()}
        if self.emas:
            for name, ema in self.emas.items():
                ema.store(self._module(name).parameters())
                ema.copy_to(self._module(name).parameters())
            record["val_loss_ema"] = self.validation_loss()
            for name, ema in self.emas.items():
                ema.restore(self._module(name).parameters())
        return [record]

    def validation_loss(self) -> float:
        import torch
        from torch.utils.data import DataLoader

        from egoforge.lego.dataset import EpochBatchSampler, collate, mix_seed

        t = self.t
        sampler = EpochBatchSampler(len(self.val_set), t.batch_size, t.seed, 0, self.rank, self.world, shuffle=False)
        loader = DataLoader(self.val_set, batch_sampler=sampler, collate_fn=collate, num_workers=0)
        losses = []
        with torch.no_grad():
            for b, batch in enumerate(loader):
                if b >= t.val_batches:
                    break
                torch.manual_seed(mix_seed(t.seed, "val", b, self.rank))  # the same noise at every validation
                losses.append(self.ldm.training_loss(batch, 0.0, self.unet, self.conditioner))
        if not losses:
            return float("nan")
        return self.accelerator.reduce(torch.stack(losses).mean(), "mean").item()

    # --- checkpoints and the final model -------------------------------------------------------------------------
    def save_checkpoint(self, done: int) -> Path:
        from egoforge.data.atomic import atomic_dir, atomic_write_json

        folder = checkpoints.checkpoint_dir(self.output_dir, done)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            with atomic_dir(folder) as tmp:
                self._module("unet").save_pretrained(tmp / "unet", safe_serialization=True)
                if self.ldm.conditioner is not None:
                    self._module("conditioner").save_pretrained(tmp / "conditioner", safe_serialization=True)
                for name, ema in self.emas.items():
                    ema.save_pretrained(tmp / f"ema_{name}")
                checkpoints.save_optimizer_state(tmp, self.optimizer, self.lr_scheduler)
                atomic_write_json(tmp / STATE_FILE, {"global_step": done, "steps_per_epoch": self.steps_per_epoch,
                                                     "world_size": self.world})
        self.accelerator.wait_for_everyone()
        return folder

    def finish(self, record: dict) -> dict:
        elapsed = time.perf_counter() - self.start_time
        if self.accelerator.is_main_process:  # the run folder itself is the model to sample from
            self._save_model()
            if self.t.plot_loss and self.log_path.exists():
                plot_loss(self.log_path, self.output_dir / "training_loss.png")
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return {"global_step": self.step, "loss": self.last_loss,
                "images_per_second": self.seen / max(elapsed, 1e-9), "output_dir": str(self.output_dir),
                "world_size": self.world, "main_process": self.accelerator.is_main_process}

    def _save_model(self) -> None:
        """``unet/`` and ``conditioner/`` as plain models, holding the EMA weights when EMA is on."""
        from egoforge.data.atomic import atomic_dir

        for name in ("unet", "conditioner"):
            if name == "conditioner" and self.ldm.conditioner is None:
                continue
            with atomic_dir(self.output_dir / name) as tmp:
                target = self._module(name)
                if name in self.emas:
                    self.emas[name].store(target.parameters())
                    self.emas[name].copy_to(target.parameters())
                target.save_pretrained(tmp, safe_serialization=True)
                if name in self.emas:
                    self.emas[name].restore(target.parameters())
