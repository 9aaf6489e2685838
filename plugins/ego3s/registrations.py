"""What Ego3S adds to egoforge's registries (``egoforge list``); imports nothing heavy."""

from __future__ import annotations

from egoforge.registry import REWARD_MANAGERS, REWARDS, TRAINERS
from egoforge.rewards import accuracy, answers, ego3s


def _run_trl_grpo(recipe: dict, dry_run: bool = False) -> int:
    """Ego3S GRPO on one GPU or CPU through TRL 0.24 (Ego3S rewards + ECR curriculum)."""
    from egoforge.trl_grpo.train import run

    return run(recipe, dry_run)


REWARDS.add("ego3s", ego3s.compute_score,
            "verl compute_score: format + accuracy + IRL object penalty/CLIP similarity "
            "(pkg://egoforge.rewards.ego3s)")
REWARDS.add("ego3s_accuracy", accuracy.accuracy, "accuracy per Video-R1 problem_type (MC, numerical, OCR, "
            "free-form, regression)")
REWARDS.add("ego3s_format", answers.format_matches, "<think>..</think><answer>..</answer>[<object>..</object>]")
REWARD_MANAGERS.add("ego3s_irl", "egoforge.verl.reward_manager:Ego3SRewardManager",
                    "Ego3S group terms (grounded rarity bonus r_int, length bonus) over the G rollouts of a prompt")
TRAINERS.add("ego3s_trl_grpo", _run_trl_grpo)
