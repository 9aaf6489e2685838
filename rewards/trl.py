"""TRL adapter of the Ego3S rewards: reward functions with GRPOTrainer's signature ``(completions, **kwargs)``.

``Ego3STRLRewards(settings, clip).functions()`` returns ``[ego3s_accuracy, ego3s_format, ego3s_grounded]`` (plus
``ego3s_length`` with length control) for ``GRPOTrainer(reward_funcs=...)``; TRL logs each by name and sums them,
which gives the same total as the verl adapter. TRL calls every function with the whole generation batch, the G
completions of a prompt being contiguous; groups are formed by the ``problem_id`` column (or by contiguous
blocks of ``num_generations`` without it), so the grounded rarity term sees the whole group.

The batch is scored once and shared by the functions. The CLIP term of the whole batch is computed in one batched
call (``max_similarities``): a first pass records which completions need CLIP, the second scores them.
``on_scored(problem_ids, totals)`` is called once per batch with every completion's total reward (the ECR callback
records reward variance from it).

Video-R1's temporal bonus (``settings.temporal_bonus``) needs G/2 extra completions per prompt with the frames
shuffled: pass ``shuffled_sampler(prompt, images, n) -> texts`` (``egoforge.trl_grpo.temporal`` generates them
with the live policy); prompts with a single frame get no bonus.

With several processes each one only scores its local slice, so keep the per-device generation batch a multiple
of ``num_generations`` (TRL's own advantages are computed after a gather and are unaffected).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from egoforge.rewards.clip import SimilarityBackend, max_similarities
from egoforge.rewards.scoring import RewardSettings, finish_group, score_response


def completion_text(completion) -> str:
    """Text of a TRL completion: a string, or a conversational ``[{"role": "assistant", "content": ...}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return str(completion)


def group_slices(ids: Sequence | None, n: int, group_size: int) -> list[list[int]]:
    """Row indices of each group: equal ids (first-seen order), or contiguous blocks of ``group_size``."""
    if ids is None:
        return [list(range(i, min(i + group_size, n))) for i in range(0, n, group_size)]
    groups: dict = {}
    for i, key in enumerate(ids):
        groups.setdefault(str(key), []).append(i)
    return list(groups.values())


class _RecordingClip:
    """Stands in for CLIP in a first scoring pass: records each (object names, image) request, answers 0."""

    def __init__(self) -> None:
        self.requests: list[tuple[tuple[str, ...], str]] = []

    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        self.requests.append((tuple(texts), image_path))
        return 0.0


class _PrecomputedClip:
    """Answers the requests a batched CLIP call has already scored."""

    def __init__(self, scores: dict[tuple[tuple[str, ...], str], float]) -> None:
        self.scores = scores

    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        return self.scores[(tuple(texts), image_path)]


class Ego3STRLRewards:
    def __init__(self, settings: RewardSettings = RewardSettings(), clip: SimilarityBackend | None = None,
                 num_generations: int = 5, on_scored: Callable[[list[str], list[float]], None] | None = None,
                 shuffled_sampler: Callable[[list, list, int], list[str]] | None = None, seed: int = 0):
        if settings.temporal_bonus is not None and shuffled_sampler is None:
            raise ValueError("the temporal bonus needs a shuffled_sampler to roll out shuffled-frame completions")
        self.settings = settings
        self.clip = clip
        self.num_generations = num_generations
        self.on_scored = on_scored
        self.shuffled_sampler = shuffled_sampler
        self._rng = random.Random(seed)
        self._batch = None  # the completions list last scored (kept referenced so its identity stays unique)
        self._rows: list[dict[str, float]] = []

    def _temporal(self, rows: list[dict], group: list[int], solution: str, problem_type: str, prompt, images):
        """Add T-GRPO's bonus to one group's rows (in place) from shuffled-frame completions."""
        n = self.num_generations // 2  # the official trainer rolls out G // 2 shuffled completions
        if not images or len(images) < 2 or n == 0:
            bonuses = [0.0] * len(group)
        else:
            order = list(range(len(images)))
            while order == sorted(order):  # never the identity (torch.randperm in the official code can draw it)
                self._rng.shuffle(order)
            texts = self.shuffled_sampler(prompt, [images[i] for i in order], n)
            plain = RewardSettings(irl=False, answer_rules=self.settings.answer_rules)
            shuffled = [score_response(t, solution, problem_type, plain)["accuracy"] for t in texts]
            bonuses = self.settings.temporal_bonus([rows[i]["accuracy"] for i in group], shuffled)
        for i, bonus in zip(group, bonuses):
            rows[i]["temporal_bonus"] = bonus
            rows[i]["score"] += bonus

    def score_batch(self, completions, solution, problem_type, roi_path=None, problem_id=None,
                    completion_ids=None, prompts=None, images=None, **_) -> list[dict[str, float]]:
        """Every Ego3S term of every completion of the batch (computed once per batch, then cached)."""
        if completions is self._batch:
            return self._rows
        texts = [completion_text(c) for c in completions]
        n = len(texts)
        rois = roi_path if roi_path is not None else [None] * n
        rows: list[dict[str, float] | None] = [None] * n
        clip = self._batched_clip(texts, solution, problem_type, rois)
        for group in group_slices(problem_id, n, self.num_generations):
            singles = [score_response(texts[i], solution[i], problem_type[i], self.settings, clip,
                                      rois[i] or None) for i in group]
            lengths = [len(completion_ids[i]) for i in group] if completion_ids is not None else None
            if self.settings.length_bonus is not None and lengths is None:
                raise ValueError("the length bonus counts completion tokens, but the trainer passed no "
                                 "completion_ids to the reward functions (TRL >= 0.17 does)")
            for i, row in zip(group, finish_group(singles, self.settings, lengths)):
                rows[i] = row
            if self.settings.temporal_bonus is not None:
                first = group[0]
                self._temporal(rows, group, solution[first], problem_type[first],
                               prompts[first] if prompts is not None else None,
                               images[first] if images is not None else None)
        self._batch, self._rows = completions, rows
        if self.on_scored is not None:
            ids = [str(x) for x in problem_id] if problem_id is not None else [str(i // self.num_generations)
                                                                              for i in range(n)]
            self.on_scored(ids, [r["score"] for r in rows])
        return rows

    def _batched_clip(self, texts, solution, problem_type, rois) -> SimilarityBackend | None:
        """The CLIP backend for this batch with every needed similarity computed in one batched call."""
        if self.clip is None:
            return None
        recorder = _RecordingClip()
        for i, text in enumerate(texts):
            score_response(text, solution[i], problem_type[i], self.settings, recorder, rois[i] or None)
        unique = list(dict.fromkeys(recorder.requests))
        return _PrecomputedClip(dict(zip(unique, max_similarities(self.clip, unique))))

    def functions(self) -> list[Callable[..., list[float]]]:
        """The reward functions for ``GRPOTrainer(reward_funcs=...)``; their sum is the Ego3S total."""
        s = self.settings

        def ego3s_accuracy(completions, **kwargs):
            return [s.accuracy_weight * r["accuracy"] for r in self.score_batch(completions, **kwargs)]

        def ego3s_format(completions, **kwargs):
            return [s.format_weight * r["format"] for r in self.score_batch(completions, **kwargs)]

        def ego3s_grounded(completions, **kwargs):
            return [r.get("grounded", 0.0) for r in self.score_batch(completions, **kwargs)]

        def ego3s_length(completions, **kwargs):
            return [r.get("length_bonus", 0.0) for r in self.score_batch(completions, **kwargs)]

        def ego3s_temporal(completions, **kwargs):
            return [r.get("temporal_bonus", 0.0) for r in self.score_batch(completions, **kwargs)]

        funcs = [ego3s_accuracy, ego3s_format]
        if s.irl:
            funcs.append(ego3s_grounded)
        if s.length_bonus is not None:
            funcs.append(ego3s_length)
        if s.temporal_bonus is not None:
            funcs.append(ego3s_temporal)
        return funcs
