"""Generation through transformers ``model.generate`` (CPU or GPU): one call per batch of requests.

A batch shares one decoding (:func:`egoforge.vlm.request.shared_sampling`). Replies are the new tokens decoded with
``skip_special_tokens=True, clean_up_tokenization_spaces=False``, the decoding the vLLM engine copies.
"""

from __future__ import annotations

import os

from egoforge.vlm.loading import load_model, load_processor, pick_device, torch_dtype
from egoforge.vlm.request import GenerationRequest, chat_messages, shared_sampling, truncate_at_stops, video_metadata


class TransformersEngine:
    """A loaded checkpoint or LoRA folder; or a live ``model`` + ``processor`` (e.g. a policy inside a trainer)."""

    def __init__(self, model_path: str | os.PathLike | None, device: str | None = None, dtype: str = "auto", *,
                 model=None, processor=None) -> None:
        self.device = pick_device(device)
        weights_dtype = torch_dtype(dtype, self.device)
        if processor is not None:
            processor.tokenizer.padding_side = "left"
        self.processor = processor or load_processor(model_path)
        self.model = model if model is not None else load_model(model_path, weights_dtype).to(self.device).eval()
        self.model_type = self.model.config.model_type

    def processor_inputs(self, requests: list[GenerationRequest]):
        """The processor's tensors for one batch: chat texts, images, and clips with their timing."""
        texts = [self.processor.apply_chat_template(chat_messages(r), add_generation_prompt=True) for r in requests]
        kwargs: dict = {"text": texts, "padding": True, "return_tensors": "pt"}
        images = [f for r in requests for v in r.visuals if v.kind == "image" for f in v.frames]
        videos = [v for r in requests for v in r.visuals if v.kind == "video"]
        if images:
            kwargs["images"] = images
        if videos:
            # The frames are already sampled: the metadata carries their timing (Qwen3-VL's timestamps,
            # Qwen2.5-VL's seconds per temporal patch = 2 / sampled fps) and nothing is re-sampled.
            kwargs["videos"] = [v.frames for v in videos]
            kwargs["video_metadata"] = [video_metadata(v) for v in videos]
            kwargs["do_sample_frames"] = False
        return self.processor(**kwargs)

    def generate(self, requests: list[GenerationRequest]) -> list[list[str]]:
        """``sampling.n`` replies per request, in request order."""
        import torch

        sampling = shared_sampling(requests)
        inputs = self.processor_inputs(requests).to(self.device)
        decoding = {"do_sample": False} if sampling.greedy else {
            "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
        if sampling.n > 1:
            decoding["num_return_sequences"] = sampling.n
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=sampling.max_new_tokens, **decoding)
        texts = self.processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True,
                                            clean_up_tokenization_spaces=False)
        n = sampling.n
        return [[truncate_at_stops(t, r.stop) for t in texts[i * n:(i + 1) * n]] for i, r in enumerate(requests)]
