"""EgoCross CloseQA / OpenQA generation: a testbed question (frame paths, prompt, frame rate) through an
:mod:`egoforge.vlm` engine, greedy, one reply per question.

The frames are loaded and fitted to the per-frame pixel budget by :func:`egoforge.data.clip.load_clip` (every frame
kept) and given to the model as one video with its true rate (official CloseQA) or as separate images (the SFT
protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

from egoforge.data.clip import ClipSettings, load_clip
from egoforge.vlm import GenerationRequest, Sampling, Visual


@dataclass(frozen=True)
class VisualRequest:
    """One question: its frames (absolute paths, in order), the user prompt, and the frames' sampling rate."""

    frames: tuple[str, ...]
    prompt: str
    fps: float


@dataclass(frozen=True)
class GenerationSettings:
    frames_as: str = "video"  # "video" (official CloseQA: the frame list as one video) or "images"
    max_new_tokens: int = 2048  # official value; the tiny demo uses far fewer
    max_pixels: int = 480 * 360  # per frame, official per-video cap
    min_pixels: int = 32 * 32
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.frames_as not in ("video", "images"):
            raise ValueError(f"frames_as must be 'video' or 'images', not {self.frames_as!r}")


def to_generation_request(request: VisualRequest, settings: GenerationSettings) -> GenerationRequest:
    """The frames loaded and fitted to the pixel budget (an even count for a video), as one clip or as images."""
    clip_settings = ClipSettings(min_pixels=settings.min_pixels, max_pixels=settings.max_pixels,
                                 frames_as=settings.frames_as)
    # Every testbed frame is kept (the official protocol samples them beforehand); odd counts repeat the last.
    clip = load_clip(list(request.frames), clip_settings, sample=False, native_fps=request.fps)
    if settings.frames_as == "video":
        visuals = [Visual("video", clip.frames, clip.fps, clip.indices)]
    else:
        visuals = [Visual("image", [f]) for f in clip.frames]
    return GenerationRequest(request.prompt, visuals, Sampling(max_new_tokens=settings.max_new_tokens))


class EgoCrossBackend:
    """Greedy answers to :class:`VisualRequest` batches through ``self.engine`` (set by the subclass)."""

    settings: GenerationSettings

    def generate(self, requests: list[VisualRequest]) -> list[str]:
        replies = self.engine.generate([to_generation_request(r, self.settings) for r in requests])
        return [texts[0] for texts in replies]


class TransformersBackend(EgoCrossBackend):
    def __init__(self, model: str, settings: GenerationSettings, device: str | None = None, dtype: str = "auto"):
        from egoforge.vlm.transformers_engine import TransformersEngine

        self.settings = settings
        self.engine = TransformersEngine(model, device=device, dtype=dtype)
        self.model, self.processor, self.device = self.engine.model, self.engine.processor, self.engine.device
        self.model_type = self.engine.model_type

    def _inputs(self, requests: list[VisualRequest]):
        return self.engine.processor_inputs([to_generation_request(r, self.settings) for r in requests])


class VLLMBackend(EgoCrossBackend):
    def __init__(self, model: str, settings: GenerationSettings, tensor_parallel_size: int = 1,
                 max_model_len: int = 32768, gpu_memory_utilization: float = 0.85, dtype: str = "auto",
                 engine_kwargs: dict | None = None):
        from egoforge.vlm.vllm_engine import VLLMEngine

        self.settings = settings
        limit = {"video": 1, "image": 0} if settings.frames_as == "video" else {"image": 256, "video": 0}
        # engine_kwargs last: the caller's explicit vllm.LLM arguments win, as before
        arguments = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                     "gpu_memory_utilization": gpu_memory_utilization, "dtype": dtype, "limit_mm_per_prompt": limit,
                     **(engine_kwargs or {})}
        self.engine = VLLMEngine(model, what="the vLLM backend", instead="use --backend transformers here",
                                 **arguments)
        self.llm = self.engine.llm


def make_backend(name: str, model: str, settings: GenerationSettings, **kwargs) -> EgoCrossBackend:
    """Instantiate the backend ``name`` ("transformers" or "vllm")."""
    if name == "transformers":
        return TransformersBackend(model, settings, **kwargs)
    if name == "vllm":
        return VLLMBackend(model, settings, **kwargs)
    raise ValueError(f"unknown backend {name!r}: choose 'transformers' or 'vllm'")
