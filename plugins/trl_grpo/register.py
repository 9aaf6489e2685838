"""What the TRL GRPO adapter adds to egoforge's registries: the ``ego3s_trl_grpo`` trainer of ``egoforge train``.

Imports nothing heavy: TRL and the training code load when the trainer runs.
"""

from __future__ import annotations

from egoforge.registry import TRAINERS
from egoforge.train.recipe import LocalPath


def run_ego3s_trl_grpo(recipe: dict, dry_run: bool = False) -> int:
    """Ego3S GRPO on one GPU or CPU through TRL 0.24 (Ego3S rewards + ECR curriculum)."""
    from egoforge.trl_grpo.train import run

    return run(recipe, dry_run)


run_ego3s_trl_grpo.local_paths = (  # checked by `egoforge train` before anything loads
    LocalPath("model", "a local Qwen2.5-VL folder (egoforge runs offline), or a tiny one: "
              "`egoforge make tiny-model qwen2_5_vl --out DIR`"),
    LocalPath("data.train", "write it with `egoforge ego3s csm` (selected.json) or `egoforge ego3s convert`",
              kind="file"),
    LocalPath("data.pool", "a Video-R1 json (`egoforge ego3s demo-data --out DIR` writes one)", kind="file"),
    LocalPath("data.media_root", "the folder the samples' video paths are relative to"),
    LocalPath("reward.clip_model", "a local CLIP folder, or a tiny one: `egoforge make tiny-model clip --out DIR`"),
)
TRAINERS.add("ego3s_trl_grpo", run_ego3s_trl_grpo)
