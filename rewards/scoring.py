"""Ego3S reward core, framework-free: score one response, then add the group terms once a group is complete.

``score_response`` gives everything computable from one response (format, accuracy, object count, CLIP
similarity, the over-listing penalty); ``finish_group`` adds what needs all G rollouts of a prompt (the grounded
rarity bonus and, optionally, Video-R1's length bonus). The verl and TRL adapters are thin wrappers around these.

Total reward of rollout i:  accuracy_i + format_i + int_weight * r_int_i + penalty_weight * r_p_i  (+ extras).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from egoforge.rewards.accuracy import OFFICIAL_RULES, AnswerRules
from egoforge.rewards.accuracy import accuracy as accuracy_score
from egoforge.rewards.answers import IRL_TAGS, R1_TAGS, count_objects, extract_tag, format_matches, parse_objects
from egoforge.rewards.clip import SimilarityBackend
from egoforge.rewards.extras import LengthBonus, TemporalBonus
from egoforge.rewards.grounding import IRLConfig, grounded_flag, group_rate, interaction_reward, object_penalty


@dataclass(frozen=True)
class RewardSettings:
    """What the reward includes. ``irl`` switches between the IRL (think/answer/object) and plain R1 forms."""

    irl: bool = True
    irl_config: IRLConfig = field(default_factory=IRLConfig)
    format_weight: float = 1.0
    accuracy_weight: float = 1.0
    length_bonus: LengthBonus | None = None  # Video-R1 length control (on in preset official)
    temporal_bonus: TemporalBonus | None = None  # Video-R1 T-GRPO (on in preset official; TRL path only)
    answer_rules: AnswerRules = OFFICIAL_RULES  # lenient parsing options, off by default
    # CLIP embeds at most this many listed objects per response (None: all of them, as the official code does);
    # the over-listing penalty always counts all of them.
    max_clip_objects: int | None = None

    @property
    def tags(self) -> tuple[str, ...]:
        return IRL_TAGS if self.irl else R1_TAGS


def ground_truth_answer(solution: str) -> str:
    """The answer inside ``<answer>..</answer>`` of a Video-R1 solution, or the solution itself when untagged.

    >>> ground_truth_answer("<answer> B </answer>"), ground_truth_answer(" 42 ")
    ('B', '42')
    >>> ground_truth_answer("<answer></answer>")  # tagged but empty: the empty answer, not the tags
    ''
    """
    inner = extract_tag(solution, "answer")
    return inner if inner or "<answer>" in solution else solution.strip()


def score_response(response: str, solution: str, problem_type: str, settings: RewardSettings = RewardSettings(),
                   clip: SimilarityBackend | None = None, roi_path: str | None = None) -> dict[str, float]:
    """Per-response terms. ``score`` is the total without the group terms (``finish_group`` adds them).

    Without a CLIP backend or interaction image the similarity is 0 (the rollout is never "grounded").

    >>> score_response("<think>look</think><answer>B</answer><object>cup</object>", "<answer>B</answer>",
    ...                "multiple choice")
    {'accuracy': 1.0, 'format': 1.0, 'n_objects': 1.0, 'clip_sim': 0.0, 'penalty': 0.0, 'score': 2.0}
    >>> score_response("<answer>B</answer>", "<answer>B</answer>", "multiple choice", RewardSettings(irl=False))
    {'accuracy': 1.0, 'format': 0.0, 'score': 1.0}
    """
    fmt = 1.0 if format_matches(response, settings.tags) else 0.0
    acc = accuracy_score(extract_tag(response, "answer"), ground_truth_answer(solution), problem_type,
                         settings.answer_rules)
    out = {"accuracy": acc, "format": fmt}
    score = settings.accuracy_weight * acc + settings.format_weight * fmt
    if settings.irl:
        n_objects = count_objects(response)
        similarity = 0.0
        if clip is not None and roi_path and n_objects:
            similarity = clip.max_similarity(parse_objects(response, limit=settings.max_clip_objects), roi_path)
        penalty = object_penalty(n_objects, settings.irl_config.N)
        out.update({"n_objects": float(n_objects), "clip_sim": similarity, "penalty": penalty})
        score += settings.irl_config.penalty_weight * penalty
    out["score"] = score
    return out


def finish_member(result: dict[str, float], group_similarities: Sequence[float],
                  group_accuracy: Sequence[float], settings: RewardSettings = RewardSettings(),
                  length: int | None = None) -> dict[str, float]:
    """Add the group terms to one rollout's result, given every rollout of its group (itself included).

    Only group aggregates are used (the grounded share, the number of accurate rollouts), so the order of the
    group does not matter; a reward manager that sees rollouts one at a time calls this per rollout.
    """
    row = dict(result)
    if settings.irl:
        cfg = settings.irl_config
        flag = grounded_flag(row["clip_sim"], cfg.lambda_o)
        rate = group_rate([grounded_flag(s, cfg.lambda_o) for s in group_similarities])
        r_int = interaction_reward(flag, rate, cfg.H)
        row.update(grounded_flag=float(flag), group_rate=rate, r_int=r_int,
                   grounded=cfg.int_weight * r_int + cfg.penalty_weight * row["penalty"])
        row["score"] += cfg.int_weight * r_int
    if settings.length_bonus is not None:
        if length is None:
            raise ValueError("the length bonus needs the response length in tokens")
        bonus = settings.length_bonus.for_member(row["accuracy"], length, group_accuracy)
        row["length_bonus"] = bonus
        row["score"] += bonus
    return row


def finish_group(results: Sequence[dict[str, float]], settings: RewardSettings = RewardSettings(),
                 lengths: Sequence[int] | None = None) -> list[dict[str, float]]:
    """Add the group terms to the per-response results of all rollouts of one prompt (new dicts)."""
    similarities = [r.get("clip_sim", 0.0) for r in results]
    accuracy = [r["accuracy"] for r in results]
    lengths = list(lengths) if lengths is not None else [None] * len(results)
    return [finish_member(r, similarities, accuracy, settings, n) for r, n in zip(results, lengths)]


def score_group(responses: Sequence[str], solution: str, problem_type: str,
                settings: RewardSettings = RewardSettings(), clip: SimilarityBackend | None = None,
                roi_path: str | None = None, lengths: Sequence[int] | None = None) -> list[dict[str, float]]:
    """All terms for the G rollouts of one prompt (the reference for both adapters).

    With a CLIP backend that finds every listed object in the interaction image, both rollouts are grounded (rate
    1, so r_int = 1.1 - 1); the second lists 7 objects, 2 over the paper's N = 5:

    >>> class SeesEverything:
    ...     def max_similarity(self, objects, image_path):
    ...         return 0.3
    >>> rows = score_group(["<think>a</think><answer>B</answer><object>cup</object>",
    ...                     "<think>a</think><answer>B</answer><object>a, b, c, d, e, f, g</object>"],
    ...                    "<answer>B</answer>", "multiple choice", clip=SeesEverything(), roi_path="roi.jpg")
    >>> [(row["penalty"], round(row["r_int"], 6), round(row["score"], 6)) for row in rows]
    [(0.0, 0.1, 2.1), (-2.0, 0.1, 1.1)]
    """
    singles = [score_response(r, solution, problem_type, settings, clip, roi_path) for r in responses]
    return finish_group(singles, settings, lengths)
