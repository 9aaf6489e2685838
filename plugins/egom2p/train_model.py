"""EgoM2P pre-training: recipe -> typed config -> masked multimodal batches -> the shared accelerate loop.

Recipe keys (``recipes/egom2p_base.yaml`` is the paper setting): ``model`` (ModelConfig), ``modalities`` (table
overrides for the tokenizers used), ``data`` (token shard root and the dataset mixture), ``masking`` (Dirichlet
budgets), ``optim`` (AdamW, blr), ``total_tokens`` / ``warmup_tokens`` (the schedule, in tokens) and the run keys of
``loop.RunConfig``. The learning rate follows lr = blr * global batch / 256 with global batch = batch_size x
gradient_accumulation_steps x processes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from egoforge.egom2p.loop import OptimConfig, Pipeline, RunConfig, Schedule, fit, save_state_dict
from egoforge.egom2p.masking import MaskingConfig
from egoforge.egom2p.modalities import Modality, modality_table
from egoforge.egom2p.model import EgoM2P, ModelConfig, build_model, count_parameters
from egoforge.egom2p.schedule import absolute_lr, steps_for_tokens
from egoforge.egom2p.shards import DataConfig, DatasetSpec, MixtureBatches
from egoforge.train.loop import steps_plan
from egoforge.train.recipe import RecipeError, build_config

MODEL_TYPE = "egom2p"


@dataclass
class EgoM2PTrainConfig(RunConfig):
    model: ModelConfig = field(default_factory=ModelConfig)
    modalities: dict = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    total_tokens: float = 500e9
    warmup_tokens: float = 10e9


def parse_config(recipe: dict) -> EgoM2PTrainConfig:
    cfg = build_config(EgoM2PTrainConfig, recipe)
    cfg.data.datasets = {name: build_config(DatasetSpec, spec or {}, f"recipe.data.datasets.{name}")
                         for name, spec in (cfg.data.datasets or {}).items()}
    return cfg


def table_record(table: dict[str, Modality]) -> dict:
    return {m: {"tokenizer": s.tokenizer, "vocab_size": s.vocab_size, "token_grid": list(s.token_grid),
                "clip_shape": list(s.clip_shape)} for m, s in table.items()}


def save_model(model: EgoM2P, folder: Path, masking: MaskingConfig | None = None) -> None:
    """``config.json`` (architecture + modality table) and ``model.safetensors``: what inference loads."""
    from egoforge.data.atomic import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    save_state_dict(model, folder / "model.safetensors")
    atomic_write_json(folder / "config.json", {"type": MODEL_TYPE, "model": asdict(model.cfg),
                                               "modalities": table_record(model.table),
                                               "masking": asdict(masking) if masking else None})


def load_model(folder: str | Path, device: str = "cpu") -> EgoM2P:
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no EgoM2P model (config.json + model.safetensors from `egoforge train`)")
    config = json.loads(path.read_text())
    if config.get("type") != MODEL_TYPE:
        raise ValueError(f"{path}: not an EgoM2P model")
    model = build_model(ModelConfig(**config["model"]), modality_table(config["modalities"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device).eval()


def _identity(batch):
    return batch


def _to_device(batch: dict, device: torch.device) -> dict:
    mods = {m: {k: v.to(device, non_blocking=True) for k, v in d.items()} for m, d in batch["modalities"].items()}
    return {**batch, "modalities": mods}


def train(recipe: dict, dry_run: bool = False) -> int:
    from egoforge.egom2p.shards import ShardFormatError

    try:
        return _train(recipe, dry_run)
    except ShardFormatError as exc:  # bad or missing data: a message, not a traceback
        print(f"egoforge train (egom2p): {exc}", file=sys.stderr)
        return 1


def _train(recipe: dict, dry_run: bool) -> int:
    from accelerate import PartialState

    cfg = parse_config(recipe)
    if not isinstance(cfg.modalities, dict):
        raise RecipeError(f"recipe.modalities: expected a mapping of modality -> fields, got {cfg.modalities!r}")
    try:
        table = modality_table(cfg.modalities)
    except ValueError as exc:
        raise RecipeError(f"recipe.{exc}") from None
    world = PartialState().num_processes
    global_batch = cfg.batch_size * cfg.gradient_accumulation_steps * world
    per_sample = cfg.masking.num_input_tokens + cfg.masking.num_target_tokens
    schedule = Schedule(
        total_steps=steps_for_tokens(cfg.total_tokens, global_batch, per_sample),
        warmup_steps=steps_for_tokens(cfg.warmup_tokens, global_batch, per_sample) if cfg.warmup_tokens > 0 else 0,
        peak_lr=absolute_lr(cfg.optim.blr, global_batch), min_lr=absolute_lr(cfg.optim.min_blr, global_batch),
        warmup_start_lr=cfg.optim.warmup_start_lr, tokens_per_step=global_batch * per_sample)
    with torch.device("meta"):
        params = count_parameters(build_model(cfg.model, table))
    summary = (f"EgoM2P: {params / 1e6:.1f}M parameters, {len(cfg.data.datasets)} datasets, global batch "
               f"{global_batch} ({world} processes), lr {schedule.peak_lr:.3g}, "
               f"{steps_plan(schedule.total_steps, cfg.max_steps, schedule.lr)} ({schedule.warmup_steps} "
               f"warm-up), {per_sample} tokens per sample")
    if dry_run:
        print(summary)
        print(json.dumps(asdict(cfg), indent=2, default=str))
        return 0
    if PartialState().is_main_process:
        print(summary)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, table)
    state = PartialState()
    n_in, n_tgt = cfg.masking.num_input_tokens, cfg.masking.num_target_tokens

    def micro_batches(start: int, accelerator):
        stream = MixtureBatches(cfg.data, table, cfg.masking, cfg.batch_size, cfg.seed, state.process_index,
                                state.num_processes, skip_batches=start)
        loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.data.num_workers,
                                             collate_fn=_identity, pin_memory=accelerator.device.type == "cuda")
        for batch in loader:
            yield _to_device(batch, accelerator.device)

    def loss_fn(model, batch):
        loss, parts = model(batch["modalities"], n_in, n_tgt)
        return loss, {f"loss_{m}": float(v.detach()) for m, v in parts.items()}

    pipeline = Pipeline(micro_batches, loss_fn, save_final=lambda m, out: save_model(m, out, cfg.masking))
    fit(cfg, cfg.optim, model, schedule, pipeline, config_record=asdict(cfg), name="egom2p",
        no_decay=model.no_weight_decay())
    return 0
