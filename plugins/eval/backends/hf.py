"""transformers ``generate`` backend: greedy decoding of Qwen-VL style checkpoints, batched, CPU or GPU."""

from __future__ import annotations

from egoforge.data.frames import load_frames
from egoforge.eval.backends import GenerationSettings, VisualRequest


def load_model(path: str, dtype):
    """Load a checkpoint, or a PEFT/LoRA adapter folder onto its base model (merged, for plain generation)."""
    import json
    from pathlib import Path

    from transformers import AutoModelForImageTextToText

    adapter_config = Path(path) / "adapter_config.json"
    if not adapter_config.exists():
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    from peft import PeftModel

    base_path = json.loads(adapter_config.read_text())["base_model_name_or_path"]
    base = AutoModelForImageTextToText.from_pretrained(base_path, dtype=dtype)
    return PeftModel.from_pretrained(base, path).merge_and_unload()


class TransformersBackend:
    def __init__(self, model: str, settings: GenerationSettings, device: str | None = None, dtype: str = "auto"):
        import torch
        from transformers import AutoProcessor

        self.settings = settings
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = torch.bfloat16 if (dtype == "auto" and self.device != "cpu") else torch.float32
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be auto, float32 or bfloat16, not {dtype!r}")
        if dtype == "bfloat16":
            torch_dtype = torch.bfloat16
        self.processor = AutoProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"
        self.model = load_model(model, torch_dtype).to(self.device).eval()
        self.model_type = self.model.config.model_type

    def _messages(self, request: VisualRequest) -> list[dict]:
        n = len(request.frames)
        visual = [{"type": "video"}] if self.settings.frames_as == "video" else [{"type": "image"}] * n
        return [{"role": "user", "content": [*visual, {"type": "text", "text": request.prompt}]}]

    def _inputs(self, requests: list[VisualRequest]):
        s = self.settings
        texts = [self.processor.apply_chat_template(self._messages(r), add_generation_prompt=True) for r in requests]
        as_video = s.frames_as == "video"
        clips = [load_frames(r.frames, s.min_pixels, s.max_pixels, even=as_video) for r in requests]
        kwargs: dict = {"text": texts, "padding": True, "return_tensors": "pt"}
        if not as_video:
            kwargs["images"] = [frame for clip in clips for frame in clip]
            return self.processor(**kwargs)
        kwargs["videos"] = clips
        if self.model_type.startswith(("qwen3", "qwen2_5")):
            # The frames are pre-sampled: their true rate gives Qwen3-VL its timestamps and Qwen2.5-VL its
            # absolute-time M-RoPE (second_per_grid_ts); transformers 5.5 reads both from video_metadata.
            kwargs["video_metadata"] = [
                {"fps": r.fps, "total_num_frames": len(c), "frames_indices": list(range(len(c)))}
                for r, c in zip(requests, clips)
            ]
            kwargs["do_sample_frames"] = False
        return self.processor(**kwargs)

    def generate(self, requests: list[VisualRequest]) -> list[str]:
        import torch

        inputs = self._inputs(requests).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.settings.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
