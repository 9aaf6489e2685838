"""Evolving Curriculum Recuration (ECR): the framework-free core.

The training set is a fixed number of *slots* (trainers cache the dataset length, so it never changes); each slot
points at one sample. Every rollout group of a sample updates that sample's reward-variance state v(x) (does the
group still carry a GRPO signal?). Every ``interval`` steps the share of a fixed probe set whose state did not
change since the previous check is measured:

    S_k = |{x in probe measured in both windows : v_k(x) = v_{k-n}(x)}| / |measured|

If S_k > lambda_s the curriculum has stagnated and is recurated: active samples whose rewards no longer vary
(all rollouts right, or all wrong) are retired and their slots point at fresh samples from the pool (in pool
order, or ranked by a caller-supplied re-scoring, e.g. CSM with the current policy; samples a re-scoring marks
ineligible, such as those CSM rejected, never come in).

v_k(x) is read from the training rollouts themselves (each probe sample's most recent group), not from extra
probe rollouts. A probe sample is *measured* at a check when it was rolled out since the previous check and has a
reference state: its state at the previous check (states carry forward across windows, so a sample rolled out
once per epoch is compared with its previous epoch), or, when it had none yet, its first group in this window if
it was rolled out at least twice. So the first check can already decide when rollouts are dense (the 512-prompt
batch) and sparse schedules (the official 8-prompt step, each sample seen once per epoch) decide once samples are
revisited. ``egoforge ego3s plan`` prints the expected share of the probe measured at each check.

The probe keeps its size: when recuration retires a probe sample, the newcomer that takes its slot joins the
probe in its place (it is measured from its own rollouts on).

Everything here is deterministic and its state round-trips through ``state_dict`` (plain JSON types), so a
resumed run makes exactly the same selections.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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

    def __init__(self, active: Sequence[str], pool: Sequence[str] = (), config: ECRConfig = ECRConfig(),
                 source: str | None = None) -> None:
        """``source`` names the file the active samples came from, for the error when there are none."""
        active = [str(x) for x in active]
        if not active:
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}no samples to train on: ECR needs at least one active sample (an empty CSM "
                             "selection? `egoforge ego3s csm` keeps only the samples its model answers with varied "
                             "rewards; run it on more data or a stronger model, or train on the converted set)")
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
        self.snapshot: dict[str, int] = {}  # probe id -> state at the previous check (carried forward)
        self.seen: set[str] = set()  # sample ids rolled out since the previous check
        self.first_in_window: dict[str, int] = {}  # sample id -> state of its first group since the previous check
        self.count_in_window: dict[str, int] = {}  # sample id -> groups since the previous check
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
        self.first_in_window.setdefault(sample_id, state)
        self.count_in_window[sample_id] = self.count_in_window.get(sample_id, 0) + 1
        return state

    def observe_groups(self, groups: Mapping[str, Sequence[float]] | Iterable[tuple[str, Sequence[float]]]) -> None:
        items = groups.items() if isinstance(groups, Mapping) else groups
        for sample_id, rewards in items:
            self.observe(sample_id, rewards)

    # -- decisions ---------------------------------------------------------------------------------------
    def reference_state(self, sample_id: str) -> int | None:
        """The state a probe sample is compared with at this check (None: not measurable yet)."""
        if sample_id in self.snapshot:
            return self.snapshot[sample_id]
        if self.count_in_window.get(sample_id, 0) >= 2:
            return self.first_in_window[sample_id]
        return None

    def stability(self) -> tuple[float | None, int]:
        """S_k over the probe samples measured at this check (see the module docstring), and how many."""
        measured = [x for x in self.probe if x in self.seen and self.reference_state(x) is not None]
        if not measured or len(measured) < self.config.min_measured * len(self.probe):
            return None, len(measured)
        unchanged = sum(1 for x in measured if self.latest[x] == self.reference_state(x))
        return unchanged / len(measured), len(measured)

    def zero_variance_active(self) -> list[int]:
        """Slots whose sample's latest group had no reward variance."""
        return [i for i, x in enumerate(self.slots) if self.latest.get(x) == 0]

    def recurate(self, rescore: Rescore | None = None, exclude: Collection[str] = ()) -> tuple[list[str], list[str]]:
        """Replace zero-variance active samples by pool samples; returns (dropped, added) ids.

        ``rescore`` ranks pool candidates (highest first, ties in pool order); ``exclude`` names candidates that
        must not come in (e.g. rejected by CSM). Retired probe samples are replaced in the probe by the
        newcomers that take their slots, so the probe keeps its size.
        """
        excluded = set(exclude)
        candidates = [x for x in self.pool if x not in excluded]
        slots = self.zero_variance_active()
        limit = int(self.config.max_replace * len(self.slots))
        n = min(len(slots), len(candidates), limit)
        if n == 0:
            return [], []
        if rescore is not None:
            scores = rescore(list(candidates))
            # Highest score first; ties keep pool order (sorted is stable).
            chosen = sorted(candidates, key=lambda x: -float(scores.get(x, float("-inf"))))[:n]
        else:
            chosen = candidates[:n]
        chosen_set = set(chosen)
        self.pool = [x for x in self.pool if x not in chosen_set]
        probe = set(self.probe)
        dropped = []
        for slot, new in zip(slots[:n], chosen):
            old = self.slots[slot]
            dropped.append(old)
            self.slots[slot] = new
            if old in probe:  # refill the probe with the sample that takes the retired one's place
                self.probe[self.probe.index(old)] = new
                self.snapshot.pop(old, None)
        self.retired.extend(dropped)
        return dropped, list(chosen)

    def step(self, step: int, rescore: Rescore | None = None, exclude: Collection[str] = ()) -> CheckResult | None:
        """Call after every training step; at each ``interval`` it checks and, on stagnation, recurates."""
        if step <= 0 or step % self.config.interval:
            return None
        stability, measured = self.stability()
        stagnant = stability is not None and stability > self.config.lambda_s
        result = CheckResult(step, stability, measured, stagnant)
        if stagnant:
            result.dropped, result.added = self.recurate(rescore, exclude)
        for x in self.probe:
            if x in self.latest:  # carried forward: a probe sample not rolled out keeps its last state
                self.snapshot[x] = self.latest[x]
        self.seen.clear()
        self.first_in_window.clear()
        self.count_in_window.clear()
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
            "first_in_window": dict(self.first_in_window),
            "count_in_window": dict(self.count_in_window),
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
        self.first_in_window = {str(k): int(v) for k, v in state.get("first_in_window", {}).items()}
        self.count_in_window = {str(k): int(v) for k, v in state.get("count_in_window", {}).items()}
        self.last_step = int(state["last_step"])
        self.history = list(state["history"])

    @classmethod
    def from_state_dict(cls, state: Mapping) -> ECRCurriculum:
        curriculum = cls(state["slots"], (), ECRConfig(**state["config"]))
        curriculum.load_state_dict(state)
        return curriculum


class RescoreFile:
    """A re-scoring report on disk (a CSM report of the pool) that a periodic offline pass refreshes.

    ``current()`` re-reads the file whenever its modification time changes, so a report written by CSM with a
    recent checkpoint is picked up at the next check. A refresh that changes nothing is suspicious: CSM's answer
    cache is keyed by sample and condition, not by model, so re-running it into the same output folder with a
    new checkpoint re-uses the old model's answers and rewrites the same scores. Such a refresh (identical
    scores and rejections, or a report that says it generated nothing) is warned about, naming the file.
    ``load(path)`` returns an object with ``scores`` and ``rejected``; ``generated(path)`` (optional) how many
    generations the pass that wrote the report ran (None when unknown).
    """

    def __init__(self, path: str, load: Callable, generated: Callable | None = None) -> None:
        self.path = str(path)
        self._load = load
        self._generated = generated
        self._report = None
        self._mtime: int | None = None
        self.refreshes = 0  # reports read after the first one
        self.current()  # a bad path or report fails at start-up, not at the first recuration

    def current(self):
        import os
        import warnings

        mtime = os.stat(self.path).st_mtime_ns
        if mtime == self._mtime:
            return self._report
        report = self._load(self.path)
        if self._report is not None:
            self.refreshes += 1
            same = (dict(report.scores) == dict(self._report.scores)
                    and set(report.rejected) == set(self._report.rejected))
            generated = self._generated(self.path) if self._generated is not None else None
            if same or generated == 0:
                warnings.warn(f"egoforge ECR: the refreshed re-scoring report {self.path} "
                              f"{'has the same scores as the previous one' if same else 'generated nothing'}: a "
                              "CSM pass re-run into the same output folder re-uses the earlier model's cached "
                              "answers; run each refresh into a new folder and copy its csm_report.json here",
                              stacklevel=2)
        self._report, self._mtime = report, mtime
        return report
