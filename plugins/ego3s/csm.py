"""Counterfactual-based Selection Mechanism (CSM): which samples need the video, and the interaction in it?

For each sample the current model answers G times (temperature 0.7) under three conditions: the question only
(``text``), the full clip (``video``) and the clip with the interaction region masked (``masked``). A
condition's reward is the mean over its G responses of format and accuracy (the official
``mean_total_reward``: (sum of format rewards + sum of accuracy rewards) / (2 G), with the plain
``<think>..</think><answer>..</answer>`` format).

* Coarse filter (language priors): gap_c(x) = R_video(x) - R_text(x); keep x when gap_c(x) deviates from its
  dataset mean by more than lambda_c. The official code keeps both sides (|deviation| > lambda_c, 0.12); the
  paper uses lambda_c = 0.1 and means "the video helps", available as ``coarse_side="positive"``.
* Fine filter (global-context shortcuts), on the coarse survivors: keep x when masking the interaction region
  costs at least lambda_f = 0.5 of its accuracy, A_video(x) - A_masked(x) >= lambda_f (mean accuracy over the G
  responses). The paper gives only the threshold; measured on accuracy it reads "the answer collapses once the
  interaction is hidden" (on the format+accuracy mean a full accuracy collapse with intact format is a gap of
  exactly 0.5, so the threshold would demand losing the format too). ``fine_rule="deviation"`` applies the coarse
  test instead (gap minus its mean over the survivors, beyond lambda_f). The official code has no fine filter
  (preset ``official``).

This module is the pure selection arithmetic; ``csm_run`` generates, caches and writes the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from egoforge.rewards.accuracy import accuracy
from egoforge.rewards.answers import R1_TAGS, extract_tag, format_matches
from egoforge.rewards.scoring import ground_truth_answer

CONDITIONS = ("text", "video", "masked")
SIDES = ("both", "positive")
FINE_RULES = ("absolute", "deviation")


@dataclass(frozen=True)
class CSMConfig:
    lambda_c: float = 0.1
    lambda_f: float = 0.5
    coarse_side: str = "both"
    fine: bool = True
    fine_rule: str = "absolute"  # "absolute": accuracy drop >= lambda_f; "deviation": the coarse test's form
    fine_side: str = "positive"  # for fine_rule="deviation"

    def __post_init__(self) -> None:
        for side in (self.coarse_side, self.fine_side):
            if side not in SIDES:
                raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        if self.fine_rule not in FINE_RULES:
            raise ValueError(f"fine_rule must be one of {FINE_RULES}, not {self.fine_rule!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> CSMConfig:
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown CSM preset {name!r}; choose one of {sorted(PRESETS)}") from None
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


PRESETS = {
    "paper": CSMConfig(),  # README: lambda_c 0.1, lambda_f 0.5, both filters
    "official": CSMConfig(lambda_c=0.12, fine=False),  # csm_selection.py: coarse filter only, threshold 0.12
}


def response_rewards(responses: Sequence[str], solution: str, problem_type: str) -> tuple[list[float], list[float]]:
    """(format rewards, accuracy rewards) of G responses, as the official selection scores them."""
    truth = ground_truth_answer(solution)
    formats = [1.0 if format_matches(r, R1_TAGS) else 0.0 for r in responses]
    accuracies = [accuracy(extract_tag(r, "answer"), truth, problem_type) for r in responses]
    return formats, accuracies


def mean_total_reward(formats: Sequence[float], accuracies: Sequence[float]) -> float:
    count = len(formats) + len(accuracies)
    return (sum(formats) + sum(accuracies)) / count if count else 0.0


def rank_score(deviation: float, side: str) -> float:
    """How strongly CSM's coarse test wants a sample: |deviation| (``both``) or the signed deviation (``positive``).

    The one ranking rule for a stored report and for live re-scoring, matching the rule that keeps a sample.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, not {side!r}")
    return abs(deviation) if side == "both" else deviation


def deviation_filter(gaps: Mapping[str, float], threshold: float, side: str) -> tuple[float, dict[str, float], set]:
    """(mean gap, deviation per id, ids kept): keep |dev| > threshold (``both``) or dev > threshold."""
    if not gaps:
        return 0.0, {}, set()
    mean = sum(gaps.values()) / len(gaps)
    deviations = {k: g - mean for k, g in gaps.items()}
    if side == "both":
        kept = {k for k, d in deviations.items() if abs(d) > threshold}
    else:
        kept = {k for k, d in deviations.items() if d > threshold}
    return mean, deviations, kept


@dataclass
class Selection:
    coarse_mean: float
    coarse_deviation: dict[str, float]
    coarse_kept: set
    fine_mean: float | None
    fine_gap: dict[str, float]
    kept: set

    def summary(self, total: int) -> dict:
        return {
            "samples": total,
            "coarse_kept": len(self.coarse_kept),
            "kept": len(self.kept),
            "kept_fraction": len(self.kept) / total if total else 0.0,
            "coarse_mean_gap": self.coarse_mean,
            "fine_mean_gap": self.fine_mean,
        }


def coarse_select(text: Mapping[str, float], video: Mapping[str, float], cfg: CSMConfig):
    """Coarse filter over the ids scored under both conditions."""
    gaps = {k: video[k] - text[k] for k in video if k in text}
    return deviation_filter(gaps, cfg.lambda_c, cfg.coarse_side)


def select(text: Mapping[str, float], video: Mapping[str, float], masked: Mapping[str, float] | None,
           cfg: CSMConfig, untestable: set | frozenset = frozenset(),
           video_accuracy: Mapping[str, float] | None = None,
           masked_accuracy: Mapping[str, float] | None = None) -> Selection:
    """Both filters. ``text``/``video``/``masked`` are mean rewards per sample id; the fine filter reads mean
    accuracies (``video_accuracy``/``masked_accuracy``) under ``fine_rule="absolute"`` and the mean rewards under
    ``"deviation"``. Masked scores are needed for the coarse survivors only; survivors in ``untestable`` (no
    interaction region to mask) skip the fine filter and are kept.
    """
    coarse_mean, coarse_dev, coarse_kept = coarse_select(text, video, cfg)
    if not cfg.fine:
        return Selection(coarse_mean, coarse_dev, coarse_kept, None, {}, set(coarse_kept))
    absolute = cfg.fine_rule == "absolute"
    full = video_accuracy if absolute else video
    hidden = (masked_accuracy if absolute else masked) or {}
    if full is None:
        raise ValueError("the absolute fine rule needs the video condition's accuracies")
    tested = [k for k in coarse_kept if k not in untestable]
    missing = [k for k in tested if k not in hidden]
    if missing:
        raise ValueError(f"fine filter needs masked-condition rewards for {len(missing)} samples, e.g. {missing[:3]}")
    gaps = {k: full[k] - hidden[k] for k in tested}
    if absolute:
        fine_mean = sum(gaps.values()) / len(gaps) if gaps else None
        fine_dev, kept = gaps, {k for k, g in gaps.items() if g >= cfg.lambda_f}
    else:
        fine_mean, fine_dev, kept = deviation_filter(gaps, cfg.lambda_f, cfg.fine_side)
    kept |= coarse_kept & set(untestable)
    return Selection(coarse_mean, coarse_dev, coarse_kept, fine_mean if tested else None, fine_dev, kept)
