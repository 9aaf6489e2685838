"""LEGO's entry in egoforge's trainer registry (``egoforge train recipes/lego_ldm_*.yaml``).

Importing this module only registers the trainer; the trainer (:mod:`egoforge.lego.trainer`) loads when it runs.
"""

from __future__ import annotations

import json

from egoforge.lego.config import LegoRecipe, LegoSetupError
from egoforge.registry import TRAINERS
from egoforge.train.recipe import LocalPath

TRAINER_NAME = "lego_ldm"


def _as_recipe_error(exc: Exception):
    from egoforge.train.recipe import RecipeError

    return RecipeError(str(exc))


@TRAINERS.register(TRAINER_NAME, doc="LEGO latent diffusion with VLLM conditioning (diffusers UNet, accelerate, EMA)")
def run(recipe: dict, dry_run: bool = False) -> int:
    """The ``egoforge train`` entry: type-check the recipe, then train (or, with ``dry_run``, check the data)."""
    from egoforge.data.jsonio import DataFormatError
    from egoforge.lego.trainer import _steps_per_epoch, check_train_options, make_dataset, train
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


_FEATURES = "write it with `egoforge lego features` (stage A's VLLM features), or point at the official release"
run.local_paths = (
    LocalPath("model.pretrained", "a local diffusers Stable Diffusion folder (stable-diffusion-v1-5, downloaded "
              "from its hub page), or model.pretrained=null for the tiny random model of recipes/lego_ldm_tiny.yaml"),
    LocalPath("data.train_index", "write it with `egoforge lego convert`", kind="file"),
    LocalPath("data.val_index", "write it with `egoforge lego convert`", kind="file"),
    LocalPath("data.media_root", "the folder holding the index's images (LEGO's EgoGen frames)"),
    *(LocalPath(f"data.{split}_features.{kind}", _FEATURES) for split in ("train", "val")
      for kind in ("dir", "image_dir", "text_dir")),
)
