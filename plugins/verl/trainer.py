"""verl trainer ``ego3s_ecr``: verl's synchronous V1 PPO/GRPO trainer plus the ECR curriculum.

``trainer.v1.trainer_mode=ego3s_ecr`` (registered on ``import verl`` through egoforge's ``verl.plugins`` entry
point). verl 0.9.1 compares ``trainer_mode`` with the literal ``"sync"`` in several places (replay buffer class,
``gen_batch_size``, padding vs eviction of failed groups, TransferQueue state in checkpoints): any other name gets
the asynchronous machinery. So the trainer rewrites ``trainer.v1.trainer_mode`` to ``sync`` before verl's
constructor reads it, and everything verl does is exactly what ``sync`` does. Three additions, nothing else:

* before advantages are computed, each rollout group's rewards (``rm_scores`` summed over tokens, per ``uid``)
  are handed to the ``ECRDataset`` (keyed by the prompt's dataset ``index``);
* at the end of every step, before verl saves a checkpoint, the curriculum checks for stagnation and may
  recurate, so the checkpoint's ``data.pt`` already holds the post-recuration selection;
* the train and validation datasets are told their split, so the reward manager waits for ``rollout.n``
  training rollouts but ``val_kwargs.n`` validation ones, even when both read the same file.

verl >= 0.8 removed the curriculum sampler hook; this is the supported replacement (a registered trainer and a
``data.custom_cls`` dataset), without patching verl.
"""

from __future__ import annotations

import logging

import transfer_queue as tq
from omegaconf import open_dict
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from egoforge.verl.dataset import ECRDataset, Ego3SDataset, group_rewards

NAME = "ego3s_ecr"
REWARD_FIELDS = ["uid", "index", "rm_scores"]
logger = logging.getLogger(__name__)


def mark_splits(train_dataset, val_dataset) -> None:
    """Tell egoforge's dataset classes which split they serve (verl does not pass ``is_train`` to them)."""
    if isinstance(train_dataset, Ego3SDataset):
        train_dataset.split = "train"
    if isinstance(val_dataset, Ego3SDataset):
        val_dataset.split = "val"


def observe_rollouts(dataset: ECRDataset, data) -> dict[str, float]:
    """Hand one step's rollout groups to the curriculum; ``data`` has ``uid``, ``index`` and ``rm_scores``
    (token-level, the scalar on the last response token) for the non-padding rollouts."""
    rm_scores = data["rm_scores"]
    if getattr(rm_scores, "is_nested", False):
        rm_scores = rm_scores.to_padded_tensor(padding=0.0)
    groups = group_rewards(_as_list(data["uid"]), _as_list(data["index"]), rm_scores.sum(dim=-1).tolist())
    dataset.observe(groups)
    return {"ecr/groups_observed": float(len(groups))}


@register_trainer(NAME)
class ECRTrainer(PPOTrainerSync):
    """Synchronous GRPO with the Ego3S evolving curriculum (see the module docstring)."""

    def __init__(self, config):
        with open_dict(config):
            config.trainer.v1.trainer_mode = "sync"  # verl's literal comparisons must take the sync branches
        super().__init__(config)

    def _init_dataloader(self):
        super()._init_dataloader()
        if not isinstance(self.train_dataset, ECRDataset):
            raise ValueError(f"trainer.v1.trainer_mode={NAME} needs the ECR dataset: data.custom_cls.path="
                             "pkg://egoforge.verl.dataset data.custom_cls.name=ECRDataset")
        mark_splits(self.train_dataset, self.val_dataset)

    def _fetch_reward_fields(self, batch):
        """uid, index and rm_scores of the step's non-padding rollouts, read from TransferQueue."""
        keys = [k for k, tag in zip(batch.keys, batch.tags) if not tag.get("is_padding", False)]
        if not keys:
            return None
        return tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=REWARD_FIELDS)

    def _observe_rewards(self, batch, metrics: dict) -> None:
        data = self._fetch_reward_fields(batch)
        if data is not None:
            metrics.update(observe_rollouts(self.train_dataset, data))

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
