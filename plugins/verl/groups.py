"""Gather the G rollouts of a prompt inside verl's reward loop, which scores rollouts one at a time.

verl 0.9.1 scores each rollout as soon as it is generated, on a randomly chosen ``RewardLoopWorker`` actor, so
no reward manager call ever sees a whole group. ``GroupCollector`` is a small async rendezvous: every rollout
submits its per-rollout summary under the prompt's ``uid`` and waits until the group is complete; then all
members get every summary of the group and compute the group terms themselves.

The collector lives in the worker process when there is one reward worker (or in tests), and in one named Ray
actor per Ray job, shared by all workers, otherwise. A group is released when ``expected`` members arrived; when
at least ``minimum`` arrived and nothing new came for ``settle_s`` (validation may sample fewer rollouts than
training); or after ``timeout_s`` (a failed rollout must not block its siblings forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

RAY_ACTOR_NAME = "egoforge_ego3s_group_collector"


@dataclass
class _Group:
    members: list = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    readers: int = 0


class GroupCollector:
    def __init__(self, timeout_s: float = 900.0, settle_s: float = 5.0, closed_memory: int = 100_000) -> None:
        self.timeout_s = timeout_s
        self.settle_s = settle_s
        self._groups: dict[str, _Group] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._closed_memory = closed_memory

    async def submit(self, key: str, value: Any, expected: int, minimum: int | None = None) -> list:
        """Add ``value`` to group ``key``; returns every value of the group once it is released."""
        if key in self._closed:  # a straggler after its group was released on timeout: a group of one
            logger.warning("egoforge: rollout of group %s arrived after the group was released", key)
            return [value]
        group = self._groups.setdefault(key, _Group())
        group.members.append(value)
        group.last = time.monotonic()
        if len(group.members) >= expected:
            group.released.set()
        minimum = expected if minimum is None else min(minimum, expected)
        while not group.released.is_set():
            now = time.monotonic()
            wait = group.started + self.timeout_s - now
            if len(group.members) >= minimum:
                wait = min(wait, group.last + self.settle_s - now)
            if wait <= 0:
                if now >= group.started + self.timeout_s:
                    logger.warning("egoforge: group %s released after %.0fs with %d of %d rollouts", key,
                                   self.timeout_s, len(group.members), expected)
                group.released.set()
                break
            try:
                await asyncio.wait_for(group.released.wait(), timeout=wait)
            except asyncio.TimeoutError:
                continue
        group.readers += 1
        members = list(group.members)
        if group.readers >= len(group.members):
            self._groups.pop(key, None)
            self._closed[key] = None
            while len(self._closed) > self._closed_memory:
                self._closed.popitem(last=False)
        return members

    def pending(self) -> int:
        return len(self._groups)


def ray_collector(timeout_s: float, settle_s: float):
    """The job's collector actor (created by the first reward worker that asks, then shared by all of them).

    Named per Ray job and not detached: it is owned by the worker that created it and goes away with the job,
    instead of outliving it in a long-lived cluster and serving the next job stale groups.
    """
    import ray

    name = f"{RAY_ACTOR_NAME}_{ray.get_runtime_context().get_job_id()}"
    actor_cls = ray.remote(num_cpus=0, max_concurrency=100_000)(GroupCollector)
    return actor_cls.options(name=name, get_if_exists=True).remote(timeout_s=timeout_s, settle_s=settle_s)


class CollectorClient:
    """Uniform async ``submit`` over a local collector or the Ray actor."""

    def __init__(self, backend: str = "auto", num_workers: int = 1, timeout_s: float = 900.0,
                 settle_s: float = 5.0) -> None:
        if backend not in ("auto", "local", "ray"):
            raise ValueError(f"group collector backend must be auto, local or ray, not {backend!r}")
        use_ray = backend == "ray"
        if backend == "auto" and num_workers > 1:
            try:
                import ray

                use_ray = ray.is_initialized()
            except ImportError:
                use_ray = False
        self.backend = "ray" if use_ray else "local"
        self._local = None if use_ray else GroupCollector(timeout_s, settle_s)
        self._actor = ray_collector(timeout_s, settle_s) if use_ray else None

    async def submit(self, key: str, value: Any, expected: int, minimum: int | None = None) -> list:
        if self._local is not None:
            return await self._local.submit(key, value, expected, minimum)
        return await self._actor.submit.remote(key, value, expected, minimum)
