"""ECR core on synthetic reward streams: the stagnation test fires when (and only when) it should, recuration
swaps zero-variance samples for pool samples, and a resumed curriculum makes exactly the same decisions."""

from __future__ import annotations

import json
import random

import pytest

from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum, reward_variance, variance_state

ACTIVE = [f"a{i}" for i in range(20)]
POOL = [f"p{i}" for i in range(30)]


def test_variance_states():
    assert reward_variance([1, 1, 1, 1, 1]) == 0.0
    assert variance_state([0, 0, 0, 0, 0]) == 0 and variance_state([1, 0, 1, 1, 0]) == 1
    assert variance_state([0.5, 0.52, 0.5], "buckets", high=0.05) == 1
    assert variance_state([0, 2, 0, 2], "buckets", high=0.05) == 2
    with pytest.raises(ValueError, match="state mode"):
        variance_state([0, 1], "nope")


def _stream(curriculum: ECRCurriculum, zero: set[str]) -> None:
    """Every active sample is rolled out once; those in ``zero`` get identical rewards (no GRPO signal)."""
    for sample in curriculum.slots:
        curriculum.observe(sample, [1.0] * 5 if sample in zero else [1.0, 0.0, 1.0, 0.0, 1.0])


def test_stagnation_fires_when_and_only_when_states_stop_changing():
    cfg = ECRConfig(probe_size=10, interval=5, lambda_s=0.6, seed=1)
    curriculum = ECRCurriculum(ACTIVE, POOL, cfg)
    p = list(curriculum.probe)  # a copy: recuration refills the live probe
    assert len(p) == 10 and set(p) <= set(ACTIVE)
    # zero-variance probe samples per 5-step window; S_k = share of probe samples whose state did not change
    windows = [set(), set(p[:5]), set(), set(p[:4]), set(p[:1]), set()]
    results = []
    for w, zero in enumerate(windows):
        for step in range(5 * w + 1, 5 * w + 6):
            _stream(curriculum, zero | (set(curriculum.slots) - set(ACTIVE)))  # pool newcomers: no signal
            result = curriculum.step(step)
            assert (result is None) == (step % 5 != 0)
        results.append(result)
    # The first check already decides: each probe sample was rolled out 5 times in the first window, and its
    # first group there is its reference (no wait for a second window). Nothing had zero variance: no swap.
    assert [r.stability for r in results] == [1.0, 0.5, 0.5, 0.6, 0.7, 1.0]
    assert [r.stagnant for r in results] == [True, False, False, False, True, True]  # 0.6 is not > 0.6
    assert results[0].dropped == [] and results[0].measured == 10
    assert results[4].dropped == [p[0]] and results[4].added == [curriculum.history[4]["added"][0]]
    assert results[5].measured == 10  # the newcomer is measured in the retired sample's place (probe refill)
    assert results[5].dropped == results[4].added  # the newcomer had no variance either
    assert p[0] not in curriculum.probe and results[5].added[0] in curriculum.probe and len(curriculum.probe) == 10


def test_recuration_replaces_zero_variance_samples_from_the_pool():
    cfg = ECRConfig(probe_size=20, interval=1, lambda_s=0.6, seed=0)
    curriculum = ECRCurriculum(ACTIVE, POOL, cfg)
    pool_order = list(curriculum.pool)
    zero = set(ACTIVE[12:])  # 8 samples are solved (or hopeless): zero variance
    for step in (1, 2):
        _stream(curriculum, zero)
        result = curriculum.step(step)
    assert result.stagnant and sorted(result.dropped) == sorted(ACTIVE[12:])
    assert result.added == pool_order[:8]
    assert len(curriculum.slots) == len(ACTIVE) and set(result.added) <= set(curriculum.slots)
    assert set(curriculum.retired) == set(ACTIVE[12:]) and not set(result.added) & set(curriculum.pool)
    # a re-scorer (e.g. CSM with the current policy) decides which pool samples come in
    curriculum2 = ECRCurriculum(ACTIVE, POOL, cfg)
    for step in (1, 2):
        _stream(curriculum2, zero)
        result2 = curriculum2.step(step, rescore=lambda ids: {x: int(x[1:]) for x in ids})
    assert result2.added == [f"p{i}" for i in range(29, 21, -1)]
    # max_replace caps the swap; an empty pool leaves the zero-variance samples in place
    capped = ECRCurriculum(ACTIVE, POOL, ECRConfig(probe_size=20, interval=1, max_replace=0.1))
    for step in (1, 2):
        _stream(capped, zero)
        assert len(capped.step(step).dropped) <= 2
    dry = ECRCurriculum(ACTIVE, [], ECRConfig(probe_size=20, interval=1))
    for step in (1, 2):
        _stream(dry, zero)
        assert dry.step(step).dropped == [] and dry.slots == ACTIVE


def test_sparse_schedule_decides_once_samples_are_revisited():
    """The official step (8 prompts) rolls each sample out about once per epoch: states carry forward across
    windows, so the second epoch's checks compare each probe sample with its first-epoch state."""
    cfg = ECRConfig(probe_size=20, interval=5, lambda_s=0.6, min_measured=0.2)
    curriculum = ECRCurriculum(ACTIVE, POOL, cfg)
    solved = set(ACTIVE[:15])  # by epoch 2 most samples are solved every time (no variance)
    results = []
    for epoch in (0, 1):
        for step in range(10 * epoch + 1, 10 * epoch + 11):
            for sample in ACTIVE[2 * (step - 1) % 20: 2 * (step - 1) % 20 + 2]:  # 2 prompts per step
                rewards = [1.0] * 5 if epoch == 1 and sample in solved else [1.0, 0.0, 1.0, 0.0, 0.0]
                curriculum.observe(sample, rewards)
            result = curriculum.step(step)
            if result is not None:
                results.append(result)
    assert [r.stability for r in results[:2]] == [None, None]  # epoch 1: every sample seen once, no reference
    assert [r.measured for r in results[2:]] == [10, 10] and results[2].stability == 0.0  # all 10 changed 1 -> 0
    assert results[3].stability == 0.5 and not results[3].stagnant


def test_excluded_candidates_never_come_in():
    cfg = ECRConfig(probe_size=20, interval=1)
    curriculum = ECRCurriculum(ACTIVE, POOL, cfg)
    rejected = set(curriculum.pool[:25])
    for step in (1, 2):
        _stream(curriculum, set(ACTIVE[10:]))
        curriculum.step(step, rescore=lambda ids: {x: 1.0 for x in ids}, exclude=rejected)
    added = [x for r in curriculum.history for x in r["added"]]
    assert len(added) == 5 and not set(added) & rejected


def test_no_decision_without_enough_measured_probe_samples():
    curriculum = ECRCurriculum(ACTIVE, POOL, ECRConfig(probe_size=10, interval=2, min_measured=0.5))
    for step in range(1, 9):
        for sample in curriculum.probe[:3]:  # only 3 of 10 probe samples are ever rolled out
            curriculum.observe(sample, [1, 1, 1])
        result = curriculum.step(step)
        if result is not None:
            assert result.stability is None and not result.stagnant and result.measured <= 3


def _random_run(curriculum: ECRCurriculum, steps: range, seed: int) -> list:
    rng = random.Random(seed)
    log = []
    for step in steps:
        batch = rng.sample(curriculum.slots, 8)
        for sample in batch:
            p = rng.choice([0.0, 0.0, 0.5, 1.0, 1.0])
            curriculum.observe(sample, [1.0 if rng.random() < p else 0.0 for _ in range(5)])
        result = curriculum.step(step)
        log.append(None if result is None else (result.stability, result.dropped, result.added))
    return log


def test_resume_from_state_dict_gives_the_identical_selection():
    cfg = ECRConfig(probe_size=12, interval=3, lambda_s=0.3, seed=7)
    straight = ECRCurriculum(ACTIVE, POOL, cfg)
    head = _random_run(straight, range(1, 21), seed=3)
    tail = _random_run(straight, range(21, 41), seed=11)
    assert any(entry and entry[1] for entry in head + tail), "the synthetic run should recurate at least once"

    interrupted = ECRCurriculum(ACTIVE, POOL, cfg)
    assert _random_run(interrupted, range(1, 21), seed=3) == head
    saved = json.loads(json.dumps(interrupted.state_dict()))  # plain JSON: survives torch.save into data.pt
    resumed = ECRCurriculum(ACTIVE, POOL, cfg)  # a fresh process builds the curriculum from the same files...
    resumed.load_state_dict(saved)  # ...and restores the checkpoint's state
    assert _random_run(resumed, range(21, 41), seed=11) == tail
    assert resumed.state_dict() == straight.state_dict()
    assert ECRCurriculum.from_state_dict(saved).state_dict() == saved
    with pytest.raises(ValueError, match="slots"):
        ECRCurriculum(ACTIVE[:5], POOL, cfg).load_state_dict(saved)


def test_config_validation():
    with pytest.raises(ValueError):
        ECRConfig(state_mode="other")
    with pytest.raises(ValueError):
        ECRConfig(lambda_s=1.5)
    with pytest.raises(ValueError, match="unique"):
        ECRCurriculum(["a", "a"], [])


def test_an_empty_selection_is_an_error_naming_the_file():
    from egoforge.ego3s.ecr import ECRCurriculum

    with pytest.raises(ValueError, match=r"^runs/csm/selected.parquet: no samples to train on: .*egoforge ego3s csm"):
        ECRCurriculum([], ["a"], source="runs/csm/selected.parquet")
