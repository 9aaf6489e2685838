"""Stage-A feature extraction: the tuned VLLM's description, image features and generated-text hidden states.

For every LDM index row the VLLM is asked :data:`~egoforge.lego.actions.QUERY` about the source frame (sampling
with temperature 0.2 and seed 42 as the official ``run_llava_in_loop.py``; the seed is derived per sample, so an
interrupted run resumes to the same result). Three things are kept per sample:

* ``description``: the generated text (the paper's ``llava_forecast_finetune``);
* ``image``: the visual tokens after the projector (``model.get_image_features(...).pooler_output``),
  ``(image tokens, hidden)``;
* ``text``: the last layer's hidden state at the last position of every generation step, i.e. the state that
  produced each generated token, ``(generated tokens, hidden)`` (what the official code saves).

They go to safetensors shards in a folder: ``shard-c<chunk>-<n>.safetensors`` holds tensors ``<key>::image`` and
``<key>::text``; ``index-c<chunk>.json`` maps each key to its shard and description and is rewritten atomically
after each shard. Several chunks (``--num-chunks/--chunk``, one per GPU) can write into one folder; readers merge
every index. The official release's per-sample ``.npy`` files are read by :class:`NpyFeatureReader`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from egoforge.data.atomic import atomic_write_json
from egoforge.data.paths import resolve_under
from egoforge.lego.actions import QUERY, query_for

_INDEX = re.compile(r"^index-c(\d+)\.json$")


@dataclass
class ExtractionSettings:
    query: str = QUERY
    max_new_tokens: int = 1024
    do_sample: bool = True
    temperature: float = 0.2
    seed: int = 42
    min_pixels: int | None = None  # per-frame pixel budget; None keeps the processor's own
    max_pixels: int | None = None
    # LLaMA-Factory template stage A was trained with (the recipe's `template`): prompts are then built exactly as
    # its training inputs were (system prompt, turn format, image tokens). None: the model's own chat template.
    template: str | None = None
    batch_size: int = 1
    shard_size: int = 256  # samples per shard
    save_dtype: str = "float16"  # the official features are float16 numpy arrays
    device: str | None = None
    dtype: str = "auto"  # model weights: auto = bfloat16 on GPU, float32 on CPU


def stage_a_template(recipe: str | os.PathLike) -> str | None:
    """The LLaMA-Factory ``template`` a stage-A recipe trains with (None when it names none)."""
    import yaml

    data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}
    template = data.get("template") if isinstance(data, dict) else None
    return str(template) if template else None


def stage_a_pixel_budget(recipe: str | os.PathLike | None = None) -> tuple[int, int]:
    """``(image_min_pixels, image_max_pixels)`` LLaMA-Factory trains a stage-A recipe with: the recipe's values, or
    LLaMA-Factory's own defaults for the keys it leaves out (no recipe: the defaults).

    LLaMA-Factory resizes every training image into this budget before the processor sees it; features must be
    extracted from frames resized the same way, or a Qwen-VL sees a different number of patches (visual tokens)
    than it was tuned on. LLaVA's processor resizes to its fixed input size afterwards either way.
    """
    import dataclasses

    import yaml
    from llamafactory.hparams.model_args import ModelArguments

    budget = {f.name: f.default for f in dataclasses.fields(ModelArguments)
              if f.name in ("image_min_pixels", "image_max_pixels")}
    if recipe is not None:
        path = Path(recipe)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: stage-A recipe not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a LLaMA-Factory recipe (expected a mapping of keys)")
        for key in budget:
            if data.get(key) is not None:
                try:
                    budget[key] = int(data[key])
                except (TypeError, ValueError):
                    raise ValueError(f"{path}: {key} = {data[key]!r} is not a whole number of pixels") from None
    return budget["image_min_pixels"], budget["image_max_pixels"]


def sample_seed(seed: int, key: str) -> int:
    """A per-sample seed: the same sample gets the same draw however the run is chunked or resumed."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)


# --- the store -------------------------------------------------------------------------------------------------


class FeatureWriter:
    """Appends samples to safetensors shards of one chunk; resumes from that chunk's index."""

    def __init__(self, out_dir: str | os.PathLike, chunk: int = 0, shard_size: int = 256, meta: dict | None = None,
                 save_dtype: str = "float16") -> None:
        import torch

        self.out_dir = Path(out_dir)
        self.chunk = chunk
        self.shard_size = shard_size
        self.dtype = getattr(torch, save_dtype)
        self.index_path = self.out_dir / f"index-c{chunk:03d}.json"
        if self.index_path.exists():
            self.index = json.loads(self.index_path.read_text(encoding="utf-8"))
        else:
            self.index = {"meta": meta or {}, "shards": [], "samples": {}}
        self._tensors: dict = {}
        self._pending: dict[str, dict] = {}

    @property
    def done(self) -> set[str]:
        return set(self.index["samples"])

    def add(self, key: str, image, text, description: str) -> None:
        self._tensors[f"{key}::image"] = image.detach().to("cpu", self.dtype).contiguous()
        self._tensors[f"{key}::text"] = text.detach().to("cpu", self.dtype).contiguous()
        self._pending[key] = {"description": description, "image_tokens": int(image.shape[0]),
                              "text_tokens": int(text.shape[0])}
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        from safetensors.torch import save

        from egoforge.data.atomic import atomic_write_bytes

        name = f"shard-c{self.chunk:03d}-{len(self.index['shards']):05d}.safetensors"
        atomic_write_bytes(self.out_dir / name, save(self._tensors, metadata={"format": "pt"}))
        self.index["shards"].append(name)
        for key, info in self._pending.items():
            self.index["samples"][key] = {"shard": name, **info}
        atomic_write_json(self.index_path, self.index)  # the shard exists before the index names it
        self._tensors, self._pending = {}, {}


class FeatureReader:
    """Reads every chunk index of a feature folder; tensors are opened lazily, one shard handle at a time."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.samples: dict[str, dict] = {}
        self.meta: dict = {}
        indexes = sorted(p for p in self.folder.glob("index-c*.json") if _INDEX.match(p.name))
        if not indexes:
            raise FileNotFoundError(f"{self.folder}: no index-c*.json (run `egoforge lego features` first)")
        for path in indexes:
            index = json.loads(path.read_text(encoding="utf-8"))
            self.meta = self.meta or index.get("meta", {})
            self.samples.update(index["samples"])
        self._handles: dict[str, object] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.samples

    def description(self, key: str) -> str:
        return self.samples[key]["description"]

    def _handle(self, shard: str):
        if shard not in self._handles:
            from safetensors import safe_open

            if len(self._handles) > 8:  # a DataLoader worker touches shards roughly in order
                self._handles.clear()
            self._handles[shard] = safe_open(str(resolve_under(self.folder, shard)), framework="pt")
        return self._handles[shard]

    def get(self, key: str):
        """(image features, text features) as float32 tensors."""
        if key not in self.samples:
            raise KeyError(f"{self.folder}: no VLLM features for {key!r}")
        handle = self._handle(self.samples[key]["shard"])
        return handle.get_tensor(f"{key}::image").float(), handle.get_tensor(f"{key}::text").float()

    def __getstate__(self):  # picklable for DataLoader workers: handles are reopened there
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state


class NpyFeatureReader:
    """The official release's layout: ``<image_dir>/<image_0 as .npy>`` and ``<text_dir>/<image_0 as .npy>``.

    Text features stored 3-D are reduced to their last layer, as the official dataset does. ``np.load`` runs with
    ``allow_pickle=False``.
    """

    def __init__(self, image_dir: str | os.PathLike, text_dir: str | os.PathLike) -> None:
        self.image_dir, self.text_dir = Path(image_dir), Path(text_dir)

    @staticmethod
    def _name(key: str) -> str:
        return str(Path(key).with_suffix(".npy"))

    def __contains__(self, key: str) -> bool:
        return (self.image_dir / self._name(key)).is_file() and (self.text_dir / self._name(key)).is_file()

    def description(self, key: str) -> str:
        raise KeyError("the official feature release carries no descriptions: use the LEGO json's prompt")

    def get(self, key: str):
        import numpy as np
        import torch

        image = np.load(resolve_under(self.image_dir, self._name(key)), allow_pickle=False)
        text = np.load(resolve_under(self.text_dir, self._name(key)), allow_pickle=False)
        if text.ndim == 3:
            text = text[:, -1, :]
        if image.ndim == 3:
            image = image.reshape(-1, image.shape[-1])
        return torch.from_numpy(image.astype("float32")), torch.from_numpy(text.astype("float32"))


def image_token_counts(features, keys: Sequence[str], npy_sample: int = 32) -> dict[int, int]:
    """{visual tokens per frame: samples} of ``keys``: every sample of a shard folder (from its index), the first
    ``npy_sample`` of the official .npy release (only their headers are read; later rows are checked as they load)."""
    import numpy as np

    counts: dict[int, int] = {}
    if isinstance(features, FeatureReader):
        for key in keys:
            n = int(features.samples[key]["image_tokens"])
            counts[n] = counts.get(n, 0) + 1
        return counts
    if isinstance(features, NpyFeatureReader):
        for key in keys[:npy_sample]:
            shape = np.load(resolve_under(features.image_dir, features._name(key)), mmap_mode="r",
                            allow_pickle=False).shape
            n = int(np.prod(shape[:-1]))
            counts[n] = counts.get(n, 0) + 1
        return counts
    for key in keys[:npy_sample]:  # any other reader: load the tensors
        n = int(features.get(key)[0].shape[0])
        counts[n] = counts.get(n, 0) + 1
    return counts


# --- extraction ------------------------------------------------------------------------------------------------


def chunk_rows(rows: Sequence[dict], num_chunks: int, chunk: int) -> list[dict]:
    """Contiguous chunk ``chunk`` (0-based) of ``num_chunks``, like the official ``get_chunk``."""
    if not 0 <= chunk < num_chunks:
        raise ValueError(f"chunk {chunk} is not in 0..{num_chunks - 1}")
    size = -(-len(rows) // num_chunks)
    return list(rows[chunk * size:(chunk + 1) * size])


def _image_features(model, inputs) -> list:
    keys = ("pixel_values", "image_grid_thw", "image_sizes")
    out = model.get_image_features(**{k: inputs[k] for k in keys if k in inputs})
    feats = getattr(out, "pooler_output", out)
    if hasattr(feats, "dim"):  # one tensor (images, tokens, hidden)
        feats = list(feats)
    return [f.reshape(-1, f.shape[-1]) for f in feats]


class TrainingFormatPrompts:
    """Model inputs built the way LLaMA-Factory built the stage-A training inputs: its template (default system
    prompt, turn format) and its multimodal plugin (image placeholder expansion, image preprocessing within the
    pixel budget), so the tuned model is asked in exactly the format it was tuned on.

    The ShareGPT rows of ``egoforge lego convert`` hold ``"<image>" + query`` as the user turn; so does the prompt.
    """

    def __init__(self, template: str, processor, min_pixels: int, max_pixels: int) -> None:
        from llamafactory.data.template import TEMPLATES, get_template_and_fix_tokenizer
        from llamafactory.hparams import DataArguments

        if template not in TEMPLATES:
            raise ValueError(f"template {template!r} is not a LLaMA-Factory template")
        self.tokenizer = processor.tokenizer
        self.template = get_template_and_fix_tokenizer(self.tokenizer, DataArguments(template=template))
        # the attributes LLaMA-Factory's patch_processor sets from the training arguments
        for key, value in (("image_min_pixels", min_pixels), ("image_max_pixels", max_pixels),
                           ("image_do_pan_and_scan", False), ("crop_to_patches", False)):
            setattr(processor, key, value)
        self.processor = processor

    def prompt_ids(self, query: str, image) -> list[int]:
        from llamafactory.extras.constants import IMAGE_PLACEHOLDER

        plugin = self.template.mm_plugin
        messages = [{"role": "user", "content": IMAGE_PLACEHOLDER + query}, {"role": "assistant", "content": ""}]
        messages = plugin.process_messages(messages, [image], [], [], self.processor)
        ids, _ = self.template.encode_oneturn(self.tokenizer, messages)
        ids, _ = plugin.process_token_ids(ids, None, [image], [], [], self.tokenizer, self.processor)
        return ids

    def __call__(self, queries: list[str], images: list):
        import torch
        from transformers import BatchFeature

        rows = [self.prompt_ids(q, image) for q, image in zip(queries, images)]
        width, pad = max(map(len, rows)), self.tokenizer.pad_token_id
        pad = pad if pad is not None else self.tokenizer.eos_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])  # left padding for generation
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        n = len(rows)
        extra = self.template.mm_plugin.get_mm_inputs(list(images), [], [], [1] * n, [0] * n, [0] * n, rows,
                                                      self.processor)
        return BatchFeature({"input_ids": input_ids, "attention_mask": attention, **extra})


def _generated_lengths(sequences, eos_ids: set[int]) -> list[int]:
    lengths = []
    for row in sequences.tolist():
        n = next((i + 1 for i, tok in enumerate(row) if tok in eos_ids), len(row))
        lengths.append(n)
    return lengths


class VLLMFeatureExtractor:
    """A loaded VLLM (checkpoint or LoRA adapter folder) that answers the query and returns the three outputs."""

    def __init__(self, model_path: str | os.PathLike, settings: ExtractionSettings) -> None:
        from egoforge.vlm.loading import load_model, load_processor, pick_device, torch_dtype

        self.settings = settings
        self.device = pick_device(settings.device)
        self.processor = load_processor(model_path)
        self.model = load_model(str(model_path), torch_dtype(settings.dtype, self.device)).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.model_path = str(model_path)
        self.training_format = None
        if settings.template:
            self.training_format = TrainingFormatPrompts(settings.template, self.processor,
                                                         settings.min_pixels or 1, settings.max_pixels or 10**12)

    def _load_images(self, paths: list[Path]):
        from PIL import Image

        from egoforge.data.frames import load_frames

        s = self.settings
        if s.min_pixels or s.max_pixels:
            return load_frames(paths, s.min_pixels or 1, s.max_pixels or 10**12)
        images = []
        for path in paths:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        return images

    def __call__(self, queries: list[str], image_paths: list[Path], seed: int) -> list[tuple]:
        """[(description, image features (n, d), text features (m, d))] for a batch."""
        import torch

        s = self.settings
        if self.training_format is not None:
            inputs = self.training_format(queries, self._load_images(image_paths)).to(self.device)
        else:
            messages = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
                        for q in queries]
            texts = [self.processor.apply_chat_template(m, add_generation_prompt=True) for m in messages]
            inputs = self.processor(text=texts, images=self._load_images(image_paths), padding=True,
                                    return_tensors="pt").to(self.device)
        torch.manual_seed(seed)
        with torch.inference_mode():
            # top_p/top_k None: plain temperature sampling as the official call, whatever the checkpoint's
            # generation_config suggests.
            out = self.model.generate(**inputs, max_new_tokens=s.max_new_tokens, do_sample=s.do_sample,
                                      temperature=s.temperature if s.do_sample else None, top_p=None, top_k=None,
                                      output_hidden_states=True, return_dict_in_generate=True)
            image_feats = _image_features(self.model, inputs)
        generated = out.sequences[:, inputs["input_ids"].shape[1]:]
        # hidden_states[step][layer]: (batch, positions, hidden); the last position made that step's token.
        text_feats = torch.stack([step[-1][:, -1, :] for step in out.hidden_states], dim=1)
        lengths = _generated_lengths(generated, self.eos_ids)
        results = []
        for i, n in enumerate(lengths):
            description = self.processor.tokenizer.decode(generated[i, :n], skip_special_tokens=True).strip()
            results.append((description, image_feats[i], text_feats[i, :n]))
        return results


def extract_features(
    model_path: str | os.PathLike,
    rows: Sequence[dict],
    media_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: ExtractionSettings | None = None,
    chunk: int = 0,
    num_chunks: int = 1,
    progress: Callable[[Iterable], Iterable] | None = None,
    extractor: VLLMFeatureExtractor | None = None,
) -> dict:
    """Extract features for the LDM index ``rows`` (chunk ``chunk`` of ``num_chunks``) into ``out_dir``.

    Samples already in the chunk's index are skipped, so a re-run resumes. ``extractor`` reuses a loaded model
    (several indexes in one process). Returns counts.
    """
    settings = settings or ExtractionSettings()
    mine = chunk_rows(rows, num_chunks, chunk)
    meta = {"model": str(model_path), "settings": asdict(settings), "num_chunks": num_chunks}
    writer = FeatureWriter(out_dir, chunk, settings.shard_size, meta, settings.save_dtype)
    done = writer.done
    todo = [r for r in mine if r["feature_key"] not in done]
    stats = {"chunk_rows": len(mine), "skipped": len(mine) - len(todo), "extracted": 0}
    if not todo:
        return stats
    queries = {}
    for row in todo:  # every narration checked before the model is loaded
        try:
            queries[row["feature_key"]] = query_for(row["action"], row.get("dataset", "ego4d"), settings.query)
        except ValueError as exc:
            raise ValueError(f"index row {row.get('id', row['feature_key'])!r}: {exc}") from None
    extractor = extractor or VLLMFeatureExtractor(model_path, settings)
    batches = [todo[i:i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
    for batch in (progress or (lambda x: x))(batches):
        paths = [resolve_under(media_root, r["source"]) for r in batch]
        results = extractor([queries[r["feature_key"]] for r in batch], paths,
                            sample_seed(settings.seed, batch[0]["feature_key"]))
        for row, (description, image, text) in zip(batch, results):
            writer.add(row["feature_key"], image, text, description)
        stats["extracted"] += len(batch)
    writer.flush()
    return stats
