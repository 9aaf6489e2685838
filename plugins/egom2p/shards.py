"""Pre-tokenised clips as WebDataset shards, and the weighted multi-dataset stream the trainer reads.

Layout (the official EgoM2P one; docs/egom2p.md "Pipeline")::

    ROOT/<modality>/<dataset>/shard-000000.tar    members "<clip key>.npy": int tokens shaped like the token grid
    ROOT/<modality>/<dataset>/info.json           tokenizer, vocab_size, token_grid, samples
    ROOT/<modality>/<dataset>/index.json          {shard name: [clip keys]}: which clip sits in which tar

A sample is the join of one clip key across the modality folders; a modality folder or a key that is absent makes
that modality *unavailable* for the sample (zero masking budget). The join reads one shard name of every modality
at a time, so every modality must put a clip in the same shard name: ``tokenize`` places a clip by its position in
the dataset's full clip list (not among the clips that have the modality), so a clip without gaze leaves a gap
instead of shifting every later gaze tar. The reader checks the indexes against each other and against the tars
and refuses, naming clip and shards, any key that sits in different shard names (which would otherwise split one
clip into several partial samples). Shards are written through a temporary file and renamed, so a reader never
sees a half-written tar. The stream is deterministic in (seed, rank, world size, worker), which is what makes
resuming a run exact: the trainer replays it and drops the batches it already used.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from egoforge.data.atomic import atomic_write_json
from egoforge.egom2p.masking import MaskingConfig, mask_sample
from egoforge.egom2p.modalities import Modality

SHARD_PATTERN = "shard-{:06d}.tar"
INDEX_FILE = "index.json"


class ShardFormatError(ValueError):
    """A shard or its info.json is malformed or disagrees with the modality table; names file and field."""


# ---- writing ----

class TokenShardWriter:
    """Write (key, tokens) pairs of one modality and dataset into numbered tars of ``samples_per_shard``."""

    def __init__(self, root: str | os.PathLike, modality: str, dataset: str, tokenizer_info: dict,
                 samples_per_shard: int = 1000, folder: str | os.PathLike | None = None):
        import webdataset as wds

        self._wds = wds
        self.folder = Path(folder) if folder is not None else Path(root) / modality / dataset
        self.folder.mkdir(parents=True, exist_ok=True)
        self.modality, self.dataset, self.info = modality, dataset, dict(tokenizer_info)
        self.samples_per_shard = samples_per_shard
        self.shard, self.in_shard, self.total = 0, 0, 0
        self.index: dict[str, list[str]] = {}  # shard name -> keys, written as index.json
        self._keys: set[str] = set()
        self._writer = None
        self._tmp: Path | None = None

    def _open(self) -> None:
        final = self.folder / SHARD_PATTERN.format(self.shard)
        self._tmp = final.with_name(f".{final.name}.tmp")
        self._writer = self._wds.TarWriter(str(self._tmp))

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            os.replace(self._tmp, self.folder / SHARD_PATTERN.format(self.shard))
            self._writer = None
            self.shard += 1
            self.in_shard = 0

    def write(self, key: str, tokens: np.ndarray, shard: int | None = None) -> None:
        """Append one clip. ``shard``: the tar number to put it in (non-decreasing; numbers may be skipped), so
        that every modality of a dataset places a clip in the same tar; None fills tars of ``samples_per_shard``."""
        if "." in key or "/" in key:
            raise ShardFormatError(f"clip key {key!r}: WebDataset keys may not contain '.' or '/'")
        if key in self._keys:
            raise ShardFormatError(f"{self.folder}: clip key {key!r} written twice")
        if shard is not None:
            current = self.shard  # the open tar, or the next one to open
            if shard < current:
                raise ShardFormatError(f"{self.folder}: clip {key!r} asks for shard {shard} after shard {current} "
                                       "was started (shard numbers must not decrease)")
            if shard > current:
                self._close()
                self.shard = shard
        if self._writer is None:
            self._open()
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(tokens, dtype=np.int32), allow_pickle=False)
        self._writer.write({"__key__": key, "npy": buffer.getvalue()})
        self._keys.add(key)
        self.index.setdefault(SHARD_PATTERN.format(self.shard), []).append(key)
        self.in_shard += 1
        self.total += 1
        if shard is None and self.in_shard >= self.samples_per_shard:
            self._close()

    def close(self) -> Path:
        self._close()
        info = {"modality": self.modality, "dataset": self.dataset, "samples": self.total, **self.info}
        atomic_write_json(self.folder / INDEX_FILE, self.index, indent=None)
        atomic_write_json(self.folder / "info.json", info)
        return self.folder

    def __enter__(self) -> TokenShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:  # leave no temporary tar behind on failure
            self._writer.close()
            self._tmp.unlink(missing_ok=True)


# ---- reading ----

def read_shard(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All (key -> tokens) of one tar; ``.npy`` (or the first array of ``.npz``) members, never pickles."""
    out: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = os.path.basename(member.name)
                key, _, ext = name.partition(".")
                if ext not in ("npy", "npz"):
                    continue
                data = tar.extractfile(member).read()
                try:
                    loaded = np.load(io.BytesIO(data), allow_pickle=False)
                    out[key] = loaded[loaded.files[0]] if ext == "npz" else loaded
                except ValueError as exc:
                    raise ShardFormatError(f"{path}: member {member.name!r}: not a numeric array ({exc})") from None
    except tarfile.TarError as exc:
        raise ShardFormatError(f"{path}: not a readable tar ({exc})") from None
    return out


def shard_keys(path: str | os.PathLike) -> list[str]:
    """The clip keys of one tar's token members, from the tar headers only (the arrays are not read)."""
    keys = []
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                name = os.path.basename(member.name)
                key, _, ext = name.partition(".")
                if member.isfile() and ext in ("npy", "npz"):
                    keys.append(key)
    except tarfile.TarError as exc:
        raise ShardFormatError(f"{path}: not a readable tar ({exc})") from None
    return keys


def read_index(folder: Path) -> dict[str, list[str]]:
    """{shard name: keys} of one modality folder, checked against the tars on disk and info.json's count.

    Folders written before the index existed (or by other tools) are indexed from the tar headers."""
    shards = sorted(p.name for p in folder.glob("shard-*.tar"))
    path = folder / INDEX_FILE
    if path.is_file():
        try:
            index = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ShardFormatError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(index, dict) or not all(isinstance(v, list) for v in index.values()):
            raise ShardFormatError(f"{path}: expected {{shard name: [clip keys]}}")
        missing, extra = sorted(set(index) - set(shards)), sorted(set(shards) - set(index))
        if missing or extra:
            raise ShardFormatError(f"{path}: lists shards {missing} that are not in the folder and the folder has "
                                   f"shards {extra} it does not list; the folder was changed after writing, "
                                   "re-run `egoforge egom2p tokenize` for it")
    else:
        index = {name: shard_keys(folder / name) for name in shards}
    seen: dict[str, str] = {}
    for name, keys in index.items():
        for key in keys:
            if key in seen:
                raise ShardFormatError(f"{folder}: clip key {key!r} is in both {seen[key]} and {name}")
            seen[key] = name
    info = folder / "info.json"
    if info.is_file():
        samples = json.loads(info.read_text()).get("samples")
        if samples is not None and samples != len(seen):
            raise ShardFormatError(f"{info}: samples = {samples}, but the shards hold {len(seen)} clips")
    return index


def read_info(folder: Path) -> dict:
    path = folder / "info.json"
    if not path.is_file():
        raise ShardFormatError(f"{path}: missing (written by `egoforge egom2p tokenize`)")
    return json.loads(path.read_text())


@dataclass
class DatasetSpec:
    """One training dataset of the mixture (in/out modalities and sampling weight, as the official data config)."""

    weight: float = 1.0
    inputs: list[str] | None = None  # None: every modality that has shards
    targets: list[str] | None = None
    path: str | None = None  # default: the dataset's name under the data root


@dataclass
class DataConfig:
    root: str = "data/egom2p/tokens"
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    shuffle_buffer: int = 1000
    num_workers: int = 2


class TokenDataset:
    """The shards of one dataset across modalities, checked against the modality table."""

    def __init__(self, root: str | os.PathLike, name: str, spec: DatasetSpec, table: dict[str, Modality]):
        self.name, self.spec, self.table = name, spec, table
        folder_name = spec.path or name
        self.folders: dict[str, Path] = {}
        for modality in table:
            folder = Path(root) / modality / folder_name
            if folder.is_dir() and any(folder.glob("shard-*.tar")):
                self._check(folder, table[modality])
                self.folders[modality] = folder
        if not self.folders:
            raise ShardFormatError(f"dataset {name!r}: no shards under {Path(root)}/<modality>/{folder_name}/")
        for role, listed in (("inputs", spec.inputs), ("targets", spec.targets)):
            unknown = sorted(set(listed or []) - set(table))
            if unknown:
                raise ShardFormatError(f"data.datasets.{name}.{role}: unknown modalities {unknown}")
        self.input_ok = np.array([m in self.folders and (spec.inputs is None or m in spec.inputs) for m in table])
        self.target_ok = np.array([m in self.folders and (spec.targets is None or m in spec.targets) for m in table])
        self.index = {m: read_index(f) for m, f in self.folders.items()}
        self._check_join()
        self.shards = sorted({name for index in self.index.values() for name in index})

    def _check_join(self) -> None:
        """Every clip key must sit in the same shard name in every modality that has it (the join reads one shard
        name at a time); anything else would split a clip into partial samples, so it is refused by name."""
        home: dict[str, tuple[str, str]] = {}
        conflicts = []
        for modality, index in self.index.items():
            for name, keys in index.items():
                for key in keys:
                    first = home.setdefault(key, (modality, name))
                    if first[1] != name:
                        conflicts.append((key, first, (modality, name)))
        if conflicts:
            key, (m1, s1), (m2, s2) = conflicts[0]
            raise ShardFormatError(
                f"dataset {self.name!r}: {len(conflicts)} clip key(s) sit in different shards across modalities, "
                f"e.g. {key!r} in {self.folders[m1] / s1} but {self.folders[m2] / s2}; the modalities were "
                "tokenized from different clip lists or placed by position among the clips having each modality "
                "(an older egoforge): re-run `egoforge egom2p tokenize` for every modality of this dataset")

    @staticmethod
    def _check(folder: Path, modality: Modality) -> None:
        info = read_info(folder)
        grid, vocab = tuple(info.get("token_grid") or ()), info.get("vocab_size")
        if grid != tuple(modality.token_grid) or vocab != modality.vocab_size:
            raise ShardFormatError(
                f"{folder}/info.json: tokens are {grid} from a vocabulary of {vocab}, but the recipe's modality table "
                f"says {tuple(modality.token_grid)} / {modality.vocab_size} for {modality.name}; set "
                f"modalities.{modality.name}.token_grid / vocab_size to match the tokenizer you used")

    def read(self, shard: str) -> list[tuple[str, dict[str, np.ndarray]]]:
        """Samples of one shard name: key -> {modality: tokens} for the modalities that have the key."""
        per_modality = {m: read_shard(f / shard) for m, f in self.folders.items() if shard in self.index[m]}
        for m, tokens in per_modality.items():
            listed = self.index[m][shard]
            if set(tokens) != set(listed) or len(tokens) != len(listed):
                raise ShardFormatError(
                    f"{self.folders[m] / shard}: holds {len(tokens)} clips but {INDEX_FILE} lists {len(listed)} "
                    f"(first differences: {sorted(set(tokens) ^ set(listed))[:3]}); the tar was replaced after "
                    "writing, re-run `egoforge egom2p tokenize` for this modality")
        keys = sorted({k for tokens in per_modality.values() for k in tokens})
        samples = []
        for key in keys:
            sample = {}
            for m, tokens in per_modality.items():
                if key in tokens:
                    array = tokens[key].reshape(-1)
                    if array.size != self.table[m].num_tokens:
                        raise ShardFormatError(f"{self.folders[m] / shard}: {key}.npy has {array.size} tokens, "
                                               f"expected {self.table[m].num_tokens}")
                    sample[m] = array
            samples.append((key, sample))
        return samples


def _stream(dataset: TokenDataset, rng: np.random.Generator, part: int, parts: int,
            shuffle_buffer: int) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Endless shuffled samples of one dataset for one (rank, worker) part: shards split by part when there are
    enough, otherwise samples split by position, so parts never see the same sample in an epoch."""
    by_shard = len(dataset.shards) >= parts
    shards = dataset.shards[part::parts] if by_shard else dataset.shards
    buffer: list = []
    while True:
        count = 0
        for shard in rng.permutation(shards):
            items = dataset.read(str(shard))
            if not by_shard:
                items = items[part::parts]
            for item in items:
                count += 1
                buffer.append(item)
                if len(buffer) >= max(1, shuffle_buffer):
                    yield buffer.pop(int(rng.integers(len(buffer))))
        if count == 0:
            raise ShardFormatError(f"dataset {dataset.name!r}: loader part {part} of {parts} has no samples "
                                   "(fewer clips than ranks x workers?)")


def assemble(samples: list[tuple[str, str, dict[str, np.ndarray]]], table: dict[str, Modality],
             masks: list[list[tuple[np.ndarray, np.ndarray]]]) -> dict:
    """Stack a batch: per modality tokens (B, N) int64, input_mask / target_mask (B, N) bool (True = hidden)."""
    batch: dict = {"keys": [k for _, k, _ in samples], "datasets": [d for d, _, _ in samples], "modalities": {}}
    for j, (name, modality) in enumerate(table.items()):
        tokens = np.zeros((len(samples), modality.num_tokens), np.int64)
        for i, (_, _, sample) in enumerate(samples):
            if name in sample:
                tokens[i] = sample[name]
        batch["modalities"][name] = {
            "tokens": torch.from_numpy(tokens),
            "input_mask": torch.from_numpy(np.stack([m[j][0] for m in masks])),
            "target_mask": torch.from_numpy(np.stack([m[j][1] for m in masks])),
        }
    return batch


class MixtureBatches(torch.utils.data.IterableDataset):
    """Endless masked batches from a weighted mixture of datasets, deterministic per (seed, rank, worker).

    ``skip_batches`` drops the first batches this rank already trained on (exact resume). With W loader workers,
    global batch g comes from stream g mod W; a DataLoader always starts at worker 0, so after skipping s batches
    worker w runs stream (w + s) mod W, replaying and dropping the batches that stream already produced.
    """

    def __init__(self, data: DataConfig, table: dict[str, Modality], masking: MaskingConfig, batch_size: int,
                 seed: int, rank: int = 0, world_size: int = 1, skip_batches: int = 0):
        super().__init__()
        if not data.datasets:
            raise ShardFormatError("data.datasets: list at least one dataset")
        self.datasets = [TokenDataset(data.root, name, spec, table) for name, spec in data.datasets.items()]
        weights = np.array([spec.weight for spec in data.datasets.values()], dtype=np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ShardFormatError(f"data.datasets weights must be non-negative and not all zero, got {weights}")
        self.weights = weights / weights.sum()
        self.data, self.table, self.masking = data, table, masking
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.skip_batches = skip_batches

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        stream_id = (worker + self.skip_batches) % workers
        part, parts = self.rank * workers + stream_id, self.world_size * workers
        rng = np.random.default_rng([self.seed, part, parts])
        streams = [_stream(d, np.random.default_rng([self.seed, part, parts, i]), part, parts,
                           self.data.shuffle_buffer) for i, d in enumerate(self.datasets)]
        sizes = [m.num_tokens for m in self.table.values()]
        skip = max(0, -(-(self.skip_batches - stream_id) // workers))
        produced = 0
        while True:
            samples, masks = [], []
            for _ in range(self.batch_size):
                d = int(rng.choice(len(self.datasets), p=self.weights))
                key, sample = next(streams[d])
                present = np.array([m in sample for m in self.table])
                ds = self.datasets[d]
                masks.append(mask_sample(rng, self.masking, sizes, ds.input_ok & present, ds.target_ok & present))
                samples.append((ds.name, key, sample))
            produced += 1
            if produced > skip:
                yield assemble(samples, self.table, masks)


def write_dataset_tokens(root: str | os.PathLike, modality: str, dataset: str,
                         items: Iterable[tuple[str, np.ndarray]], tokenizer_info: dict,
                         samples_per_shard: int = 1000) -> Path:
    """Convenience: write an iterable of (key, tokens) as one modality's shards of a dataset."""
    with TokenShardWriter(root, modality, dataset, tokenizer_info, samples_per_shard) as writer:
        for key, tokens in items:
            writer.write(key, tokens)
    return writer.folder
