"""Ego3S interaction-centric (IRL) reward terms: pure functions of CLIP similarities and object counts.

For the G rollouts of one prompt, with B_i the objects rollout i lists in ``<object>`` and v_int the interaction
image (``roi_path``):

    S_i   = max_b cos(CLIP_text(b), CLIP_image(v_int))     (0 when B_i is empty)
    GR_i  = 1[S_i > lambda_o]
    rate  = mean_i GR_i                                      (needs the whole group)
    r_int = max(H - rate, 0) * GR_i                          (a rarity bonus: grounding pays more when rare)
    r_p   = min(0, N - |B_i|)                                (penalty for listing more than N objects)
    grounded_i = int_weight * r_int + penalty_weight * r_p

The paper and the official code disagree on the constants; both are presets (``IRLConfig.preset``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class IRLConfig:
    """Constants of the grounded reward. Defaults are the paper's (README: alpha=0.5 on the penalty, N=5)."""

    lambda_o: float = 0.21  # CLIP similarity above which a rollout counts as grounded
    H: float = 1.1  # rarity ceiling of the group rate
    N: int = 5  # objects a rollout may list before the penalty starts
    int_weight: float = 1.0  # weight on r_int
    penalty_weight: float = 0.5  # weight on r_p (alpha in the paper)

    @classmethod
    def preset(cls, name: str, **overrides) -> IRLConfig:
        """``paper`` (README/paper values) or ``official`` (grpo_roi.py: 0.8 on r_int, 0.025 on r_p, N=8).

        >>> IRLConfig.preset("official", lambda_o=0.3)
        IRLConfig(lambda_o=0.3, H=1.1, N=8, int_weight=0.8, penalty_weight=0.025)
        >>> IRLConfig.preset("paper", n=4)
        Traceback (most recent call last):
        ValueError: unknown IRL settings ['n']; known: ['H', 'N', 'int_weight', 'lambda_o', 'penalty_weight']
        """
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown IRL preset {name!r}; choose one of {sorted(PRESETS)}") from None
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown IRL settings {sorted(unknown)}; known: {sorted(known)}")
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


PRESETS = {
    "paper": IRLConfig(),
    "official": IRLConfig(N=8, int_weight=0.8, penalty_weight=0.025),
}


def grounded_flag(similarity: float, lambda_o: float) -> int:
    """GR_i = 1[S_i > lambda_o].

    >>> grounded_flag(0.3, 0.21), grounded_flag(0.21, 0.21)
    (1, 0)
    """
    return 1 if similarity > lambda_o else 0


def group_rate(flags: Sequence[int]) -> float:
    """Share of grounded rollouts in the group (0 for an empty group).

    >>> group_rate([1, 0, 0, 1]), group_rate([])
    (0.5, 0.0)
    """
    return sum(flags) / len(flags) if flags else 0.0


def interaction_reward(flag: int, rate: float, H: float) -> float:
    """r_int = max(H - rate, 0) * GR_i.

    >>> round(interaction_reward(1, 0.25, 1.1), 6), round(interaction_reward(1, 1.0, 1.1), 6)  # rare pays more
    (0.85, 0.1)
    >>> interaction_reward(0, 0.25, 1.1)
    0.0
    """
    return max(H - rate, 0.0) * flag


def object_penalty(n_objects: int, N: int) -> float:
    """r_p = min(0, N - |B_i|).

    >>> object_penalty(7, 5), object_penalty(3, 5)
    (-2.0, 0.0)
    """
    return float(min(0, N - n_objects))


def group_terms(similarities: Sequence[float], n_objects: Sequence[int], cfg: IRLConfig) -> list[dict[str, float]]:
    """Every IRL term for each rollout of one group, including the weighted total ``grounded``.

    >>> terms = group_terms([0.3, 0.1], [2, 7], IRLConfig())  # one of two grounded; the other lists 7 objects
    >>> [(t["grounded_flag"], t["group_rate"], round(t["r_int"], 6), t["penalty"]) for t in terms]
    [(1.0, 0.5, 0.6, 0.0), (0.0, 0.5, 0.0, -2.0)]
    >>> [round(t["grounded"], 6) for t in terms]  # r_int + 0.5 * r_p
    [0.6, -1.0]
    """
    flags = [grounded_flag(s, cfg.lambda_o) for s in similarities]
    rate = group_rate(flags)
    out = []
    for similarity, flag, count in zip(similarities, flags, n_objects):
        r_int = interaction_reward(flag, rate, cfg.H)
        r_p = object_penalty(count, cfg.N)
        out.append({
            "clip_sim": float(similarity),
            "grounded_flag": float(flag),
            "group_rate": rate,
            "r_int": r_int,
            "penalty": r_p,
            "grounded": cfg.int_weight * r_int + cfg.penalty_weight * r_p,
        })
    return out
