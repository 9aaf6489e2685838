"""Registers EgoAgent's trainers in egoforge.registry.TRAINERS (the heavy modules load when a trainer runs)."""

from __future__ import annotations

import sys

from egoforge.registry import TRAINERS
from egoforge.train.recipe import LocalPath, RecipeError

_FRAMES = "extract frames with `egoforge egoagent frames VIDEOS --out DIR` (generated ones: `egoforge egoagent synth`)"
STAGE1_PATHS = (LocalPath("data.frame_roots", _FRAMES),)
STAGE2_PATHS = (
    LocalPath("data.pose_dir", "write it with `egoforge egoagent poses --root EGOEXO4D --out DIR`"),
    LocalPath("data.frames_root", "write it with `egoforge egoagent undistort --takes-root TAKES --out DIR`"),
    LocalPath("data.takes_json", "Ego-Exo4D's takes.json (from its download)", kind="file"),
    LocalPath("stage2.init_from", "train stage 1 first (`egoforge train recipes/egoagent_stage1_tiny.yaml`) and "
              "point at a checkpoint-N folder of it"),
)


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


egoagent_stage1.local_paths = STAGE1_PATHS  # checked by `egoforge train` before anything loads
egoagent_stage2.local_paths = STAGE2_PATHS
TRAINERS.add("egoagent_stage1", egoagent_stage1)
TRAINERS.add("egoagent_stage2", egoagent_stage2)
