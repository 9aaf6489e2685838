"""``egoforge evaluate egocross --backend vllm`` for real (vLLM on CPU) against ``--backend transformers``: the same
tiny greedy checkpoint in float32 gives the same predictions file and the same scores.

Both backends decode the generated token ids with the checkpoint's processor, so equal tokens give equal text (vLLM's
own incremental detokenizer would drop a trailing incomplete UTF-8 sequence that ``batch_decode`` writes as U+FFFD).
"""

from __future__ import annotations

import json

import pytest

from egoforge.tools.cli import main as cli

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
TINY = ["--max-new-tokens", "8", "--max-pixels", "16384", "--batch-size", "4", "--dtype", "float32", "--quiet"]


def _run(model, testbed, out, backend, frames_as):
    files = ["--testbed", str(testbed / "egocross_testbed_imgs.json"),
             "--answers", str(testbed / "egocross_testbed_answers.json"), "--out", str(out)]
    return cli(["evaluate", "egocross", "--model", str(model), *files, "--backend", backend,
                "--frames-as", frames_as, "--max-model-len", "4096", *TINY])


def _records(out):
    return sorted((json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()),
                  key=lambda r: r["id"])


# qwen2_5_vl/video is the case whose reply ends inside a UTF-8 sequence (the detokenizer difference above).
@pytest.mark.parametrize("arch,frames_as", [("qwen3_vl", "video"), ("qwen2_5_vl", "video"),
                                            ("qwen2_5_vl", "images")])
def test_vllm_backend_matches_transformers(arch, frames_as, vllm_tiny_model, vllm_testbed, tmp_path, monkeypatch):
    from egoforge.eval import backends as vllm_backend
    from egoforge.vlm.vllm_engine import vllm_on_cpu

    model = vllm_tiny_model(arch)
    engines = []
    original = vllm_backend.VLLMBackend.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        engines.append(self.llm)

    monkeypatch.setattr(vllm_backend.VLLMBackend, "__init__", spy)
    assert _run(model, vllm_testbed, tmp_path / "vllm", "vllm", frames_as) == 0
    assert len(engines) == 1 and type(engines[0]).__module__.startswith("vllm")  # vLLM really generated
    assert engines[0].llm_engine.vllm_config.model_config.enforce_eager is vllm_on_cpu()  # the CPU default
    del engines[:]
    assert _run(model, vllm_testbed, tmp_path / "hf", "transformers", frames_as) == 0

    by_vllm, by_hf = _records(tmp_path / "vllm"), _records(tmp_path / "hf")
    assert len(by_vllm) == 4
    assert any(r["raw_response"].strip() for r in by_vllm)  # something was generated, not an empty echo
    assert by_vllm == by_hf
    scores = [json.loads((tmp_path / d / "results.json").read_text()) for d in ("vllm", "hf")]
    assert scores[0] == scores[1]
