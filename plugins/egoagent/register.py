"""Registers EgoAgent's trainers in egoforge.registry.TRAINERS (the heavy modules load when a trainer runs)."""

from __future__ import annotations

import sys

from egoforge.registry import TRAINERS
from egoforge.train.recipe import RecipeError


def _run(module: str, recipe: dict, dry_run: bool) -> int:
    """Import and run a stage; data and set-up problems end with one clear line instead of a traceback
    (recipe problems go back to ``egoforge train``, which names the recipe)."""
    import importlib

    from egoforge.data.jsonio import DataFormatError
    from egoforge.egoagent.train.engine import UnsupportedSetupError

    run = importlib.import_module(f"egoforge.egoagent.train.{module}").run
    try:
        return run(recipe, dry_run)
    except RecipeError:
        raise
    except (DataFormatError, FileNotFoundError, ValueError, UnsupportedSetupError) as exc:
        print(f"egoforge train: {exc}", file=sys.stderr)
        return 1


def egoagent_stage1(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 1: DINO multi-crop pretraining of the causal transformer on egocentric frames."""
    return _run("stage1", recipe, dry_run)


def egoagent_stage2(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 2: joint representation-prediction-action training on frames + 3D body pose."""
    return _run("stage2", recipe, dry_run)


TRAINERS.add("egoagent_stage1", egoagent_stage1)
TRAINERS.add("egoagent_stage2", egoagent_stage2)
