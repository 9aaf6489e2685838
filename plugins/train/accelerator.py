"""An ``accelerate.Accelerator`` from a recipe's run keys: mixed precision, gradient accumulation, seed.

Every egoforge trainer builds its accelerator here, so a recipe's ``mixed_precision: no`` (which YAML reads as
``False``) means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

PRECISIONS = ("no", "fp16", "bf16", "fp8")


def mixed_precision(value: Any) -> str:
    """A recipe's precision as accelerate spells it: ``False``/``None``/``"no"`` -> ``"no"``; others refused."""
    precision = "no" if value in (False, None, "no") else str(value)
    if precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {value!r}")
    return precision


def make_accelerator(precision: Any = "no", gradient_accumulation_steps: int = 1, seed: int | None = None,
                     **kwargs: Any):
    """The accelerator; with ``seed``, ``accelerate.utils.set_seed`` (python, numpy, torch) right after it.

    ``kwargs`` go to ``Accelerator`` unchanged (kwargs handlers, DeepSpeed plugin, trackers).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerator = Accelerator(gradient_accumulation_steps=gradient_accumulation_steps,
                              mixed_precision=mixed_precision(precision), **kwargs)
    if seed is not None:
        set_seed(seed)
    return accelerator
