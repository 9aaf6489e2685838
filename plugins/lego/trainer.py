"""``egoforge train recipes/lego_ldm_*.yaml``: LEGO's latent diffusion model, trained with accelerate.

One process per GPU (``accelerate launch ... -m egoforge.tools.cli train RECIPE``; multi-node through accelerate's
own flags), each taking its slice of every global batch; gradient accumulation, mixed precision and an EMA of the
trained weights (diffusers ``EMAModel``). Checkpoints (``checkpoint-N/``: trained parts, their EMA, optimizer and
LR-scheduler state) resume exactly: the data order and every random draw of a step derive from (seed, step), so a
resumed run repeats the uninterrupted one. The run folder ends up a complete model for ``egoforge lego sample``
(EMA weights in ``unet/`` and ``conditioner/``), with ``trainer_log.jsonl`` and ``training_loss.png``.

Importing this module only registers the trainer; torch, diffusers and accelerate load when it runs.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from egoforge.lego.config import LegoRecipe, LegoSetupError
from egoforge.registry import TRAINERS

TRAINER_NAME = "lego_ldm"


def _as_recipe_error(exc: Exception):
    from egoforge.train.recipe import RecipeError

    return RecipeError(str(exc))


@TRAINERS.register(TRAINER_NAME, doc="LEGO latent diffusion with VLLM conditioning (diffusers UNet, accelerate, EMA)")
def run(recipe: dict, dry_run: bool = False) -> int:
    """The ``egoforge train`` entry: type-check the recipe, then train (or, with ``dry_run``, check the data)."""
    from egoforge.data.jsonio import DataFormatError
    from egoforge.train.recipe import build_config

    cfg = build_config(LegoRecipe, recipe, "recipe")
    try:
        check_train_options(cfg)
        if dry_run:
            train_set = make_dataset(cfg, "train")
            steps = _steps_per_epoch(cfg, len(train_set), 1)
            print(json.dumps({"recipe": recipe, "train_samples": len(train_set),
                              "optimizer_steps_per_epoch_per_process_group": steps}, indent=2, default=str))
            return 0
        summary = train(cfg)
    except (DataFormatError, LegoSetupError, FileNotFoundError) as exc:
        raise _as_recipe_error(exc) from None
    if summary.pop("main_process"):
        print(json.dumps(summary))
    return 0


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
    features = open_features(features_cfg) if cfg.model.use_vllm else None
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
    steps = batches // cfg.train.gradient_accumulation_steps
    if steps < 1:
        raise LegoSetupError(f"{n} training samples make no optimizer step with batch_size {cfg.train.batch_size}"
                                f" x {world} processes x {cfg.train.gradient_accumulation_steps} accumulation")
    return steps


def find_checkpoint(resume: str, output_dir: Path) -> Path | None:
    if resume == "none":
        return None
    if resume != "auto":
        path = Path(resume)
        if not (path / "state.json").exists():
            raise FileNotFoundError(f"train.resume={resume}: not a checkpoint folder (no state.json)")
        return path
    done = [p for p in output_dir.glob("checkpoint-*") if (p / "state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


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


def _plot_loss(log_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from egoforge.data.atomic import atomic_write_bytes

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if not train:
        return
    import io

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*train), label="train loss")
    if val:
        ax.plot(*zip(*val), marker="o", label="val loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("epsilon MSE")
    ax.set_title("LEGO LDM training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


def train(cfg: LegoRecipe) -> dict:
    """Train; returns a summary (steps, last loss, throughput)."""
    import torch
    from accelerate import Accelerator
    from diffusers import UNet2DConditionModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from egoforge.data.atomic import atomic_dir, atomic_write_json, atomic_write_text
    from egoforge.lego.conditioning import VLLMConditioner
    from egoforge.lego.dataset import EpochBatchSampler, collate, mix_seed
    from egoforge.lego.model import CONFIG_FILE, LegoLDM

    t = cfg.train
    out = Path(t.output_dir)
    accelerator = Accelerator(gradient_accumulation_steps=t.gradient_accumulation_steps,
                              mixed_precision=t.mixed_precision)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    train_set = make_dataset(cfg, "train")
    val_set = make_dataset(cfg, "val") if cfg.data.val_index and t.val_steps else None
    _check_feature_dims(cfg, train_set)
    steps_per_epoch = _steps_per_epoch(cfg, len(train_set), world)
    total_steps = t.max_steps or t.max_epochs * steps_per_epoch

    torch.manual_seed(t.seed)  # identical initial weights on every process
    ldm = LegoLDM.from_config(cfg.model)
    checkpoint = find_checkpoint(t.resume, out)
    if checkpoint is None and list(out.glob("checkpoint-*")):
        raise LegoSetupError(f"{out} holds checkpoints of an earlier run: resume it (train.resume=auto) or "
                             "choose a new train.output_dir")
    trained = [ldm.unet] + ([ldm.conditioner] if ldm.conditioner is not None and cfg.model.train_conditioner else [])
    if checkpoint is not None:
        ldm.unet.load_state_dict(UNet2DConditionModel.from_pretrained(checkpoint / "unet").state_dict())
        if ldm.conditioner is not None:
            ldm.conditioner.load_state_dict(VLLMConditioner.from_pretrained(checkpoint / "conditioner").state_dict())
    if t.gradient_checkpointing:
        ldm.unet.enable_gradient_checkpointing()
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(t.mixed_precision, torch.float32)
    ldm.to(accelerator.device, weight_dtype)
    if cfg.model.scale_by_std:
        if checkpoint is not None and (out / CONFIG_FILE).exists():  # fitted when the run started
            ldm.scaling_factor = json.loads((out / CONFIG_FILE).read_text())["scaling_factor"]
        else:  # the same samples on every process, so every process gets the same scale
            first = collate([train_set[i] for i in range(min(len(train_set), t.batch_size))])
            ldm.fit_scaling_factor(first["target"])

    params = [p for module in trained for p in module.parameters()]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    lr_scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=t.warmup_steps)
    emas: dict[str, EMAModel] = {}
    if t.ema:
        for name, module, cls in (("unet", ldm.unet, UNet2DConditionModel),
                                  ("conditioner", ldm.conditioner, VLLMConditioner)):
            if module is None or (name == "conditioner" and not cfg.model.train_conditioner):
                continue
            if checkpoint is not None and (checkpoint / f"ema_{name}").is_dir():
                emas[name] = load_ema(checkpoint / f"ema_{name}", cls)
            else:
                # update_after_step -1: the n-th update decays by (1 + n) / (10 + n), LitEma's warm-up
                emas[name] = EMAModel(module.parameters(), decay=t.ema_decay, model_cls=cls,
                                      model_config=module.config,
                                      update_after_step=-1 if t.ema_every == "micro_batch" else 0)
            emas[name].to(accelerator.device)
    global_step = 0
    if checkpoint is not None:
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True))
        lr_scheduler.load_state_dict(torch.load(checkpoint / "lr_scheduler.pt", weights_only=True))
        global_step = json.loads((checkpoint / "state.json").read_text())["global_step"]

    prepared = accelerator.prepare(*trained, optimizer)
    unet, optimizer = prepared[0], prepared[-1]
    conditioner = prepared[1] if len(trained) == 2 else ldm.conditioner

    if main:
        out.mkdir(parents=True, exist_ok=True)
        if checkpoint is None or not (out / CONFIG_FILE).exists():
            ldm.save_frozen(out, cfg.data.resolution)
        import yaml

        atomic_write_text(out / "lego_recipe.yaml", yaml.safe_dump({"trainer": TRAINER_NAME, **asdict(cfg)},
                                                                  sort_keys=False))
    log_path = out / "trainer_log.jsonl"
    if main and checkpoint is None and log_path.exists():
        log_path.unlink()  # a fresh run in an old folder starts a fresh log

    def unwrapped(module):
        return accelerator.unwrap_model(module)

    def save_checkpoint(step: int) -> None:
        accelerator.wait_for_everyone()
        if main:
            with atomic_dir(out / f"checkpoint-{step}") as tmp:
                unwrapped(unet).save_pretrained(tmp / "unet", safe_serialization=True)
                if ldm.conditioner is not None:
                    unwrapped(conditioner).save_pretrained(tmp / "conditioner", safe_serialization=True)
                for name, ema in emas.items():
                    ema.save_pretrained(tmp / f"ema_{name}")
                torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
                torch.save(lr_scheduler.state_dict(), tmp / "lr_scheduler.pt")
                atomic_write_json(tmp / "state.json", {"global_step": step, "steps_per_epoch": steps_per_epoch,
                                                       "world_size": world})
            if t.save_total_limit:
                done = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
                for old in done[: max(0, len(done) - t.save_total_limit)]:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    @torch.no_grad()
    def validation_loss() -> float:
        sampler = EpochBatchSampler(len(val_set), t.batch_size, t.seed, 0, rank, world, shuffle=False)
        loader = DataLoader(val_set, batch_sampler=sampler, collate_fn=collate, num_workers=0)
        losses = []
        for b, batch in enumerate(loader):
            if b >= t.val_batches:
                break
            torch.manual_seed(mix_seed(t.seed, "val", b, rank))  # the same noise at every validation
            losses.append(ldm.training_loss(batch, 0.0, unet, conditioner))
        if not losses:
            return float("nan")
        return accelerator.reduce(torch.stack(losses).mean(), "mean").item()

    def log(record: dict) -> None:
        if main:
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def step_emas() -> None:
        for name, ema in emas.items():
            ema.step(unwrapped(unet if name == "unet" else conditioner).parameters())

    accum = t.gradient_accumulation_steps
    last_saved = global_step if checkpoint is not None else -1
    progress = tqdm(total=total_steps, initial=global_step, desc="LEGO LDM", unit="step", disable=not main)
    start_time, seen, running, window, last_loss = time.perf_counter(), 0, [], [], float("nan")
    for module in trained:
        module.train()
    while global_step < total_steps:
        epoch, done_in_epoch = divmod(global_step, steps_per_epoch)
        sampler = EpochBatchSampler(len(train_set), t.batch_size, t.seed, epoch, rank, world,
                                    start_batch=done_in_epoch * accum)
        loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers,
                            pin_memory=accelerator.device.type == "cuda")
        for micro, batch in enumerate(loader):
            if micro >= (steps_per_epoch - done_in_epoch) * accum or global_step >= total_steps:
                break
            torch.manual_seed(mix_seed(t.seed, global_step, micro % accum, rank))
            with accelerator.accumulate(*[unet] + ([conditioner] if len(trained) == 2 else [])):
                loss = ldm.training_loss(batch, t.uncond, unet, conditioner)
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm:
                    accelerator.clip_grad_norm_(params, t.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            running.append(loss.detach())
            seen += batch["source"].shape[0] * world
            if t.ema_every == "micro_batch":  # the official cadence: every micro-batch, stepped or not
                step_emas()
            if not accelerator.sync_gradients:
                continue
            lr_scheduler.step()
            if t.ema_every == "optimizer_step":
                step_emas()
            global_step += 1
            progress.update(1)
            window.append(torch.stack(running).mean())
            running = []
            if global_step % t.logging_steps == 0 or global_step == total_steps:
                # the mean over the logging window: single steps are noisy (one random timestep per sample)
                last_loss = accelerator.reduce(torch.stack(window).mean(), "mean").item()
                window = []
                rate = seen / (time.perf_counter() - start_time)
                log({"step": global_step, "epoch": epoch, "loss": last_loss, "lr": lr_scheduler.get_last_lr()[0],
                     "images_per_second": rate})
                progress.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{rate:.1f}")
            if val_set is not None and global_step % t.val_steps == 0:
                record = {"step": global_step, "val_loss": validation_loss()}
                if emas:
                    for name, ema in emas.items():
                        module = unwrapped(unet if name == "unet" else conditioner)
                        ema.store(module.parameters())
                        ema.copy_to(module.parameters())
                    record["val_loss_ema"] = validation_loss()
                    for name, ema in emas.items():
                        ema.restore(unwrapped(unet if name == "unet" else conditioner).parameters())
                log(record)
            if global_step % t.save_steps == 0 and global_step < total_steps:
                save_checkpoint(global_step)
                last_saved = global_step
    progress.close()
    elapsed = time.perf_counter() - start_time
    if last_saved != global_step:
        save_checkpoint(global_step)
    if main:  # the run folder itself is the model to sample from: EMA weights when EMA is on
        for name, module in (("unet", unet), ("conditioner", conditioner)):
            if name == "conditioner" and ldm.conditioner is None:
                continue
            with atomic_dir(out / name) as tmp:
                target = unwrapped(module)
                if name in emas:  # EMA weights into the model itself, so the folder is a plain model
                    emas[name].store(target.parameters())
                    emas[name].copy_to(target.parameters())
                target.save_pretrained(tmp, safe_serialization=True)
                if name in emas:
                    emas[name].restore(target.parameters())
        if t.plot_loss and log_path.exists():
            _plot_loss(log_path, out / "training_loss.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"global_step": global_step, "loss": last_loss, "images_per_second": seen / max(elapsed, 1e-9),
            "output_dir": str(out), "world_size": world, "main_process": main}
