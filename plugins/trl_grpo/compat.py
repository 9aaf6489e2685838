"""Fixes that TRL 0.24's GRPOTrainer needs with transformers 5.5 and Qwen-VL models (measured here; docs/ego3s.md).

1. ``trl.import_utils`` keeps transformers' ``_is_package_available`` results, which are ``(bool, version)``
   tuples in transformers 5 and therefore always truthy: every optional integration looks installed and
   ``from trl import GRPOTrainer`` fails on ``mergekit``. ``apply()`` turns them back into booleans.
2. transformers 5 removed ``PreTrainedModel.warnings_issued``, which ``GRPOTrainer.__init__`` writes to.
3. A random or young policy can sample vision special tokens; re-scoring such a completion counts an extra image
   slot (``Image features and image tokens do not match``). ``vision_suppress_tokens`` lists them for
   ``GRPOConfig.generation_kwargs={"suppress_tokens": ...}``.
4. Qwen2.5-VL / Qwen3-VL build M-RoPE positions from ``mm_token_type_ids``. TRL 0.24 generates with it but drops
   it from the log-prob forward passes: Qwen3-VL then fails, and Qwen2.5-VL *silently* falls back to 1-D
   positions, i.e. wrong training log-probs. ``vlm_grpo_trainer_cls()`` returns a GRPOTrainer subclass that never
   forwards the prompt-only tensor and rebuilds the full-length one from ``input_ids`` in a forward pre-hook
   (image token -> 1, video token -> 2, exactly the processor's ``create_mm_token_type_ids``).

``apply()`` must run before ``trl.trainer`` is imported.
"""

from __future__ import annotations

import sys

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def apply() -> None:
    """Fixes 1 and 2 (idempotent)."""
    if "trl.trainer.grpo_trainer" not in sys.modules:
        import trl.import_utils as iu

        for name in dir(iu):
            value = getattr(iu, name)
            if name.startswith("_") and name.endswith("_available") and isinstance(value, tuple):
                setattr(iu, name, bool(value[0]))
    from transformers import PreTrainedModel

    if not hasattr(PreTrainedModel, "warnings_issued"):
        PreTrainedModel.warnings_issued = {}


def vision_suppress_tokens(processor) -> list[int]:
    """Ids of Qwen's vision special tokens (fix 3)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = [tokenizer.convert_tokens_to_ids(token) for token in VISION_TOKENS]
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]


def mm_token_type_ids_from(input_ids, image_token_id: int | None, video_token_id: int | None):
    """``mm_token_type_ids`` for ``input_ids``: 1 at image tokens, 2 at video tokens, 0 elsewhere."""
    import torch

    types = torch.zeros_like(input_ids, dtype=torch.int32)
    if image_token_id is not None:
        types[input_ids == image_token_id] = 1
    if video_token_id is not None:
        types[input_ids == video_token_id] = 2
    return types


def _vlm_module(model):
    """The ``*ForConditionalGeneration`` module inside a (possibly PEFT- or accelerate-wrapped) model."""
    for module in model.modules():
        if type(module).__name__.endswith("ForConditionalGeneration"):
            return module
    return None


def install_mm_token_type_hook(model) -> bool:
    """Rebuild ``mm_token_type_ids`` from ``input_ids`` whenever vision inputs arrive without it (fix 4)."""
    target = _vlm_module(model)
    if target is None or getattr(target, "_egoforge_mm_hook", False):
        return False
    config = target.config
    image_id, video_id = getattr(config, "image_token_id", None), getattr(config, "video_token_id", None)

    def hook(module, args, kwargs):
        has_vision = kwargs.get("pixel_values") is not None or kwargs.get("pixel_values_videos") is not None
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if has_vision and kwargs.get("mm_token_type_ids") is None and input_ids is not None:
            kwargs["mm_token_type_ids"] = mm_token_type_ids_from(input_ids, image_id, video_id)
        return args, kwargs

    target.register_forward_pre_hook(hook, with_kwargs=True)
    target._egoforge_mm_hook = True
    return True


def vlm_grpo_trainer_cls():
    """GRPOTrainer subclass with fix 4 (and fixes 1-2 applied)."""
    apply()
    from trl import GRPOTrainer

    class VLMGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            install_mm_token_type_hook(self.model)
            if getattr(self, "ref_model", None) is not None:
                install_mm_token_type_hook(self.ref_model)

        def _generate_single_turn(self, prompts, images):
            prompt_ids, completion_ids, logprobs, forward_kwargs = super()._generate_single_turn(prompts, images)
            # Prompt-only ids would be wrong for prompt+completion; the hook rebuilds the full-length tensor.
            forward_kwargs.pop("mm_token_type_ids", None)
            return prompt_ids, completion_ids, logprobs, forward_kwargs

    return VLMGRPOTrainer
