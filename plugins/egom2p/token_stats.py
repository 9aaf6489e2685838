"""What the trainer will actually see in a token root: per dataset, how many samples its reader yields for each
combination of modalities, read through the trainer's own join (:meth:`TokenDataset.read`), and, given the clips,
whether every clip came out with exactly the modalities it has.

The modality table is taken from each folder's ``info.json`` (the grid and vocabulary the tokens were made with),
so the report needs no recipe; the trainer still checks them against its recipe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from egoforge.egom2p.clips import has_modality
from egoforge.egom2p.modalities import MODALITIES, modality_table
from egoforge.egom2p.shards import DatasetSpec, ShardFormatError, TokenDataset, read_info


@dataclass
class DatasetStats:
    name: str
    modalities: list[str]  # modalities with token shards
    combinations: dict[str, int] = field(default_factory=dict)  # "rgb+cam" -> samples
    samples: int = 0
    clips_checked: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"samples": self.samples, "modalities": self.modalities, "combinations": self.combinations,
                "clips_checked": self.clips_checked, "problems": self.problems, "notes": self.notes}


def token_datasets(root: str | os.PathLike) -> list[str]:
    """Dataset names that have shards under ``root/<modality>/<dataset>/`` for some known modality."""
    root = Path(root)
    return sorted({f.name for m in MODALITIES for f in (root / m).glob("*") if any(f.glob("shard-*.tar"))})


def table_from_shards(root: str | os.PathLike, dataset: str) -> dict:
    """The modality table with each tokenized modality's grid and vocabulary from its info.json."""
    overrides = {}
    for m in MODALITIES:
        folder = Path(root) / m / dataset
        if any(folder.glob("shard-*.tar")):
            info = read_info(folder)
            if not info.get("token_grid") or info.get("vocab_size") is None:
                raise ShardFormatError(f"{folder}/info.json: needs token_grid and vocab_size")
            overrides[m] = {"token_grid": list(info["token_grid"]), "vocab_size": int(info["vocab_size"])}
    return modality_table(overrides)


def combination(modalities, order) -> str:
    return "+".join(m for m in order if m in modalities)


def dataset_stats(root: str | os.PathLike, dataset: str, clips_root: str | os.PathLike | None = None,
                  max_problems: int = 20) -> DatasetStats:
    """Samples per modality combination as the trainer joins them; with ``clips_root``, checked clip by clip."""
    table = table_from_shards(root, dataset)
    reader = TokenDataset(root, dataset, DatasetSpec(), table)
    stats = DatasetStats(dataset, [m for m in table if m in reader.folders])
    joined: dict[str, set[str]] = {}
    for shard in reader.shards:
        for key, sample in reader.read(shard):
            if key in joined:  # cannot happen after TokenDataset's checks; a duplicate would double-count
                raise ShardFormatError(f"dataset {dataset!r}: clip {key!r} yielded twice by the reader")
            joined[key] = set(sample)
            name = combination(sample, table)
            stats.combinations[name] = stats.combinations.get(name, 0) + 1
    stats.samples = len(joined)
    stats.combinations = dict(sorted(stats.combinations.items(), key=lambda kv: (-kv[1], kv[0])))
    if clips_root is not None:
        _check_clips(stats, joined, Path(clips_root) / dataset, table, max_problems)
    return stats


def _check_clips(stats: DatasetStats, joined: dict[str, set[str]], folder: Path, table: dict,
                 max_problems: int) -> None:
    if not folder.is_dir():
        stats.problems.append(f"{folder}: no clip folder for this dataset")
        return
    clips = sorted(p.parent for p in folder.glob("*/meta.json"))
    stats.clips_checked = len(clips)
    problems = []
    untokenized: dict[str, int] = {}
    for clip in clips:
        has = {m for m in table if has_modality(clip, m)}
        for m in has - set(stats.modalities):
            untokenized[m] = untokenized.get(m, 0) + 1
        expected = has & set(stats.modalities)
        got = joined.pop(clip.name, set())
        if expected != got:
            problems.append(f"clip {clip.name}: has {combination(expected, table) or 'nothing tokenized'}, "
                            f"the reader yields {combination(got, table) or 'no sample'}")
    problems += [f"clip {key}: in the token shards ({combination(got, table)}) but not under {folder}"
                 for key, got in sorted(joined.items())]
    if len(problems) > max_problems:
        problems = problems[:max_problems] + [f"... and {len(problems) - max_problems} more"]
    stats.problems += problems
    stats.notes += [f"{n} clips have {m} but {m} was not tokenized for this dataset"
                    for m, n in sorted(untokenized.items())]


def format_stats(all_stats: list[DatasetStats]) -> str:
    lines = []
    for s in all_stats:
        lines.append(f"{s.name}: {s.samples} samples (modalities with shards: {', '.join(s.modalities)})")
        width = max((len(k) for k in s.combinations), default=0)
        lines += [f"  {k:<{width}}  {v}" for k, v in s.combinations.items()]
        if s.clips_checked is not None:
            verdict = "every clip joined with exactly its modalities" if not s.problems else \
                f"{len(s.problems)} problem(s)"
            lines.append(f"  clips: {s.clips_checked} checked, {verdict}")
        lines += [f"  PROBLEM {p}" for p in s.problems]
        lines += [f"  note: {n}" for n in s.notes]
    return "\n".join(lines)
