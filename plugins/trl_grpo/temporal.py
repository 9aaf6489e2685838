"""Shuffled-frame rollouts for Video-R1's temporal (T-GRPO) bonus, generated with the live policy.

TRL 0.24 rolls out each prompt once; T-GRPO also needs G/2 completions of the same prompt with its frames in a
shuffled order. ``ShuffledFrameSampler`` produces them inside the reward step (no gradient), with the same
sampling settings and vision-token guard as the training rollouts.
"""

from __future__ import annotations


class ShuffledFrameSampler:
    def __init__(self, processor, max_new_tokens: int, temperature: float = 1.0, suppress_tokens=None) -> None:
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.suppress_tokens = suppress_tokens
        self.model = None  # bound once the trainer has built the policy

    def bind(self, model) -> ShuffledFrameSampler:
        self.model = model
        return self

    def __call__(self, prompt, images, n: int) -> list[str]:
        import torch

        if self.model is None:
            raise RuntimeError("ShuffledFrameSampler.bind(model) must be called before training")
        text = self.processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        device = next(self.model.parameters()).device
        inputs = self.processor(text=[text], images=list(images), return_tensors="pt").to(device)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                out = self.model.generate(**inputs, do_sample=True, temperature=self.temperature,
                                          max_new_tokens=self.max_new_tokens, num_return_sequences=n,
                                          suppress_tokens=self.suppress_tokens)
        finally:
            self.model.train(was_training)
        new = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
