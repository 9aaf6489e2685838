"""Load a Qwen-VL checkpoint for generation: a full checkpoint folder, or a PEFT/LoRA adapter folder merged onto the
base model its ``adapter_config.json`` names; plus its processor, the device and the weights' dtype.

Paths resolve offline (:func:`egoforge.data.models.resolve_model_path`): a missing folder, the adapter's base
included, is an error naming it rather than a hub download attempt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from egoforge.data.models import resolve_model_path

DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_device(device: str | None = None) -> str:
    """``device`` as given, else CUDA when there is one, else the CPU."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def torch_dtype(name: str, device: str, allowed: tuple[str, ...] = DTYPES):
    """The weights' dtype: ``auto`` is bfloat16 on an accelerator and float32 on the CPU."""
    import torch

    if name not in allowed:
        raise ValueError(f"dtype must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {name!r}")
    if name == "auto":
        return torch.bfloat16 if device != "cpu" else torch.float32
    return getattr(torch, name)


def adapter_base(path: str | os.PathLike) -> str | None:
    """The base model of a LoRA adapter folder (its ``adapter_config.json``), None for a full checkpoint."""
    config = Path(path) / "adapter_config.json"
    if not config.exists():
        return None
    base = json.loads(config.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{config}: no base_model_name_or_path, so the adapter's base model is unknown")
    return resolve_model_path(base, what=f"the base model of the LoRA adapter {path}")


def load_model(path: str | os.PathLike, dtype):
    """A checkpoint, or a PEFT/LoRA adapter folder onto its base model (merged, for plain generation)."""
    from transformers import AutoModelForImageTextToText

    path = resolve_model_path(path)
    base = adapter_base(path)
    if base is None:
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    from peft import PeftModel

    model = AutoModelForImageTextToText.from_pretrained(base, dtype=dtype)
    return PeftModel.from_pretrained(model, path).merge_and_unload()


def load_processor(path: str | os.PathLike, padding_side: str | None = "left"):
    """The checkpoint's processor; batched generation pads on the left so every reply starts at the same column."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(path))
    if padding_side:
        processor.tokenizer.padding_side = padding_side
    return processor
