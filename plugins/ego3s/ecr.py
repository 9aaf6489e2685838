"""Evolving Curriculum Recuration (ECR): the framework-free core.

The training set is a fixed number of *slots* (trainers cache the dataset length, so it never changes); each slot
points at one sample. Every rollout group of a sample updates that sample's reward-variance state v(x) (does the
group still carry a GRPO signal?). Every ``interval`` steps the share of a fixed probe set whose state did not
change since the previous check is measured:

    S_k = |{x in probe measured in both windows : v_k(x) = v_{k-n}(x)}| / |measured|

If S_k > lambda_s the curriculum has stagnated and is recurated: active samples whose rewards no longer vary
(all rollouts right, or all wrong) are retired and their slots point at fresh samples from the pool (in pool
order, or ranked by a caller-supplied re-scoring, e.g. CSM with the current policy).

v_k(x) is read from the training rollouts themselves (each probe sample's most recent group), not from extra
probe rollouts: with the paper's batch of 512 prompts over ~3,200 samples each probe sample is rolled out every
~6 steps, ~16 times per 100-step window, so the state is fresh and no generation is spent on probing. Probe
samples not rolled out in a window are not measured (a retired probe sample stops counting).

Everything here is deterministic and its state round-trips through ``state_dict`` (plain JSON types), so a
resumed run makes exactly the same selections.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

STATE_MODES = ("binary", "buckets")


def reward_variance(rewards: Sequence[float]) -> float:
    """Population variance of one group's rewards."""
    n = len(rewards)
    if n == 0:
        return 0.0
    mean = sum(rewards) / n
    return sum((r - mean) ** 2 for r in rewards) / n


def variance_state(rewards: Sequence[float], mode: str = "binary", eps: float = 1e-6, high: float = 0.05) -> int:
    """Discretised reward-variance state of one group.

    ``binary``: 1 when the rewards vary (the group has a GRPO signal), else 0. ``buckets``: 0 (no variance),
    1 (variance <= ``high``), 2 (above).
    """
    variance = reward_variance(rewards)
    if variance <= eps:
        return 0
    if mode == "binary":
        return 1
    if mode == "buckets":
        return 1 if variance <= high else 2
    raise ValueError(f"unknown variance state mode {mode!r}; choose one of {STATE_MODES}")


@dataclass(frozen=True)
class ECRConfig:
    """Paper values: probe set 500, check every 100 steps, stagnation above lambda_s = 0.6."""

    probe_size: int = 500
    interval: int = 100
    lambda_s: float = 0.6
    state_mode: str = "binary"
    eps: float = 1e-6
    high_variance: float = 0.05
    min_measured: float = 0.1  # a decision needs at least this share of the probe set measured in both windows
    max_replace: float = 1.0  # at most this share of the slots is replaced per recuration
    seed: int = 0

    def __post_init__(self) -> None:
        if self.state_mode not in STATE_MODES:
            raise ValueError(f"state_mode must be one of {STATE_MODES}, not {self.state_mode!r}")
        if self.interval <= 0 or self.probe_size <= 0:
            raise ValueError("interval and probe_size must be positive")
        if not 0 <= self.lambda_s <= 1:
            raise ValueError(f"lambda_s must lie in [0, 1], not {self.lambda_s}")


@dataclass
class CheckResult:
    step: int
    stability: float | None  # S_k; None when too few probe samples were measured
    measured: int
    stagnant: bool
    dropped: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {
            "ecr/stability": -1.0 if self.stability is None else self.stability,
            "ecr/measured": float(self.measured),
            "ecr/stagnant": float(self.stagnant),
            "ecr/dropped": float(len(self.dropped)),
            "ecr/added": float(len(self.added)),
        }


Rescore = Callable[[list[str]], Mapping[str, float]]


class ECRCurriculum:
    """Active slots over a sample pool, with per-sample variance states and stagnation-triggered recuration."""

    def __init__(self, active: Sequence[str], pool: Sequence[str] = (), config: ECRConfig = ECRConfig()) -> None:
        active = [str(x) for x in active]
        if not active:
            raise ValueError("ECR needs at least one active sample")
        if len(set(active)) != len(active):
            raise ValueError("active sample ids must be unique")
        self.config = config
        rng = random.Random(config.seed)
        in_active = set(active)
        self.pool = [str(x) for x in dict.fromkeys(pool) if str(x) not in in_active]
        rng.shuffle(self.pool)
        self.slots = list(active)
        self.retired: list[str] = []
        self.probe = sorted(rng.sample(active, min(config.probe_size, len(active))))
        self.latest: dict[str, int] = {}  # sample id -> state of its most recent group
        self.snapshot: dict[str, int] = {}  # probe id -> state at the previous check
        self.seen: set[str] = set()  # probe ids rolled out since the previous check
        self.last_step = 0
        self.history: list[dict] = []

    # -- observation -------------------------------------------------------------------------------------
    def observe(self, sample_id: str, rewards: Sequence[float]) -> int:
        """Record one rollout group of ``sample_id``; returns its variance state."""
        c = self.config
        state = variance_state(rewards, c.state_mode, c.eps, c.high_variance)
        sample_id = str(sample_id)
        self.latest[sample_id] = state
        self.seen.add(sample_id)
        return state

    def observe_groups(self, groups: Mapping[str, Sequence[float]] | Iterable[tuple[str, Sequence[float]]]) -> None:
        items = groups.items() if isinstance(groups, Mapping) else groups
        for sample_id, rewards in items:
            self.observe(sample_id, rewards)

    # -- decisions ---------------------------------------------------------------------------------------
    def stability(self) -> tuple[float | None, int]:
        """S_k over the probe samples measured in both windows, and how many were measured."""
        measured = [x for x in self.probe if x in self.seen and x in self.snapshot]
        if not measured or len(measured) < self.config.min_measured * len(self.probe):
            return None, len(measured)
        unchanged = sum(1 for x in measured if self.latest[x] == self.snapshot[x])
        return unchanged / len(measured), len(measured)

    def zero_variance_active(self) -> list[int]:
        """Slots whose sample's latest group had no reward variance."""
        return [i for i, x in enumerate(self.slots) if self.latest.get(x) == 0]

    def recurate(self, rescore: Rescore | None = None) -> tuple[list[str], list[str]]:
        """Replace zero-variance active samples by pool samples; returns (dropped, added) ids."""
        slots = self.zero_variance_active()
        limit = int(self.config.max_replace * len(self.slots))
        n = min(len(slots), len(self.pool), limit)
        if n == 0:
            return [], []
        if rescore is not None:
            scores = rescore(list(self.pool))
            # Highest score first; ties keep pool order (sorted is stable).
            chosen = sorted(self.pool, key=lambda x: -float(scores.get(x, float("-inf"))))[:n]
        else:
            chosen = self.pool[:n]
        chosen_set = set(chosen)
        self.pool = [x for x in self.pool if x not in chosen_set]
        dropped = []
        for slot, new in zip(slots[:n], chosen):
            dropped.append(self.slots[slot])
            self.slots[slot] = new
        self.retired.extend(dropped)
        return dropped, list(chosen)

    def step(self, step: int, rescore: Rescore | None = None) -> CheckResult | None:
        """Call after every training step; at each ``interval`` it checks and, on stagnation, recurates."""
        if step <= 0 or step % self.config.interval:
            return None
        stability, measured = self.stability()
        stagnant = stability is not None and stability > self.config.lambda_s
        result = CheckResult(step, stability, measured, stagnant)
        if stagnant:
            result.dropped, result.added = self.recurate(rescore)
        for x in self.probe:
            if x in self.seen:
                self.snapshot[x] = self.latest[x]
        self.seen.clear()
        self.last_step = step
        self.history.append(asdict(result))
        return result

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": asdict(self.config),
            "slots": list(self.slots),
            "pool": list(self.pool),
            "retired": list(self.retired),
            "probe": list(self.probe),
            "latest": dict(self.latest),
            "snapshot": dict(self.snapshot),
            "seen": sorted(self.seen),
            "last_step": self.last_step,
            "history": list(self.history),
        }

    def load_state_dict(self, state: Mapping) -> None:
        if len(state["slots"]) != len(self.slots):
            raise ValueError(f"ECR state has {len(state['slots'])} slots, this dataset {len(self.slots)}: "
                             "resume with the same training files")
        self.config = ECRConfig(**state["config"])
        self.slots = list(state["slots"])
        self.pool = list(state["pool"])
        self.retired = list(state["retired"])
        self.probe = list(state["probe"])
        self.latest = {str(k): int(v) for k, v in state["latest"].items()}
        self.snapshot = {str(k): int(v) for k, v in state["snapshot"].items()}
        self.seen = set(state["seen"])
        self.last_step = int(state["last_step"])
        self.history = list(state["history"])

    @classmethod
    def from_state_dict(cls, state: Mapping) -> ECRCurriculum:
        curriculum = cls(state["slots"], (), ECRConfig(**state["config"]))
        curriculum.load_state_dict(state)
        return curriculum
