"""egoforge.vlm's vLLM engine directly (vLLM on CPU): one batch mixing a question only, an image and a clip gives
the transformers engine's greedy replies; ``n`` samples per request; replies cut at the stop strings."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _frames(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8)) for _ in range(n)]


def test_vllm_engine_matches_the_transformers_engine(vllm_tiny_model):
    from egoforge.vlm import GenerationRequest, Sampling, Visual, make_engine

    model = str(vllm_tiny_model("qwen2_5_vl"))
    greedy = Sampling(max_new_tokens=8)
    requests = [GenerationRequest("Hello there", [], greedy),
                GenerationRequest("Which object?", [Visual("image", _frames(1, 0))], greedy),
                GenerationRequest("What happens?", [Visual.clip(_frames(4, 1), fps=0.5)], greedy)]
    vllm = make_engine("vllm", model, max_model_len=4096, dtype="float32", seed=0)
    by_vllm = vllm.generate(requests)
    by_hf = [make_engine("transformers", model, device="cpu", dtype="float32").generate([r])[0] for r in requests]
    assert [len(r) for r in by_vllm] == [1, 1, 1] and any(r[0].strip() for r in by_vllm)
    assert by_vllm == by_hf

    sampled = vllm.generate([GenerationRequest("Hello there", [], Sampling(max_new_tokens=8, temperature=1.0, n=3))])
    assert len(sampled[0]) == 3 and len(set(sampled[0])) > 1

    reply = by_vllm[2][0]
    assert len(reply) >= 3
    stop = reply[1:3]
    (cut,) = vllm.generate([GenerationRequest("What happens?", requests[2].visuals, greedy, (stop,))])
    assert cut == [reply[:reply.index(stop)]]
