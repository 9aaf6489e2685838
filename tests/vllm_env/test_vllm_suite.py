"""The suite's vLLM backend for real (CPU): ``egoforge evaluate suite --backend vllm`` runs lmms-eval with
``egoforge_vl`` on ``vllm.LLM`` and gives the transformers backend's answers and scores on the same tiny greedy
checkpoint (float32 both; answers decoded from the token ids the same way)."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_suite_vllm_backend_matches_transformers(vllm_tiny_model, tmp_path_factory, tmp_path, monkeypatch):
    pytest.importorskip("lmms_eval", reason="the suite needs lmms-eval (the vllm-cpu lock has it, the rl lock not)")
    from egoforge.testing.benchdata import make_benchmarks
    from egoforge.tools.cli import main as cli

    bench = tmp_path_factory.mktemp("suite_bench")
    make_benchmarks(bench, ("qaego4d", "egocross"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    model = vllm_tiny_model("qwen3_vl")
    results = {}
    for backend in ("vllm", "transformers"):
        out = tmp_path / backend
        assert cli(["evaluate", "suite", "--model", str(model), "--data-root", str(bench), "--out", str(out),
                    "--benchmarks", "qaego4d,egocross", "--backend", backend, "--limit", "3", "--no-published",
                    "--max-new-tokens", "8", "--device", "cpu", "--quiet",
                    "--model-args", "dtype=float32,max_model_len=4096"]) == 0
        results[backend] = json.loads((out / "results.json").read_text())
        if backend == "vllm":  # the engine really was vLLM: its own log lines are in lmms-eval's log
            assert "vllm" in (out / "lmms_eval.log").read_text().lower()
    assert "backend=vllm" in results["vllm"]["lmms_eval"]["command"]
    for name in ("qaego4d", "egocross"):
        assert results["vllm"]["benchmarks"][name]["score"] == results["transformers"]["benchmarks"][name]["score"]
    answers = {b: (tmp_path / b / "egocross" / "predictions.jsonl").read_text() for b in results}
    assert answers["vllm"] == answers["transformers"] and answers["vllm"].count("\n") == 3
