"""What egoforge adds to verl's registries: the records the ``verl.plugins`` entry point installs and
``egoforge list`` shows (:class:`egoforge.registry.VerlExtension`). Imports nothing but the registry.

To add a verl extension, decorate the class with verl's own registration decorator and add its record here;
``tests/test_registry.py`` fails when the two disagree.
"""

from __future__ import annotations

from egoforge.registry import REWARD_MANAGERS, VERL_TRAINERS, VerlExtension

REWARD_MANAGERS.add(
    "ego3s_irl",
    VerlExtension(path="egoforge.verl.reward_manager:Ego3SRewardManager",
                  after="verl.experimental.reward_loop.reward_manager",
                  table="verl.experimental.reward_loop.reward_manager.registry:REWARD_MANAGER",
                  setting="reward.reward_manager.name=ego3s_irl"),
    "Ego3S group terms (grounded rarity bonus r_int, length bonus) over the G rollouts of a prompt")
VERL_TRAINERS.add(
    "ego3s_ecr",
    VerlExtension(path="egoforge.verl.trainer:ECRTrainer",
                  after="verl.trainer.ppo.v1",
                  table="verl.trainer.ppo.v1.trainer_base:TRAINER_REGISTRY",
                  setting="trainer.v1.trainer_mode=ego3s_ecr"),
    "verl's synchronous GRPO trainer plus the Ego3S evolving curriculum (ECR)")
