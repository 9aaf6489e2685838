"""What the TRL GRPO adapter adds to egoforge's registries: the ``ego3s_trl_grpo`` trainer of ``egoforge train``.

Imports nothing heavy: TRL and the training code load when the trainer runs.
"""

from __future__ import annotations

from egoforge.registry import TRAINERS


def run_ego3s_trl_grpo(recipe: dict, dry_run: bool = False) -> int:
    """Ego3S GRPO on one GPU or CPU through TRL 0.24 (Ego3S rewards + ECR curriculum)."""
    from egoforge.trl_grpo.train import run

    return run(recipe, dry_run)


TRAINERS.add("ego3s_trl_grpo", run_ego3s_trl_grpo)
