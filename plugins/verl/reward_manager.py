"""verl reward manager ``ego3s_irl``: per-rollout Ego3S scores plus the group terms that need all G rollouts.

Select it with ``reward.reward_manager.name=ego3s_irl`` next to
``reward.custom_reward_function.path=pkg://egoforge.rewards.ego3s``. Each rollout is scored by the configured
``compute_score`` (decoded and called as verl's naive manager does), then waits in a ``GroupCollector`` for its
siblings (same ``uid``); the grounded rarity bonus r_int (and, when enabled, Video-R1's length bonus) is computed
from the group and added. Registered on ``import verl`` through egoforge's ``verl.plugins`` entry point.

The CLIP term is batched across rollouts: ``compute_score`` runs with a recorder in place of CLIP, and the
recorded (object names, interaction image) request goes to the worker's ``ClipBatcher``, which scores the requests
of all concurrently scored rollouts in micro-batches of ``clip_batch_size`` (one image forward pass each, on the
GPU when the worker sees one). The scores are those of one-at-a-time CLIP; only the number of passes changes.

Group size: ``actor_rollout_ref.rollout.n`` for training rollouts and ``rollout.val_kwargs.n`` for validation
(egoforge's dataset classes mark each row's split). Settings of the collector come from the same
``reward_kwargs`` as the reward: ``group_backend`` (auto|local|ray), ``group_timeout_s``, ``group_settle_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from egoforge.rewards.clip import ClipBatcher
from egoforge.rewards.ego3s import clip_batch_size, clip_from_kwargs, require_clip, verl_settings_from_kwargs
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


class ClipRecorder:
    """Stands in for CLIP inside ``compute_score``: records the request and answers 0 (filled in afterwards)."""

    def __init__(self) -> None:
        self.request: tuple[list[str], str] | None = None

    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        self.request = (list(texts), image_path)
        return 0.0


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
        self.clip_batcher = None
        if self.settings.irl:  # load CLIP now: a bad path fails at start-up, and the log names the device
            clip = clip_from_kwargs(**kwargs)
            micro_batch = clip_batch_size(kwargs)
            self.clip_batcher = ClipBatcher(clip, micro_batch, wait_s=float(kwargs.get("clip_batch_wait_s", 0.02)))
            logger.warning("egoforge %s: CLIP %s on %s, micro-batches of %d rollouts", NAME,
                           kwargs.get("clip_model"), getattr(clip, "device", "?"), micro_batch)
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

    async def _score(self, item) -> tuple[dict, int]:
        """verl's naive per-rollout scoring (decode, then ``compute_score`` in a thread) with CLIP deferred to the
        batcher; returns the result and the response length in tokens."""
        response_ids = item.batch["responses"]
        response_length = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        response = await self.loop.run_in_executor(
            None, lambda: self.tokenizer.decode(response_ids[:response_length], skip_special_tokens=True))
        extra_info = dict(item.non_tensor_batch.get("extra_info", {}) or {})  # a copy: the rollout's row stays as is
        tool_extra_fields = item.non_tensor_batch.get("tool_extra_fields", None)
        if tool_extra_fields is not None:
            extra_info.update(tool_extra_fields.items())
        extra_info["num_turns"] = item.non_tensor_batch.get("__num_turns__", None)
        extra_info["rollout_reward_scores"] = item.non_tensor_batch.get("reward_scores", {})
        recorder = ClipRecorder() if self.clip_batcher is not None else None
        call = dict(data_source=item.non_tensor_batch["data_source"], solution_str=response,
                    ground_truth=item.non_tensor_batch["reward_model"]["ground_truth"], extra_info=extra_info)
        if self.reward_router_address is not None:
            call.update(reward_router_address=self.reward_router_address,
                        reward_model_tokenizer=self.reward_model_tokenizer)
        if recorder is not None:
            call["clip"] = recorder
        if self.is_async_reward_score:
            result = await self.compute_score(**call)
        else:
            result = await self.loop.run_in_executor(None, lambda: self.compute_score(**call))
        info = dict(result) if isinstance(result, dict) else {"score": result}
        if recorder is not None and recorder.request is not None:
            info["clip_sim"] = await self.clip_batcher.max_similarity(*recorder.request)
        return info, response_length

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1:][0]  # as verl's naive manager: multi-sequence outputs are scored on the last sequence
        try:
            info, response_length = await self._score(item)
        except TypeError as exc:
            if "clip" not in str(exc):
                raise
            raise ValueError(f"reward manager {NAME!r} needs the Ego3S reward: set reward.custom_reward_function.path="
                             f"pkg://egoforge.rewards.ego3s (the configured compute_score: {exc})") from exc
        required = IRL_KEYS if self.settings.irl else ("accuracy", "score")
        missing = [k for k in required if k not in info]
        if missing:
            raise ValueError(f"reward manager {NAME!r} needs the Ego3S reward (returns {list(required)}); the "
                             f"configured compute_score returned no {missing}: set reward.custom_reward_function.path="
                             "pkg://egoforge.rewards.ego3s")
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
