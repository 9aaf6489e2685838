"""Tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL checkpoints built offline from configs.

Nothing here touches a hub: the tokenizer is a byte-level BPE trained on a generated corpus and carries every Qwen
special token, the processors are constructed from their classes, and the weights are random. Checkpoints written
by one transformers major version do not load in another, so callers build them at test time (``ensure_tiny_model``
caches one build per transformers version and architecture).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from egoforge.data.atomic import atomic_dir, file_lock

ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

# Qwen's reserved tokens, in the order the real vocabularies add them after the BPE merges.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Added (non-special) tokens: they survive `skip_special_tokens=True`, as in the real tokenizers.
QWEN_ADDED_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")

# Qwen-style chat template for the tiny models. Content is a string (LLaMA-Factory, vLLM) or a list of
# {"type": "image"|"video"|"text"} parts (transformers / lmms-eval / verl). Qwen2 families default to the
# "You are a helpful assistant." system prompt like the real checkpoints; Qwen3-VL has none.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' and default_system %}"
    "<|im_start|>system\n{{ default_system }}<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN2_SYSTEM = "You are a helpful assistant."
_DEFAULT_SYSTEM = {"qwen2_vl": _QWEN2_SYSTEM, "qwen2_5_vl": _QWEN2_SYSTEM, "qwen3_vl": ""}

# Bump when the builder changes so cached checkpoints are rebuilt.
BUILDER_VERSION = "5"


@dataclass(frozen=True)
class TinySize:
    """Dimensions of the tiny models: small enough for ~0.1 s training steps on two CPU cores."""

    hidden: int = 64
    intermediate: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 32
    vision_depth: int = 2
    vocab_target: int = 1024

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def tag(self) -> str:
        """Cache folder suffix: empty for the default size, else the fields that differ from it."""
        default = TinySize()
        changed = [f"{k}{v}" for k, v in self.__dict__.items() if getattr(default, k) != v]
        return "-".join(changed)


# vLLM's CPU attention backend accepts head_dim 32, 64, 80, ... but not the default's 16: same width, two heads.
VLLM_SIZE = TinySize(heads=2, kv_heads=1)


def mrope_sections(head_dim: int) -> list[int]:
    """M-RoPE (t, h, w) sections covering head_dim/2 rotary pairs: [2, 3, 3] for 16, [4, 6, 6] for 32."""
    pairs = head_dim // 2
    temporal = pairs // 4
    return [temporal, (pairs - temporal) // 2, pairs - temporal - (pairs - temporal) // 2]


def _corpus() -> list[str]:
    """Text the BPE is trained on: chat scaffolding, egocentric QA phrasing, JSON answers, digits."""
    from egoforge.testing.egocross_data import corpus_sentences

    lines = list(corpus_sentences())
    lines += [f"{i} {i / 10:.1f} {i * 0.5:.1f} seconds" for i in range(200)]
    lines += ["system user assistant You are a helpful assistant.", '{"prediction": "A", "reason": ""}']
    return lines


def build_tokenizer(vocab_target: int = 1024, arch: str = "qwen3_vl"):
    """Train a byte-level BPE and wrap it as a Qwen2TokenizerFast with the Qwen special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tokenizer.add_tokens(list(QWEN_ADDED_TOKENS))
    system = _DEFAULT_SYSTEM[arch]
    tokenizer.chat_template = "{% set default_system = " + json.dumps(system) + " %}" + _CHAT_TEMPLATE
    return tokenizer


def _token_ids(tokenizer) -> dict[str, int]:
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in VISION_TOKENS}
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def build_config(arch: str, tokenizer, size: TinySize = TinySize()):
    """Return the transformers config of a tiny model of ``arch``."""
    special = _token_ids(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    vocab = len(tokenizer)
    text = dict(
        vocab_size=vocab,
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        max_position_embeddings=4096,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
    )
    # mrope sections split the head_dim/2 rotary pairs over (t, h, w).
    mrope = mrope_sections(size.head_dim)
    if arch == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(
            head_dim=size.head_dim,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope,
                             "mrope_interleaved": True},
        )
        vision = dict(
            depth=size.vision_depth,
            hidden_size=size.vision_hidden,
            intermediate_size=size.vision_hidden * 2,
            num_heads=2,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=size.hidden,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0],
        )
        return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **special)
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        text.update(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope})
        vision = dict(
            depth=size.vision_depth,
            hidden_size=size.vision_hidden,
            intermediate_size=size.vision_hidden * 2,
            num_heads=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            out_hidden_size=size.hidden,
            fullatt_block_indexes=[size.vision_depth - 1],
            tokens_per_second=2,
        )
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **special)
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig

        text.update(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope})
        vision = dict(
            depth=size.vision_depth,
            embed_dim=size.vision_hidden,
            hidden_size=size.hidden,
            mlp_ratio=2,
            num_heads=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        )
        return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **special)
    raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {ARCHITECTURES}")


def build_processor(arch: str, tokenizer, min_pixels: int = 32 * 32, max_pixels: int = 128 * 128):
    """Assemble the real processor class of ``arch`` around the tiny tokenizer (no preprocessor download)."""
    from transformers import Qwen2VLImageProcessor

    patch = 16 if arch == "qwen3_vl" else 14
    image_mean = [0.5, 0.5, 0.5] if arch == "qwen3_vl" else None
    image_std = [0.5, 0.5, 0.5] if arch == "qwen3_vl" else None
    extra = {"image_mean": image_mean, "image_std": image_std} if image_mean else {}
    image_processor = Qwen2VLImageProcessor(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=patch, merge_size=2, temporal_patch_size=2, **extra
    )
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    if arch == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        # Qwen3-VL budgets pixels over the whole clip (frames x height x width), not per frame: allow 32 frames.
        clip = {"shortest_edge": min_pixels, "longest_edge": max_pixels * 32}
        video_processor = Qwen3VLVideoProcessor(size=clip, patch_size=patch, merge_size=2, temporal_patch_size=2)
        return Qwen3VLProcessor(image_processor=image_processor, video_processor=video_processor,
                                tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    from transformers import Qwen2VLVideoProcessor

    video_processor = Qwen2VLVideoProcessor(size=dict(size), patch_size=patch, merge_size=2, temporal_patch_size=2)
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor as processor_cls
    else:
        from transformers import Qwen2VLProcessor as processor_cls
    return processor_cls(image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer,
                         chat_template=tokenizer.chat_template)


def build_tiny_model(arch: str, out_dir: str | os.PathLike, seed: int = 0, size: TinySize = TinySize()) -> Path:
    """Build a tiny random ``arch`` checkpoint (model, tokenizer, processor, chat template) into ``out_dir``.

    The folder is written atomically: it appears complete or not at all.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {ARCHITECTURES}")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(size.vocab_target, arch)
    config = build_config(arch, tokenizer, size)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    with torch.no_grad():
        # With the default 0.02 init a 64-wide output head spans only ~1.3 nats of logits, so a frozen head (LoRA
        # runs) could never fit a label. Trained checkpoints have sharp heads; give the random one that range.
        model.get_output_embeddings().weight.normal_(0.0, 0.5)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    processor = build_processor(arch, tokenizer)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {"arch": arch, "builder_version": BUILDER_VERSION, "seed": seed, "size": size.__dict__}
        (tmp / "egoforge_tiny.json").write_text(json.dumps(meta, indent=2))
    return out_dir


def default_cache_root() -> Path:
    """Where tiny checkpoints are cached: $EGOFORGE_CACHE or ~/.cache/egoforge."""
    return Path(os.environ.get("EGOFORGE_CACHE", Path.home() / ".cache" / "egoforge"))


def ensure_tiny_model(arch: str, cache_root: str | os.PathLike | None = None, size: TinySize = TinySize()) -> Path:
    """Return a cached tiny ``arch`` checkpoint for the installed transformers, building it once (process-safe).

    ``size=VLLM_SIZE`` gives the variant vLLM's CPU attention accepts (head_dim 32).
    """
    import transformers

    root = Path(cache_root) if cache_root else default_cache_root()
    name = f"{arch}-{size.tag}" if size.tag else arch
    target = root / "tiny-models" / f"transformers-{transformers.__version__}" / f"v{BUILDER_VERSION}" / name
    if (target / "egoforge_tiny.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{name}.lock"):
        if not (target / "egoforge_tiny.json").exists():
            build_tiny_model(arch, target, size=size)
    return target
