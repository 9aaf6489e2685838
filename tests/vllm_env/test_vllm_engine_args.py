"""The vLLM engine arguments egoforge's backends pass on CPU and on GPU (pure function; runs without vLLM)."""

from __future__ import annotations

from egoforge.vlm.vllm_engine import engine_args


def test_cpu_defaults_under_explicit_choices():
    requested = {"max_model_len": 4096, "gpu_memory_utilization": 0.85, "dtype": "auto"}
    assert engine_args(True, requested) == {"enforce_eager": True, "max_model_len": 4096, "dtype": "auto"}
    assert engine_args(True, {**requested, "enforce_eager": False})["enforce_eager"] is False  # caller wins
    assert engine_args(False, requested) == requested  # GPU: exactly what was asked
    assert "gpu_memory_utilization" in requested  # the caller's dict is not modified
