"""``egoforge_vl``: an lmms-eval model for Qwen2-VL / Qwen2.5-VL / Qwen3-VL checkpoints and LoRA folders.

Registered through the ``lmms_eval.models`` entry point (``egoforge.lmms.manifest``), so
``python -m lmms_eval --model egoforge_vl --model_args pretrained=DIR ...`` works without touching lmms-eval.
Why not the stock ``qwen2_5_vl`` / ``qwen3_vl`` classes: they import decord at module level (not installable
beside our pins), default to ``device_map=auto`` (CUDA only), and see a frame list as unrelated images.
Here frames tagged as one clip reach the model as one video with their true timestamps, video files are decoded
with PyAV, and the same class runs transformers on CPU/GPU or vLLM on GPU (``backend=vllm``).
"""

from __future__ import annotations

from lmms_eval.api.model import lmms
from tqdm.auto import tqdm

from egoforge.lmms.engines import Prompt, grouped
from egoforge.lmms.inputs import InputSettings, to_visuals


def _as_bool(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


class EgoforgeVL(lmms):
    is_simple = True

    def __init__(
        self,
        pretrained: str,
        backend: str = "transformers",
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int | str = 1,
        frames_as: str = "video",
        image_max_pixels: int = InputSettings.image_max_pixels,
        video_max_pixels: int = InputSettings.video_max_pixels,
        min_pixels: int = InputSettings.min_pixels,
        video_fps: float = InputSettings.video_fps,
        max_frames: int = InputSettings.max_frames,
        max_new_tokens: int = 128,
        tensor_parallel_size: int = 1,
        max_model_len: int = 32768,
        gpu_memory_utilization: float = 0.85,
        max_batch_size: int | None = None,
        progress: bool | str = True,
        **unknown,
    ) -> None:
        super().__init__()
        if unknown:
            raise TypeError(f"egoforge_vl: unknown model_args {sorted(unknown)}")
        self.settings = InputSettings(frames_as=frames_as, image_max_pixels=int(image_max_pixels),
                                      video_max_pixels=int(video_max_pixels), min_pixels=int(min_pixels),
                                      video_fps=float(video_fps), max_frames=int(max_frames))
        self.batch_size_per_gpu = max(1, int(str(batch_size).split(":")[0]) if str(batch_size) != "auto" else 1)
        self.default_max_new_tokens = int(max_new_tokens)
        self.progress = _as_bool(progress)
        if backend == "transformers":
            from egoforge.lmms.engines import TransformersEngine

            self.engine = TransformersEngine(str(pretrained), device=device, dtype=dtype)
            self._device = self.engine.device
        elif backend == "vllm":
            from egoforge.lmms.engines import VLLMEngine

            self.engine = VLLMEngine(str(pretrained), tensor_parallel_size=int(tensor_parallel_size),
                                     max_model_len=int(max_model_len),
                                     gpu_memory_utilization=float(gpu_memory_utilization), dtype=dtype)
            self._device = "cpu" if self.engine.on_cpu else "cuda"
        else:
            raise ValueError(f"egoforge_vl: backend must be 'transformers' or 'vllm', not {backend!r}")

    @property
    def device(self):
        return self._device

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def generate_until(self, requests) -> list[str]:
        answers: list[str] = [""] * len(requests)
        bar = tqdm(total=len(requests), desc="egoforge_vl", unit="doc", disable=not self.progress)
        # Visuals are loaded one batch at a time: a long benchmark never holds all of its decoded video in memory.
        for start in range(0, len(requests), self.batch_size):
            window = list(range(start, min(start + self.batch_size, len(requests))))
            prompts = []
            for i in window:
                context, gen_kwargs, doc_to_visual, doc_id, task, split = requests[i].args
                raw = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else []
                prompts.append(Prompt.from_gen_kwargs(context, to_visuals(raw or [], self.settings), gen_kwargs,
                                                      self.default_max_new_tokens))
            for positions, batch in grouped(prompts, self.batch_size):
                for position, text in zip(positions, self.engine.generate(batch)):
                    request = requests[window[position]]
                    answers[window[position]] = text
                    self.cache_hook.add_partial("generate_until", (request.args[0], request.args[1]), text)
            bar.update(len(window))
        bar.close()
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("egoforge_vl generates answers; log-likelihood tasks (e.g. *_mcppl) are not "
                                  "supported: use the generation variant of the task")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("egoforge_vl does not implement multi-round generation")
