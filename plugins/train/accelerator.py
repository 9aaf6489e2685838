"""An ``accelerate.Accelerator`` from a recipe's run keys: mixed precision, gradient accumulation, seed.

Every egoforge trainer builds its accelerator here, so a recipe's ``mixed_precision: no`` (which YAML reads as
``False``) means the same thing everywhere.
"""

from __future__ import annotations

import logging
from typing import Any

PRECISIONS = ("no", "fp16", "bf16", "fp8")


def mixed_precision(value: Any) -> str:
    """A recipe's precision as accelerate spells it: ``False``/``None``/``"no"`` -> ``"no"``; others refused."""
    precision = "no" if value in (False, None, "no") else str(value)
    if precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {value!r}")
    return precision


class CpuAcceleratorNotice(logging.Filter):
    """Drops DeepSpeed's "Setting accelerator to CPU" warning and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Setting accelerator to CPU")


def quiet_deepspeed_cpu_notice() -> None:
    """DeepSpeed warns "Setting accelerator to CPU" the first time anything asks it for its accelerator on a machine
    without a GPU (accelerate's ``unwrap_model`` does, mid-run, so the line splices into the progress bar). On CPU it
    is expected; that one message is filtered out of DeepSpeed's logger, every other DeepSpeed message stays."""
    logger = logging.getLogger("DeepSpeed")  # the logger deepspeed.utils.logging creates (same object, any order)
    if not any(isinstance(f, CpuAcceleratorNotice) for f in logger.filters):
        logger.addFilter(CpuAcceleratorNotice())


def make_accelerator(precision: Any = "no", gradient_accumulation_steps: int = 1, seed: int | None = None,
                     **kwargs: Any):
    """The accelerator; with ``seed``, ``accelerate.utils.set_seed`` (python, numpy, torch) right after it.

    ``kwargs`` go to ``Accelerator`` unchanged (kwargs handlers, DeepSpeed plugin, trackers).
    """
    quiet_deepspeed_cpu_notice()
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    accelerator = Accelerator(gradient_accumulation_steps=gradient_accumulation_steps,
                              mixed_precision=mixed_precision(precision), **kwargs)
    if seed is not None:
        set_seed(seed)
    return accelerator
