"""Generation backends for the evaluation protocols: transformers (CPU/GPU) and vLLM (GPU, optional)."""

from __future__ import annotations

from dataclasses import dataclass


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


def make_backend(name: str, model: str, settings: GenerationSettings, **kwargs):
    """Instantiate the backend ``name`` ("transformers" or "vllm")."""
    if name == "transformers":
        from egoforge.eval.backends.hf import TransformersBackend

        return TransformersBackend(model, settings, **kwargs)
    if name == "vllm":
        from egoforge.eval.backends.vllm import VLLMBackend

        return VLLMBackend(model, settings, **kwargs)
    raise ValueError(f"unknown backend {name!r}: choose 'transformers' or 'vllm'")
