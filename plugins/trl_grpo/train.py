"""``egoforge train`` trainer ``ego3s_trl_grpo``: Ego3S GRPO on one GPU (or CPU) with TRL 0.24's GRPOTrainer.

The recipe (see ``recipes/ego3s_trl_grpo_qwen2_5_vl_3b.yaml``) names the model, the CSM-selected Video-R1 json
(``data.train``), an optional pool for ECR (``data.pool``), the reward settings (the same keys as the verl
adapter's ``reward_kwargs``), the ECR settings and ``grpo:`` (any ``trl.GRPOConfig`` field). The compatibility
fixes of ``egoforge.trl_grpo.compat`` are applied; egoforge's rewards drive the advantages and every rollout
group's total reward feeds the ECR curriculum, which a callback checks after each optimizer step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum
from egoforge.ego3s.media import FrameBudget
from egoforge.train.recipe import RecipeError, build_config

NAME = "ego3s_trl_grpo"


@dataclass
class DataSection:
    train: str = ""  # Video-R1 json: the CSM-selected samples (the initial active set)
    pool: str | None = None  # Video-R1 json the curriculum draws new samples from
    media_root: str | None = None  # default: the folder of each json
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16
    max_pixels: int = 128 * 28 * 28
    min_pixels: int = 3136


@dataclass
class Ego3STRLRecipe:
    model: str = ""
    output_dir: str = "saves/ego3s_trl_grpo"
    data: DataSection = field(default_factory=DataSection)
    reward: dict[str, Any] = field(default_factory=dict)  # preset, irl, clip_model, lambda_o, ... (verl names)
    # ECRConfig fields; enabled unless `enabled: false`. `rescore: csm` ranks pool candidates by CSM's coarse test
    # with the current policy (`rescore_candidates` of them, default 32) when the curriculum recurates.
    ecr: dict[str, Any] = field(default_factory=dict)
    grpo: dict[str, Any] = field(default_factory=dict)  # trl.GRPOConfig fields


class ECRCallbackFactory:
    """Builds the TrainerCallback lazily (transformers is imported only when training)."""

    @staticmethod
    def make(curriculum: ECRCurriculum, log: list, rescore_factory=None):
        from transformers import TrainerCallback

        class ECRCallback(TrainerCallback):
            """Runs the ECR check after every optimizer step; recurations take effect on later batches."""

            def on_step_end(self, args, state, control, **kwargs):
                rescore = rescore_factory(kwargs["model"]) if rescore_factory is not None else None
                result = curriculum.step(state.global_step, rescore)
                if result is not None:
                    log.append(result.metrics() | {"step": state.global_step, "added": result.added,
                                                   "dropped": result.dropped})
                return control

        return ECRCallback()


def _load_samples(path: str | os.PathLike, media_root: str | None) -> tuple[dict[str, dict], Path]:
    from egoforge.ego3s.convert import ConversionError
    from egoforge.ego3s.schema import load_video_r1, validate_rows

    path = Path(path)
    root = Path(media_root) if media_root else path.parent
    rows = load_video_r1(path)
    issues = validate_rows(rows, str(path), root)
    if issues:
        raise ConversionError(issues)
    return {str(r["problem_id"]): r for r in rows}, root


def _absolute_media(samples: dict[str, dict], root: Path) -> dict[str, dict]:
    """Rows with media paths resolved under their own root, so train and pool may live in different folders."""
    from egoforge.data.paths import resolve_under

    out = {}
    for key, row in samples.items():
        row = dict(row)
        row["path"] = str(resolve_under(root, row["path"], allow_absolute=True))
        if row.get("roi_path"):
            row["roi_path"] = str(resolve_under(root, row["roi_path"], allow_absolute=True))
        out[key] = row
    return out


def build_trainer(recipe: Ego3STRLRecipe):
    """(trainer, curriculum, ecr_log) ready to ``train()``."""
    from egoforge.rewards.ego3s import clip_from_kwargs, settings_from_kwargs
    from egoforge.rewards.trl import Ego3STRLRewards
    from egoforge.trl_grpo.compat import apply, vision_suppress_tokens, vlm_grpo_trainer_cls
    from egoforge.trl_grpo.data import CurriculumDataset

    apply()
    from transformers import AutoProcessor
    from trl import GRPOConfig

    train, train_root = _load_samples(recipe.data.train, recipe.data.media_root)
    samples = _absolute_media(train, train_root)
    pool_ids: list[str] = []
    if recipe.data.pool:
        pool, pool_root = _load_samples(recipe.data.pool, recipe.data.media_root)
        pool = {k: v for k, v in _absolute_media(pool, pool_root).items() if k not in samples}
        samples.update(pool)
        pool_ids = list(pool)
    ecr_settings = dict(recipe.ecr)
    ecr_enabled = bool(ecr_settings.pop("enabled", True))
    rescore_mode = ecr_settings.pop("rescore", None)
    rescore_candidates = int(ecr_settings.pop("rescore_candidates", 32))
    if rescore_mode not in (None, "csm"):
        raise RecipeError(f"ecr.rescore: {rescore_mode!r} is not supported; use `csm` or leave it out")
    curriculum = ECRCurriculum(list(train), pool_ids, build_config(ECRConfig, ecr_settings, "ecr"), recipe.data.train)
    d = recipe.data
    budget = FrameBudget(fps=d.fps, min_frames=d.min_frames, max_frames=d.max_frames, max_pixels=d.max_pixels,
                         min_pixels=d.min_pixels, image_max_pixels=d.max_pixels, image_min_pixels=d.min_pixels)
    settings = settings_from_kwargs(**recipe.reward)
    dataset = CurriculumDataset(samples, curriculum, "/", budget, settings.irl)

    processor = AutoProcessor.from_pretrained(recipe.model)
    grpo = {"output_dir": recipe.output_dir, "max_prompt_length": None, "report_to": "none",
            "remove_unused_columns": False, "dataloader_num_workers": 0} | dict(recipe.grpo)
    generation_kwargs = dict(grpo.pop("generation_kwargs", None) or {})
    generation_kwargs.setdefault("suppress_tokens", vision_suppress_tokens(processor))
    config = GRPOConfig(generation_kwargs=generation_kwargs, **grpo)
    if config.dataloader_num_workers:
        raise RecipeError("grpo.dataloader_num_workers must be 0: the curriculum re-points slots in this process")

    shuffled = None
    if settings.temporal_bonus is not None:
        from egoforge.trl_grpo.temporal import ShuffledFrameSampler

        shuffled = ShuffledFrameSampler(processor, config.max_completion_length, config.temperature,
                                        generation_kwargs["suppress_tokens"])
    rewards = Ego3STRLRewards(settings, clip_from_kwargs(**recipe.reward), config.num_generations,
                              on_scored=lambda ids, totals: _observe(curriculum, ids, totals),
                              shuffled_sampler=shuffled, seed=config.seed)
    ecr_log: list = []
    rescore_factory = None
    if rescore_mode == "csm":
        rescore_factory = _csm_rescore_factory(processor, samples, budget, config, rescore_candidates)
    callbacks = [ECRCallbackFactory.make(curriculum, ecr_log, rescore_factory)] if ecr_enabled else []
    trainer_cls = vlm_grpo_trainer_cls()
    trainer = trainer_cls(model=recipe.model, reward_funcs=rewards.functions(), args=config, train_dataset=dataset,
                          processing_class=processor, callbacks=callbacks)
    if shuffled is not None:
        shuffled.bind(trainer.model)
    return trainer, curriculum, ecr_log


def _csm_rescore_factory(processor, samples: dict[str, dict], budget: FrameBudget, config, candidates: int):
    """Builds, at recuration time, CSM's coarse test with the live policy (G responses, temperature 0.7)."""
    from egoforge.ego3s.csm_run import CSMRunOptions, live_rescorer
    from egoforge.ego3s.generation import SamplingSettings, TransformersSampler

    settings = SamplingSettings(n=config.num_generations, temperature=0.7,
                                max_new_tokens=config.max_completion_length, batch_size=4, seed=config.seed)

    def factory(model):
        device = str(next(model.parameters()).device)
        sampler = TransformersSampler("", settings, device=device, model_obj=model, processor=processor)
        rescore = live_rescorer(sampler, samples, "/", CSMRunOptions(budget=budget), limit=candidates)

        def in_eval_mode(pool_ids):
            was_training = model.training
            model.eval()
            try:
                return rescore(pool_ids)
            finally:
                model.train(was_training)

        return in_eval_mode

    return factory


def _observe(curriculum: ECRCurriculum, ids: list[str], totals: list[float]) -> None:
    groups: dict[str, list[float]] = {}
    for sample_id, total in zip(ids, totals):
        groups.setdefault(sample_id, []).append(total)
    curriculum.observe_groups(groups)


REWARD_EXTRA_KEYS = ("clip_model", "clip_backend", "clip_device")
ECR_EXTRA_KEYS = ("enabled", "rescore", "rescore_candidates")


def validate_recipe(cfg: Ego3STRLRecipe) -> None:
    """Check the free-form sections (reward, ecr, grpo) key by key, naming the offending key."""
    import dataclasses

    from egoforge.rewards.ego3s import SETTING_KEYS, settings_from_kwargs

    if not cfg.model or not cfg.data.train:
        raise RecipeError("recipe needs `model:` and `data.train:`")
    unknown = sorted(set(cfg.reward) - set(SETTING_KEYS) - set(REWARD_EXTRA_KEYS))
    if unknown:
        raise RecipeError(f"reward: unknown key(s) {unknown}; known: {sorted(SETTING_KEYS + REWARD_EXTRA_KEYS)}")
    try:
        settings_from_kwargs(**cfg.reward)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"reward: {exc}") from None
    build_config(ECRConfig, {k: v for k, v in cfg.ecr.items() if k not in ECR_EXTRA_KEYS}, "ecr")
    from egoforge.trl_grpo.compat import apply

    apply()
    from trl import GRPOConfig

    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(cfg.grpo) - known)
    if unknown:
        raise RecipeError(f"grpo: unknown trl.GRPOConfig field(s) {unknown}")


def run(recipe: dict, dry_run: bool = False) -> int:
    """The ``egoforge train`` entry: validate, build, train, save the model and the ECR state."""
    from egoforge.data.atomic import atomic_write_json

    cfg = build_config(Ego3STRLRecipe, recipe, "recipe")
    validate_recipe(cfg)
    if dry_run:
        print(json.dumps(recipe, indent=2, default=str))
        return 0
    trainer, curriculum, ecr_log = build_trainer(cfg)
    trainer.train()
    trainer.save_model(cfg.output_dir)
    atomic_write_json(Path(cfg.output_dir) / "ecr_state.json", curriculum.state_dict())
    atomic_write_json(Path(cfg.output_dir) / "ecr_log.json", ecr_log)
    return 0
