"""Dirichlet masking budgets and masks keep their invariants for any seed, size and availability (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egoforge.egom2p.masking import MaskingConfig, dirichlet_budget, mask_sample, random_masks, sample_budgets

PAPER_TOKENS = [5120, 5120, 30, 30]
tokens_st = st.lists(st.integers(0, 200), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), total=st.integers(0, 600), alpha=st.sampled_from([0.01, 0.1, 1.0, 10.0]),
       caps=tokens_st, data=st.data())
def test_dirichlet_budget_invariants(seed, total, alpha, caps, data):
    eligible = np.array(data.draw(st.lists(st.booleans(), min_size=len(caps), max_size=len(caps))))
    budget = dirichlet_budget(np.random.default_rng(seed), total, alpha, np.array(caps), eligible)
    assert budget.dtype.kind == "i" and (budget >= 0).all()
    assert (budget <= np.array(caps)).all()  # capped per modality
    assert budget.sum() <= total
    assert (budget[~eligible] == 0).all()  # unavailable modalities get nothing
    # without caps binding, the whole budget is handed out
    capacity = np.array(caps)[eligible & (np.array(caps) > 0)]
    if capacity.size and capacity.min() >= total:
        assert budget.sum() == total


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 300), n_tgt=st.integers(1, 300), tokens=tokens_st,
       data=st.data())
def test_sample_budgets_invariants(seed, n_in, n_tgt, tokens, data):
    k = len(tokens)
    inputs_ok = np.array(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    targets_ok = np.array(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    cfg = MaskingConfig(n_in, n_tgt)
    inp, tgt = sample_budgets(np.random.default_rng(seed), cfg, np.array(tokens), inputs_ok, targets_ok)
    assert (inp >= 0).all() and (tgt >= 0).all()
    assert inp.sum() <= n_in and tgt.sum() <= n_tgt
    assert (inp + tgt <= np.array(tokens)).all()  # inputs and targets never share a token
    assert (inp[~inputs_ok] == 0).all() and (tgt[~targets_ok] == 0).all()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), data=st.data())
def test_random_masks_are_disjoint_and_exact(seed, n, data):
    n_in = data.draw(st.integers(0, n))
    n_tgt = data.draw(st.integers(0, n - n_in))
    input_mask, target_mask = random_masks(np.random.default_rng(seed), n, n_in, n_tgt)
    assert (~input_mask).sum() == n_in and (~target_mask).sum() == n_tgt
    assert not ((~input_mask) & (~target_mask)).any()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), available=st.lists(st.booleans(), min_size=4, max_size=4))
def test_paper_budgets_per_sample(seed, available):
    """The paper's 2048 / 2048 budgets over 5120 / 5120 / 30 / 30 tokens."""
    available = np.array(available)
    masks = mask_sample(np.random.default_rng(seed), MaskingConfig(), PAPER_TOKENS, available, available)
    visible = np.array([(~m[0]).sum() for m in masks])
    targets = np.array([(~m[1]).sum() for m in masks])
    assert visible.sum() <= 2048 and targets.sum() <= 2048
    assert (visible[~available] == 0).all() and (targets[~available] == 0).all()
    for (input_mask, target_mask), n in zip(masks, PAPER_TOKENS):
        assert input_mask.shape == (n,) and target_mask.shape == (n,)


def test_same_seed_same_masks_and_alpha_mixture_is_used():
    a = mask_sample(np.random.default_rng(7), MaskingConfig(64, 64), [80, 80, 30, 30], np.ones(4, bool),
                    np.ones(4, bool))
    b = mask_sample(np.random.default_rng(7), MaskingConfig(64, 64), [80, 80, 30, 30], np.ones(4, bool),
                    np.ones(4, bool))
    assert all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    # alpha 0.01 concentrates the budget on one modality, alpha 10 spreads it
    rng = np.random.default_rng(0)
    caps, ok = np.array([1000] * 4), np.ones(4, bool)
    peaked = np.mean([dirichlet_budget(rng, 400, 0.01, caps, ok).max() for _ in range(200)])
    spread = np.mean([dirichlet_budget(rng, 400, 10.0, caps, ok).max() for _ in range(200)])
    assert peaked > 350 and spread < 180


@pytest.mark.parametrize("kwargs, message", [
    ({"num_input_tokens": 0}, ">= 1"),
    ({"alphas": [0.1, -1.0]}, "positive"),
    ({"mixture_weights": [1.0]}, "mixture_weights"),
])
def test_bad_masking_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskingConfig(**kwargs)
    with pytest.raises(ValueError, match="exceed"):
        random_masks(np.random.default_rng(0), 10, 6, 5)
