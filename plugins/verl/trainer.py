"""verl trainer ``ego3s_ecr``: verl's synchronous V1 PPO/GRPO trainer plus the ECR curriculum.

``trainer.v1.trainer_mode=ego3s_ecr`` (registered on ``import verl`` through egoforge's ``verl.plugins`` entry
point). Two additions to ``PPOTrainerSync``, nothing else changes:

* before advantages are computed, each rollout group's rewards (``rm_scores`` summed over tokens, per ``uid``)
  are handed to the ``ECRDataset`` (keyed by the prompt's dataset ``index``);
* at the end of every step, before verl saves a checkpoint, the curriculum checks for stagnation and may
  recurate, so the checkpoint's ``data.pt`` already holds the post-recuration selection.

verl >= 0.8 removed the curriculum sampler hook; this is the supported replacement (a registered trainer and a
``data.custom_cls`` dataset), without patching verl.
"""

from __future__ import annotations

import logging

import transfer_queue as tq
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from egoforge.verl.dataset import ECRDataset, group_rewards

NAME = "ego3s_ecr"
logger = logging.getLogger(__name__)


@register_trainer(NAME)
class ECRTrainer(PPOTrainerSync):
    """Synchronous GRPO with the Ego3S evolving curriculum (see the module docstring)."""

    def _init_dataloader(self):
        super()._init_dataloader()
        if not isinstance(self.train_dataset, ECRDataset):
            raise ValueError(f"trainer.v1.trainer_mode={NAME} needs the ECR dataset: data.custom_cls.path="
                             "pkg://egoforge.verl.dataset data.custom_cls.name=ECRDataset")

    def _observe_rewards(self, batch, metrics: dict) -> None:
        keys = [k for k, tag in zip(batch.keys, batch.tags) if not tag.get("is_padding", False)]
        if not keys:
            return
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id,
                               select_fields=["uid", "index", "rm_scores"])
        rm_scores = data["rm_scores"]
        if getattr(rm_scores, "is_nested", False):
            rm_scores = rm_scores.to_padded_tensor(padding=0.0)
        groups = group_rewards(_as_list(data["uid"]), _as_list(data["index"]), rm_scores.sum(dim=-1).tolist())
        self.train_dataset.observe(groups)
        metrics["ecr/groups_observed"] = float(len(groups))

    def _compute_advantage(self, batch, metrics: dict):
        self._observe_rewards(batch, metrics)
        return super()._compute_advantage(batch, metrics)

    def step(self, metrics: dict, timing_raw: dict):
        batch = super().step(metrics, timing_raw)
        ecr_metrics = self.train_dataset.curriculum_step(self.global_steps)
        if ecr_metrics:
            logger.info("ECR check at step %d: %s", self.global_steps, ecr_metrics)
            metrics.update(ecr_metrics)
        return batch


def _as_list(values) -> list:
    """A TransferQueue field (tensor, NonTensorStack or list) as a Python list."""
    return values.tolist() if hasattr(values, "tolist") else list(values)
