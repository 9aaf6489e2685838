"""GPU-only paths of the benchmark suite (skipped without CUDA): the suite on the vLLM backend and on the
transformers backend on CUDA, with the same tasks and the same checks as the CPU runs.

Run them with ``bash tests/evalsuite/run_gpu_evalsuite.sh`` on a GPU machine (``pip install vllm`` first for the
vLLM test).
"""

from __future__ import annotations

import json

import pytest

from egoforge.lmms.tasks import BENCHMARKS

pytestmark = pytest.mark.gpu


def _check(out) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert set(results["benchmarks"]) == set(BENCHMARKS)
    assert all(0.0 <= r["score"] <= 100.0 for r in results["benchmarks"].values())
    return results


def test_suite_on_vllm(suite_cli, bench_root, tiny_qwen3_vl, hf_cache, tmp_path):
    pytest.importorskip("vllm")
    out = tmp_path / "vllm"
    assert suite_cli(tiny_qwen3_vl, bench_root, out, "--backend", "vllm", "--batch-size", "8",
                         "--model-args", "max_model_len=4096,gpu_memory_utilization=0.3", hf_cache=hf_cache) == 0
    assert "backend=vllm" in _check(out)["lmms_eval"]["command"]


def test_suite_on_cuda_transformers(suite_cli, bench_root, tiny_qwen3_vl, hf_cache, tmp_path):
    out = tmp_path / "cuda"
    assert suite_cli(tiny_qwen3_vl, bench_root, out, "--device", "cuda", "--batch-size", "4",
                         hf_cache=hf_cache) == 0
    _check(out)
