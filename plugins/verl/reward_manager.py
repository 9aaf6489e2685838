"""verl reward manager ``ego3s_irl``: per-rollout Ego3S scores plus the group terms that need all G rollouts.

Select it with ``reward.reward_manager.name=ego3s_irl`` next to
``reward.custom_reward_function.path=pkg://egoforge.rewards.ego3s``. Each rollout is scored by the configured
``compute_score`` (as verl's naive manager does), then waits in a ``GroupCollector`` for its siblings (same
``uid``); the grounded rarity bonus r_int (and, when enabled, Video-R1's length bonus) is computed from the group
and added. Registered on ``import verl`` through egoforge's ``verl.plugins`` entry point.

Group size: ``actor_rollout_ref.rollout.n`` for training rollouts and ``rollout.val_kwargs.n`` for validation
(egoforge's dataset classes mark each row's split). Settings of the collector come from the same
``reward_kwargs`` as the reward: ``group_backend`` (auto|local|ray), ``group_timeout_s``, ``group_settle_s``.
"""

from __future__ import annotations

import logging
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from egoforge.rewards.ego3s import clip_from_kwargs, require_clip, verl_settings_from_kwargs
from egoforge.rewards.scoring import finish_member
from egoforge.verl.groups import CollectorClient

NAME = "ego3s_irl"
logger = logging.getLogger(__name__)
IRL_KEYS = ("accuracy", "clip_sim", "penalty", "score")


def reward_kwargs_of(config) -> dict[str, Any]:
    """``reward.custom_reward_function.reward_kwargs`` as a plain dict (empty when unset)."""
    reward = config.get("reward", {}) or {}
    custom = reward.get("custom_reward_function", {}) or {}
    kwargs = custom.get("reward_kwargs", {}) or {}
    return dict(kwargs.items())


def group_sizes(config) -> tuple[int, int]:
    """(training n, validation n) of the rollout config."""
    rollout = config.actor_rollout_ref.rollout
    val_kwargs = rollout.get("val_kwargs", {}) or {}
    return int(rollout.n), int(val_kwargs.get("n", 1) or 1)


@register(NAME)
class Ego3SRewardManager(NaiveRewardManager):
    """Naive per-rollout scoring + Ego3S group terms (see the module docstring)."""

    def __init__(self, config, tokenizer, compute_score, reward_router_address=None, reward_model_tokenizer=None):
        super().__init__(config, tokenizer, compute_score, reward_router_address, reward_model_tokenizer)
        kwargs = reward_kwargs_of(config)
        require_clip(kwargs)  # at start-up, in every reward worker, not at the first rollout
        self.settings = verl_settings_from_kwargs(**kwargs)  # refuses temporal=true: verl has no shuffled rollouts
        if self.settings.irl:  # load CLIP now: a bad path fails at start-up, and the log names the device
            clip = clip_from_kwargs(**kwargs)
            logger.warning("egoforge %s: CLIP %s on %s", NAME, kwargs.get("clip_model"), getattr(clip, "device", "?"))
        self.train_n, self.val_n = group_sizes(config)
        num_workers = int((config.get("reward", {}) or {}).get("num_workers", 1) or 1)
        self.collector = CollectorClient(
            backend=str(kwargs.get("group_backend", "auto")),
            num_workers=num_workers,
            timeout_s=float(kwargs.get("group_timeout_s", 900.0)),
            settle_s=float(kwargs.get("group_settle_s", 30.0)),
        )

    def _group_size(self, extra_info: dict) -> tuple[int, int]:
        split = extra_info.get("split")
        if split == "train":
            return self.train_n, self.train_n
        if split == "val":
            return self.val_n, self.val_n
        return max(self.train_n, self.val_n), min(self.train_n, self.val_n)

    async def run_single(self, data: DataProto) -> dict:
        result = await super().run_single(data)
        info = dict(result["reward_extra_info"])
        required = IRL_KEYS if self.settings.irl else ("accuracy", "score")
        missing = [k for k in required if k not in info]
        if missing:
            raise ValueError(f"reward manager {NAME!r} needs the Ego3S reward (returns {list(required)}); the "
                             f"configured compute_score returned no {missing}: set reward.custom_reward_function.path="
                             "pkg://egoforge.rewards.ego3s")
        item = data[-1:][0]
        response_length = int(item.batch["attention_mask"][-item.batch["responses"].shape[-1]:].sum())
        extra_info = item.non_tensor_batch.get("extra_info", {}) or {}
        uid = item.non_tensor_batch.get("uid")
        summary = (float(info.get("clip_sim", 0.0)), float(info["accuracy"]))
        if uid is None:  # no group identity (e.g. verl's colocated reward-model path): a group of one
            group = [summary]
        else:
            expected, minimum = self._group_size(extra_info)
            group = await self.collector.submit(str(uid), summary, expected, minimum)
        row = finish_member(info, [s for s, _ in group], [a for _, a in group], self.settings, response_length)
        row["group_size"] = float(len(group))
        return {"reward_score": row["score"], "reward_extra_info": row}
