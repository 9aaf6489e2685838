"""CLIP image-text similarity for the grounded reward, behind a small pluggable backend interface.

A backend turns (object names, interaction image) into S = max cosine similarity. The shipped backend runs a
transformers ``CLIPModel`` (the official code uses CLIP through transformers; ViT-L/14 is assumed); others
register with ``register_backend``. Embeddings are cached: object names repeat across rollouts ("hand", "cup")
and every rollout of a prompt shares one interaction image, so a group costs about one image encode plus a few
new text encodes. Weights load from safetensors only.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol


class SimilarityBackend(Protocol):
    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        """max_t cos(text_embedding(t), image_embedding(image)); 0.0 for no texts."""


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class TransformersClip:
    """``CLIPModel`` + ``CLIPProcessor`` from a local folder; thread-safe (verl scores in a thread pool)."""

    def __init__(self, model_path: str | os.PathLike, device: str | None = None, text_cache: int = 8192,
                 image_cache: int = 1024) -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = CLIPModel.from_pretrained(str(model_path), use_safetensors=True).to(self.device).eval()
        self.processor = CLIPProcessor.from_pretrained(str(model_path))
        self._texts = _LRU(text_cache)
        self._images = _LRU(image_cache)
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _encode_texts(self, texts: list[str]):
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with torch.inference_mode():
            features = self.model.get_text_features(**inputs)
        return torch.nn.functional.normalize(_tensor(features).float(), dim=-1).cpu()

    def _encode_image(self, image_path: str):
        import torch
        from PIL import Image

        with Image.open(image_path) as img:
            inputs = self.processor(images=img.convert("RGB"), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            features = self.model.get_image_features(**inputs)
        return torch.nn.functional.normalize(_tensor(features).float(), dim=-1).cpu()[0]

    def text_embeddings(self, texts: Sequence[str]):
        import torch

        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._texts))
            if missing:
                for text, row in zip(missing, self._encode_texts(missing)):
                    self._texts.put(text, row)
            return torch.stack([self._texts[t] for t in texts])

    def image_embedding(self, image_path: str):
        with self._lock:
            if image_path not in self._images:
                self._images.put(image_path, self._encode_image(image_path))
            return self._images[image_path]

    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        if not texts or not image_path:
            return 0.0
        try:
            image = self.image_embedding(image_path)
        except OSError as exc:  # a missing/corrupt ROI image must not kill an RL run: S = 0, warned once
            if image_path not in self._warned:
                self._warned.add(image_path)
                warnings.warn(f"egoforge grounded reward: cannot read interaction image {image_path}: {exc}",
                              stacklevel=2)
            return 0.0
        return float((self.text_embeddings(texts) @ image).max())


def _tensor(features):
    """transformers 5 may return a model output instead of a tensor from get_*_features."""
    return features if hasattr(features, "float") else features.pooler_output


_BACKENDS: dict[str, Callable[..., SimilarityBackend]] = {"transformers": TransformersClip}
_LOADED: dict[tuple, SimilarityBackend] = {}
_LOAD_LOCK = threading.Lock()


def register_backend(name: str, factory: Callable[..., SimilarityBackend]) -> None:
    """Make ``factory(model_path, **kwargs)`` selectable as ``clip_backend=name``."""
    _BACKENDS[name] = factory


def load_clip(model_path: str | os.PathLike, backend: str = "transformers", **kwargs) -> SimilarityBackend:
    """One backend instance per (backend, path, kwargs) and process: reward workers load CLIP once."""
    if backend not in _BACKENDS:
        raise ValueError(f"unknown CLIP backend {backend!r}; registered: {sorted(_BACKENDS)}")
    if not os.path.isdir(model_path):
        raise FileNotFoundError(
            f"CLIP model folder not found: {model_path}. The grounded reward needs a local CLIP checkpoint "
            "such as openai/clip-vit-large-patch14 (`egoforge download model:<ModelScope id> --local-dir DIR`)"
        )
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # unset options share one instance
    key = (backend, os.path.abspath(model_path), tuple(sorted(kwargs.items())))
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _BACKENDS[backend](model_path, **kwargs)
        return _LOADED[key]
