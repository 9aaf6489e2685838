"""What a Qwen-VL generation asks for: a prompt with its visuals, decoding settings, stop strings.

Every engine (:mod:`egoforge.vlm.transformers_engine`, :mod:`egoforge.vlm.vllm_engine`) reads these same types, so
the prompt, the chat turn and the video timing a model sees do not depend on which engine or pipeline asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from egoforge.data.clip import pad_even

KINDS = ("image", "video")


@dataclass
class Visual:
    """One image (one frame) or one clip (frames in order, decoded and already resized to their pixel budget).

    A clip carries its timing: ``indices`` count frames on a timeline of ``fps`` frames per second, which gives
    Qwen3-VL its ``<t seconds>`` and Qwen2.5-VL its absolute-time M-RoPE.
    """

    kind: str  # "image" or "video"
    frames: list[Image.Image]
    fps: float | None = None
    indices: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a visual is 'image' or 'video', not {self.kind!r}")

    @classmethod
    def clip(cls, frames: list[Image.Image], fps: float) -> Visual:
        """Frames sampled evenly at ``fps``: indices 0, 1, 2, ..."""
        return cls("video", list(frames), fps, list(range(len(frames))))

    @property
    def signature(self) -> str:
        return self.kind


def even_clip(visual: Visual) -> Visual:
    """Qwen-VL packs frames in pairs (temporal patch 2): an odd-length clip repeats its last frame *and its index*
    (:func:`egoforge.data.clip.pad_even`, as the Qwen processors and LLaMA-Factory pad), so the repeated frame keeps
    its own timestamp in every pipeline."""
    frames, indices, _ = pad_even(visual.frames, visual.indices)
    return Visual("video", frames, visual.fps, indices)


def video_metadata(visual: Visual) -> dict:
    """The per-video metadata transformers and vLLM read (frames pre-sampled: nothing is sampled again)."""
    return {"fps": visual.fps, "frames_indices": list(visual.indices), "total_num_frames": max(visual.indices) + 1,
            "duration": (max(visual.indices) + 1) / visual.fps}


@dataclass(frozen=True)
class Sampling:
    """Decoding: greedy when ``temperature`` is 0, else ``n`` samples at ``temperature`` / ``top_p``.

    ``seed``: the transformers engine seeds torch with it right before its ``generate`` call; the vLLM engine gives
    it to ``SamplingParams``. None leaves the generator as it is.
    """

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, not {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, not {self.temperature}")
        if self.n > 1 and self.greedy:
            raise ValueError(f"n={self.n} greedy samples would be copies of one another: give a temperature > 0")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


GREEDY = Sampling()


@dataclass
class GenerationRequest:
    """One user turn (the visuals in order, then the text) and how to decode its reply; replies are cut at the first
    of ``stop``."""

    prompt: str
    visuals: list[Visual] = field(default_factory=list)
    sampling: Sampling = GREEDY
    stop: tuple[str, ...] = ()


def chat_messages(request: GenerationRequest) -> list[dict]:
    """One user turn: a placeholder per visual, in order, then the text."""
    parts = [{"type": v.kind} for v in request.visuals]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": request.prompt}]}]


def truncate_at_stops(text: str, stops) -> str:
    """``text`` up to the first occurrence of any stop string."""
    cut = min((text.index(s) for s in stops if s and s in text), default=len(text))
    return text[:cut]


def shared_sampling(requests: list[GenerationRequest]) -> Sampling:
    """The one decoding of a batch; a batch that mixes decodings is an error (it would be decoded as its first)."""
    first = requests[0].sampling
    other = next((r.sampling for r in requests if r.sampling != first), None)
    if other is not None:
        raise ValueError(f"one generate call needs one decoding: {first} and {other} are mixed in this batch")
    return first
