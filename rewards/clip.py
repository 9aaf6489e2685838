"""CLIP image-text similarity for the grounded reward, behind a small pluggable backend interface.

A backend turns (object names, interaction image) into S = max cosine similarity. The shipped backend runs a
transformers ``CLIPModel`` (the official code uses CLIP through transformers; ViT-L/14 is assumed); others
register with ``register_backend``. Embeddings are cached: object names repeat across rollouts ("hand", "cup")
and every rollout of a prompt shares one interaction image, so a group costs about one image encode plus a few
new text encodes. Weights load from safetensors only.

``max_similarities`` scores many (names, image) requests with one image forward pass and one text forward pass
per ``batch_size`` requests; ``ClipBatcher`` gathers the requests of concurrently scored rollouts (verl's reward
loop scores each rollout in its own task) into such micro-batches.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol


class SimilarityBackend(Protocol):
    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        """max_t cos(text_embedding(t), image_embedding(image)); 0.0 for no texts."""


ClipRequest = tuple[Sequence[str], str]  # (object names, interaction image path) of one rollout


def max_similarities(backend: SimilarityBackend, requests: Sequence[ClipRequest]) -> list[float]:
    """S for each request: the backend's batched ``max_similarities`` when it has one, else one at a time."""
    batched = getattr(backend, "max_similarities", None)
    if batched is not None:
        return list(batched(requests))
    return [backend.max_similarity(texts, image) for texts, image in requests]


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
                 image_cache: int = 1024, batch_size: int = 64, text_batch_size: int = 512) -> None:
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(str(model_path), use_safetensors=True)
        self._setup(model, CLIPProcessor.from_pretrained(str(model_path)), device, text_cache, image_cache,
                    batch_size, text_batch_size)

    @classmethod
    def from_model(cls, model, processor, device: str | None = None, **options) -> TransformersClip:
        """A backend around an already built ``CLIPModel`` and ``CLIPProcessor`` (benchmarks, custom loading)."""
        backend = cls.__new__(cls)
        backend._setup(model, processor, device, **options)
        return backend

    def _setup(self, model, processor, device: str | None, text_cache: int = 8192, image_cache: int = 1024,
               batch_size: int = 64, text_batch_size: int = 512) -> None:
        import torch

        if int(batch_size) < 1 or int(text_batch_size) < 1:
            raise ValueError(f"CLIP batch sizes must be >= 1, got {batch_size!r} / {text_batch_size!r}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.batch_size = int(batch_size)  # images per forward pass
        self.text_batch_size = int(text_batch_size)  # object names per forward pass (short: 77 tokens at most)
        self.forward_passes = {"image": 0, "text": 0}  # what a batch really cost (tests and benchmarks read it)
        self._texts = _LRU(text_cache)
        self._images = _LRU(image_cache)
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _encode_texts(self, texts: list[str]):
        import torch

        inputs = self.processor(text=texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        with torch.inference_mode():
            features = self.model.get_text_features(**inputs)
        self.forward_passes["text"] += 1
        return torch.nn.functional.normalize(_tensor(features).float(), dim=-1).cpu()

    def _encode_images(self, images: list):
        import torch

        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            features = self.model.get_image_features(**inputs)
        self.forward_passes["image"] += 1
        return torch.nn.functional.normalize(_tensor(features).float(), dim=-1).cpu()

    def _read_image(self, image_path: str):
        """The RGB image, or None (warned once per path) when it cannot be read: S = 0 as in the official code."""
        from PIL import Image

        try:
            with Image.open(image_path) as img:
                return img.convert("RGB")
        except OSError as exc:  # a missing/corrupt ROI image must not kill an RL run
            if image_path not in self._warned:
                self._warned.add(image_path)
                warnings.warn(f"egoforge grounded reward: cannot read interaction image {image_path}: {exc}",
                              stacklevel=4)
            return None

    @staticmethod
    def _embed(cache: _LRU, keys: list, encode, chunk_size: int) -> dict:
        """Embeddings of ``keys`` (distinct), from the cache or encoded ``chunk_size`` at a time; lock held."""
        found = {k: cache[k] for k in keys if k in cache}
        missing = [k for k in keys if k not in found]
        for start in range(0, len(missing), chunk_size):
            chunk = missing[start:start + chunk_size]
            for key, row in zip(chunk, encode(chunk)):
                found[key] = row
                cache.put(key, row)
        return found

    def text_embeddings(self, texts: Sequence[str]):
        import torch

        with self._lock:
            found = self._embed(self._texts, list(dict.fromkeys(texts)), self._encode_texts, self.text_batch_size)
        return torch.stack([found[t] for t in texts])

    def image_embedding(self, image_path: str):
        """The embedding of one interaction image (raises OSError when it cannot be read)."""
        from PIL import Image

        with Image.open(image_path) as img:
            image = img.convert("RGB")
        with self._lock:
            return self._embed(self._images, [image_path], lambda _: self._encode_images([image]), 1)[image_path]

    def max_similarities(self, requests: Sequence[ClipRequest]) -> list[float]:
        """S for each (names, image) request. The distinct uncached images are encoded ``batch_size`` per forward
        pass and the distinct uncached names ``text_batch_size`` per pass, so ``batch_size`` requests cost at most
        one image pass (plus one text pass per ``text_batch_size`` new names). An unreadable image scores 0."""
        scored = [i for i, (texts, image) in enumerate(requests) if texts and image]
        out = [0.0] * len(requests)
        if not scored:
            return out
        with self._lock:
            wanted = list(dict.fromkeys(requests[i][1] for i in scored if requests[i][1] not in self._images))
            readable = {path: img for path in wanted if (img := self._read_image(path)) is not None}
            paths = [p for p in dict.fromkeys(requests[i][1] for i in scored) if p in self._images or p in readable]
            images = self._embed(self._images, paths, lambda chunk: self._encode_images([readable[p] for p in chunk]),
                                 self.batch_size)
            names = list(dict.fromkeys(t for i in scored for t in requests[i][0]))
            texts = self._embed(self._texts, names, self._encode_texts, self.text_batch_size)
        import torch

        for i in scored:
            names_i, image = requests[i]
            if image in images:
                out[i] = float((torch.stack([texts[t] for t in names_i]) @ images[image]).max())
        return out

    def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        return self.max_similarities([(list(texts), image_path)])[0]


def _tensor(features):
    """transformers 5 may return a model output instead of a tensor from get_*_features."""
    return features if hasattr(features, "float") else features.pooler_output


class ClipBatcher:
    """Gathers the CLIP requests of concurrently scored rollouts into micro-batches of up to ``micro_batch``.

    verl's reward loop scores every rollout in its own asyncio task (``RewardLoopWorker.compute_score_batch``
    starts one task per response; the streaming path calls ``compute_score`` per finished rollout), so a backend
    called from each task would run one forward pass per rollout. Here each task awaits ``max_similarity``; the
    first request of a batch starts a drain task that waits until no new request came for ``wait_s`` (or the
    batch is full, or ``max_wait_s`` passed), then scores the batch with one ``max_similarities`` call in a
    single worker thread (one forward pass at a time on the device; requests arriving meanwhile form the next
    batch). N requests that arrive together therefore cost ceil(N / micro_batch) batches. ``batches`` and
    ``requests`` count them.
    """

    def __init__(self, backend: SimilarityBackend, micro_batch: int = 64, wait_s: float = 0.02,
                 max_wait_s: float | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if int(micro_batch) < 1:
            raise ValueError(f"CLIP micro_batch must be >= 1, got {micro_batch!r}")
        self.backend = backend
        self.micro_batch = int(micro_batch)
        self.wait_s = float(wait_s)
        # A steady trickle of requests must not hold the first one forever: at most 25 settle windows by default.
        self.max_wait_s = 25 * self.wait_s if max_wait_s is None else float(max_wait_s)
        self.batches = 0
        self.requests = 0
        self._pending: list[tuple[ClipRequest, asyncio.Future]] = []
        self._draining: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egoforge-clip")

    async def max_similarity(self, texts: Sequence[str], image_path: str) -> float:
        """S of one rollout, computed in a micro-batch with the requests of its concurrent siblings."""
        if not texts or not image_path:
            return 0.0
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(((list(texts), image_path), future))
        if self._draining is None or self._draining.done():
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            waited = 0.0
            while len(self._pending) < self.micro_batch and waited < self.max_wait_s:
                before = len(self._pending)
                await asyncio.sleep(self.wait_s)
                waited += self.wait_s
                if len(self._pending) == before:  # nothing new arrived: the concurrent rollouts are all in
                    break
            batch, self._pending = self._pending[:self.micro_batch], self._pending[self.micro_batch:]
            self.batches += 1
            self.requests += len(batch)
            try:
                scores = await loop.run_in_executor(self._executor, max_similarities, self.backend,
                                                    [request for request, _ in batch])
            except Exception as exc:  # every waiting rollout sees the failure, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), score in zip(batch, scores):
                if not future.done():
                    future.set_result(score)


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
