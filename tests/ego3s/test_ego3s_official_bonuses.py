"""Differential test: the temporal (T-GRPO) and length bonuses of ``preset=official`` on the TRL path against an
oracle of the official trainer (``src/ego3s/src/trainer/grpo_trainer.py`` run with ``--temporal true
--len_control true``).

The oracle restates the trainer's behaviour on float32 tensors, as it runs: the rewards of one prompt's G rollouts
are a float32 ``[G, funcs]`` tensor (accuracy first); with the temporal flag and a video, when the mean accuracy is
at least 0.8 times the mean accuracy of the G // 2 shuffled-frame rollouts, every rollout with accuracy > 0.1 gets
+0.3 on its accuracy; with the length flag, when more than one rollout has accuracy > 0.1, each of those whose
completion has 320..512 tokens gets +0.2 on its total.
"""

from __future__ import annotations

import random

import pytest
import torch

from egoforge.rewards.ego3s import settings_from_kwargs, verl_settings_from_kwargs
from egoforge.rewards.extras import LengthBonus, TemporalBonus
from egoforge.rewards.trl import Ego3STRLRewards

G = 5
TIES = [0.0, 0.1, 0.1 + 1e-9, 0.10000000149, 0.2, 0.25, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 0.8, 1.0]
LENGTHS = [1, 319, 320, 321, 400, 511, 512, 513, 768]


def oracle_bonuses(accuracy, shuffled_accuracy, lengths):
    """(temporal applied per rollout, length applied per rollout) of the official trainer, on float32 tensors."""
    columns = torch.tensor([[a, 1.0, 0.0] for a in accuracy], dtype=torch.float32)
    shuffled = torch.tensor([[a, 1.0, 0.0] for a in shuffled_accuracy], dtype=torch.float32)
    temporal = columns.clone()
    if columns[:, 0].mean() >= 0.8 * shuffled[:, 0].mean():
        mask = temporal[:, 0] > 0.1
        temporal[mask, 0] = temporal[mask, 0] + 0.3
    temporal_applied = [bool(x) for x in (temporal[:, 0] != columns[:, 0])]
    selected = torch.nonzero(columns[:, 0] > 0.1, as_tuple=True)[0].tolist()
    length_applied = [False] * len(accuracy)
    if len(selected) > 1:
        for idx in selected:
            if 320 <= lengths[idx] <= 512:
                length_applied[idx] = True
    return temporal_applied, length_applied


def groups(n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        pick = (lambda: rng.choice(TIES)) if rng.random() < 0.7 else rng.random
        yield ([pick() for _ in range(G)], [pick() for _ in range(G // 2)],
               [rng.choice(LENGTHS) if rng.random() < 0.8 else rng.randint(1, 768) for _ in range(G)])


def test_bonus_decisions_match_the_official_trainer():
    temporal, length = TemporalBonus(), LengthBonus()
    disagreements, applied = [], [0, 0]
    for accuracy, shuffled, lengths in groups(3000, seed=0):
        want_t, want_l = oracle_bonuses(accuracy, shuffled, lengths)
        got_t = [b == 0.3 for b in temporal(accuracy, shuffled)]
        got_l = [b == 0.2 for b in length(accuracy, lengths)]
        members = [length.for_member(a, n, accuracy) == 0.2 for a, n in zip(accuracy, lengths)]
        applied[0] += sum(want_t)
        applied[1] += sum(want_l)
        if (got_t, got_l, members) != (want_t, want_l, want_l):
            disagreements.append((accuracy, shuffled, lengths, got_t, want_t, got_l, want_l))
    assert applied[0] > 1000 and applied[1] > 500  # both bonuses fire often enough to be tested
    assert not disagreements, f"{len(disagreements)} groups disagree, e.g. {disagreements[:2]}"


def test_float32_ties_decide_like_the_official_tensors():
    """In float64, 0.6 < 0.8 * 0.75 (0.6000000000000001) and no bonus would be paid; the float32 tensors pay it."""
    assert 0.6 < 0.8 * 0.75
    assert oracle_bonuses([1, 1, 1, 0, 0], [1.0, 0.5], [1] * 5)[0] == [True, True, True, False, False]
    assert TemporalBonus()([1, 1, 1, 0, 0], [1.0, 0.5]) == [0.3, 0.3, 0.3, 0.0, 0.0]


def test_official_preset_runs_both_bonuses_through_the_trl_reward_functions():
    """Through the TRL adapter, with MC answers and a stand-in for the shuffled-frame policy."""
    rng = random.Random(1)
    requested, shuffled_answers = [], []

    def shuffled_sampler(prompt, images, n):
        requested.append(n)
        shuffled_answers[:] = [rng.choice("AB") for _ in range(n)]
        return [f"<think>t</think><answer>{a}</answer>" for a in shuffled_answers]

    settings = settings_from_kwargs(preset="official", irl=False)
    suite = Ego3STRLRewards(settings, num_generations=G, shuffled_sampler=shuffled_sampler, seed=0)
    funcs = {f.__name__: f for f in suite.functions()}
    assert list(funcs) == ["ego3s_accuracy", "ego3s_format", "ego3s_length", "ego3s_temporal"]
    frames = ["f0", "f1", "f2", "f3"]
    fired = 0
    for _ in range(300):
        answers = [rng.choice("AB") for _ in range(G)]
        lengths = [rng.choice(LENGTHS) for _ in range(G)]
        texts = [f"<think>t</think><answer>{a}</answer>" for a in answers]
        kwargs = {"solution": ["<answer>A</answer>"] * G, "problem_type": ["multiple choice"] * G,
                  "problem_id": ["p"] * G, "prompts": [[]] * G, "images": [frames] * G,
                  "completion_ids": [[0] * n for n in lengths]}
        temporal = funcs["ego3s_temporal"](texts, **kwargs)
        length = funcs["ego3s_length"](texts, **kwargs)
        accuracy = [1.0 if a == "A" else 0.0 for a in answers]
        want_t, want_l = oracle_bonuses(accuracy, [1.0 if a == "A" else 0.0 for a in shuffled_answers], lengths)
        assert [b == 0.3 for b in temporal] == want_t and set(temporal) <= {0.0, 0.3}
        assert [b == 0.2 for b in length] == want_l and set(length) <= {0.0, 0.2}
        fired += any(want_t)
    assert fired > 50 and requested == [G // 2] * 300  # the official G // 2 shuffled rollouts per prompt


def test_length_bonus_needs_token_counts():
    suite = Ego3STRLRewards(settings_from_kwargs(preset="official", irl=False, temporal=False), num_generations=2)
    length = {f.__name__: f for f in suite.functions()}["ego3s_length"]
    with pytest.raises(ValueError, match="completion_ids"):
        length(["<answer>A</answer>"] * 2, solution=["<answer>A</answer>"] * 2, problem_type=["multiple choice"] * 2)


def test_verl_reproduces_the_length_bonus_but_not_the_temporal_one():
    verl = verl_settings_from_kwargs(preset="official")
    assert verl.length_bonus is not None and verl.temporal_bonus is None
    with pytest.raises(ValueError, match="shuffled-frame rollouts"):
        verl_settings_from_kwargs(preset="official", temporal=True)
    assert settings_from_kwargs(preset="paper").temporal_bonus is None
