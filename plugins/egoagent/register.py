"""Registers EgoAgent's trainers in egoforge.registry.TRAINERS (the heavy modules load when a trainer runs)."""

from __future__ import annotations

from egoforge.registry import TRAINERS


def egoagent_stage1(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 1: DINO multi-crop pretraining of the causal transformer on egocentric frames."""
    from egoforge.egoagent.train.stage1 import run

    return run(recipe, dry_run)


def egoagent_stage2(recipe: dict, dry_run: bool = False) -> int:
    """EgoAgent stage 2: joint representation-prediction-action training on frames + 3D body pose."""
    from egoforge.egoagent.train.stage2 import run

    return run(recipe, dry_run)


TRAINERS.add("egoagent_stage1", egoagent_stage1)
TRAINERS.add("egoagent_stage2", egoagent_stage2)
