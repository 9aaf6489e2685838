"""The examples in the reward modules' docstrings are run (and must hold): they document the official behaviour."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["answers", "text_metrics", "accuracy", "grounding", "scoring"]


@pytest.mark.parametrize("name", MODULES)
def test_reward_docstring_examples_hold(name):
    module = importlib.import_module(f"egoforge.rewards.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"egoforge.rewards.{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) of egoforge.rewards.{name} failed (output above)"


def test_a_wrong_example_fails():
    """The check can fail: a docstring that claims a wrong value is reported."""
    module = type(importlib)("fake_reward")
    module.__doc__ = ">>> 1 + 1\n3\n"
    runner = doctest.DocTestRunner(verbose=False)
    for test in doctest.DocTestFinder().find(module, "fake_reward"):
        runner.run(test, out=lambda _text: None)
    assert runner.summarize(verbose=False).failed == 1
