"""CSM generation through vLLM for real (CPU): ``egoforge select csm --backend vllm`` samples G responses per
request for the text and video conditions with ``vllm.LLM`` and selects from them like the transformers path."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_select_csm_through_vllm(vllm_tiny_model, tmp_path_factory, tmp_path, capsys, monkeypatch):
    from egoforge.ego3s import generation
    from egoforge.testing.ego3s_data import make_video_r1_dataset
    from egoforge.tools.cli import main
    from egoforge.vlm.vllm_engine import vllm_on_cpu

    data = tmp_path_factory.mktemp("csm_data")
    make_video_r1_dataset(data, n=10, seed=0)
    samplers = []
    original = generation.VLLMSampler.generate

    def spy(self, requests):
        samplers.append(self)
        return original(self, requests)

    monkeypatch.setattr(generation.VLLMSampler, "generate", spy)
    args = ["select", "csm", str(data / "train.json"), "--model", str(vllm_tiny_model("qwen2_5_vl")), "--out",
            str(tmp_path / "csm"), "--backend", "vllm", "--max-model-len", "4096", "-G", "5",
            "--max-new-tokens", "8", "--batch-size", "5",
            "--max-pixels", str(56 * 56), "--image-max-pixels", str(56 * 56), "--min-pixels", str(28 * 28),
            "--max-frames", "4", "--quiet"]
    assert main(args) == 0
    assert samplers  # vLLM sampled, with the CPU default below
    assert samplers[0].llm.llm_engine.vllm_config.model_config.enforce_eager is vllm_on_cpu()
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cache = [json.loads(line) for line in (tmp_path / "csm" / "responses.jsonl").read_text().splitlines()]
    assert {c["condition"] for c in cache} >= {"text", "video"}
    assert all(len(c["responses"]) == 5 and len(c["format"]) == 5 for c in cache)
    assert any(len(set(c["responses"])) > 1 for c in cache)  # sampled, not greedy copies
    assert out["samples"] == 10 and out["generations_total"] == 5 * len(cache)
    assert (tmp_path / "csm" / "csm_histogram.png").exists()
