"""Tiny Qwen2-VL / Qwen2.5-VL / Qwen3-VL build offline, reload through the Auto classes and generate."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from egoforge.testing.tiny_models import QWEN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS, build_tiny_model


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_build_reload_forward_and_generate(arch, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = build_tiny_model(arch, tmp_path / arch)
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    tokenizer = processor.tokenizer
    vocab = tokenizer.get_vocab()
    for token in (*QWEN_SPECIAL_TOKENS, *QWEN_ADDED_TOKENS):
        assert token in vocab, token
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    images = [Image.new("RGB", (96, 64), (200, 30, 30)), Image.new("RGB", (64, 64), (30, 30, 200))]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Q?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text.endswith("Q?<|im_end|>\n<|im_start|>assistant\n")
    assert text.startswith("<|im_start|>system\n") == (arch != "qwen3_vl")
    inputs = processor(text=[text], images=images, return_tensors="pt")
    out = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(out.loss)
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4 or tokenizer.eos_token_id in generated[0]
    meta = json.loads((path / "egoforge_tiny.json").read_text())
    assert meta["arch"] == arch


def test_cached_builds_are_reused(tmp_path):
    from egoforge.testing.tiny_models import ensure_tiny_model

    first = ensure_tiny_model("qwen2_vl", tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model("qwen2_vl", tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_unknown_architecture(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny architecture"):
        build_tiny_model("llava", tmp_path)


def test_vllm_variant_has_a_head_dim_vllm_cpu_accepts(tmp_path):
    """vLLM's CPU attention takes head_dim 32/64/80..., not the default 16; M-RoPE sections must cover head_dim/2."""
    from transformers import AutoConfig

    from egoforge.testing.tiny_models import VLLM_SIZE, TinySize, ensure_tiny_model, mrope_sections

    assert mrope_sections(16) == [2, 3, 3] and mrope_sections(32) == [4, 6, 6]
    assert TinySize().tag == "" and VLLM_SIZE.tag == "heads2-kv_heads1" and VLLM_SIZE.head_dim == 32
    for arch in ("qwen3_vl", "qwen2_5_vl"):
        path = ensure_tiny_model(arch, tmp_path, size=VLLM_SIZE)
        assert path.name == f"{arch}-heads2-kv_heads1"
        text = AutoConfig.from_pretrained(path).get_text_config()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        assert head_dim == 32
        assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2
