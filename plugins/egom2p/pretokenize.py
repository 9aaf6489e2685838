"""Clips -> token shards with any tokenizer, and tokenizer round-trip (reconstruction) reports.

Shards keep the clip keys, so the shards of different modalities of one dataset join on them; a clip without the
modality is skipped (it will be "unavailable" for that sample). A clip's tar is its position in the dataset's full
sorted clip list divided by ``samples_per_shard``, the same for every modality, so the join (which reads one shard
name of every modality at a time) sees all of a clip's modalities together even when some clips lack some.
Writing is resumable per dataset: a dataset whose ``info.json`` already lists the same tokenizer, sample count and
clip layout is left alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from egoforge.data.atomic import atomic_dir
from egoforge.egom2p.clips import has_modality, list_clips, load_clip
from egoforge.egom2p.geometry import canonicalize
from egoforge.egom2p.metrics import camera_metrics, gaze_l2, mse
from egoforge.egom2p.shards import TokenShardWriter


def clips_by_dataset(clips_root: str | Path, datasets: list[str] | None = None) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for clip in list_clips(clips_root):
        if datasets is None or clip.parent.name in datasets:
            grouped.setdefault(clip.parent.name, []).append(clip)
    return grouped


def clip_layout(clips: list[Path], samples_per_shard: int) -> dict:
    """What fixes every clip's shard: the dataset's sorted clip names and the shard size (recorded in info.json,
    so a resumed run never mixes a modality tokenized from an older clip list with fresh ones)."""
    digest = hashlib.sha256("\n".join(c.name for c in clips).encode()).hexdigest()[:16]
    return {"clips": len(clips), "clip_names_sha256": digest, "samples_per_shard": samples_per_shard}


def tokenize_clips(tokenizer, modality: str, clips_root: str | Path, out_root: str | Path,
                   datasets: list[str] | None = None, batch_size: int = 16, samples_per_shard: int = 1000,
                   progress: bool = True) -> dict[str, int]:
    """Write ``out_root/<modality>/<dataset>/shard-*.tar`` for every dataset under ``clips_root``."""
    from tqdm import tqdm

    grouped = clips_by_dataset(clips_root, datasets)
    if not grouped:
        raise FileNotFoundError(f"{clips_root}: no clip folders (run `egoforge egom2p prepare` first)")
    counts = {}
    for dataset, clips in grouped.items():
        position = {c: i for i, c in enumerate(clips)}  # shard = position among *all* clips, for every modality
        have = [c for c in clips if has_modality(c, modality)]
        info_path = Path(out_root) / modality / dataset / "info.json"
        identity = {"type": tokenizer.info()["type"], "fingerprint": getattr(tokenizer, "fingerprint", None)}
        layout = clip_layout(clips, samples_per_shard)
        if info_path.is_file():  # same clips, same tokenizer weights: already done (resumable per dataset)
            previous = json.loads(info_path.read_text())
            if (previous.get("samples") == len(have) and previous.get("source") == identity
                    and previous.get("layout") == layout and identity["fingerprint"]):
                counts[dataset] = len(have)
                continue
        if not have:
            continue
        first = True
        # The dataset's folder is replaced as a whole: no stale shards of an earlier run survive.
        with atomic_dir(Path(out_root) / modality / dataset) as tmp, \
                TokenShardWriter(out_root, modality, dataset, {}, samples_per_shard, folder=tmp) as writer:
            for start in tqdm(range(0, len(have), batch_size), desc=f"{modality}/{dataset}", disable=not progress):
                chunk = have[start: start + batch_size]
                tokens = tokenizer.encode(np.stack([load_clip(c, modality) for c in chunk]))
                if first:  # the grid is known once something was encoded (Cosmos reports it after encoding)
                    info = tokenizer.info()
                    writer.info = {"tokenizer": info, "vocab_size": int(info["vocab_size"]),
                                   "token_grid": list(tokens.shape[1:]), "source": identity, "layout": layout}
                    first = False
                for clip, t in zip(chunk, tokens):
                    writer.write(clip.name, t, shard=position[clip] // samples_per_shard)
        counts[dataset] = len(have)
    return counts


def reconstruction_report(tokenizer, modality: str, clips: list[Path], batch_size: int = 16) -> dict[str, float]:
    """Encode and decode clips; errors in the clip format (camera: canonical poses, gaze: valid samples)."""
    scores: dict[str, list[float]] = {}
    used: set[int] = set()
    for start in range(0, len(clips), batch_size):
        chunk = [c for c in clips[start: start + batch_size] if has_modality(c, modality)]
        if not chunk:
            continue
        original = np.stack([load_clip(c, modality) for c in chunk])
        tokens = tokenizer.encode(original)
        used.update(np.unique(tokens).tolist())
        recon = tokenizer.decode(tokens)
        for o, r in zip(original, recon):
            if modality == "cam":
                gt = canonicalize(o)
                for key, value in camera_metrics(r, gt, align="none").items():
                    scores.setdefault(key, []).append(value)
                scores.setdefault("translation_mse", []).append(mse(r[:, :3, 3], gt[:, :3, 3]))
            elif modality == "gaze":
                scores.setdefault("gaze_l2", []).append(gaze_l2(r[:, :2], o[:, :2], o[:, 2] > 0.5))
            else:
                scale = 255.0 if modality == "rgb" else 1.0
                valid = np.isfinite(o) if modality == "depth" else None  # depth holes (NaN) are not scored
                err = mse(r / scale, o.astype(np.float64) / scale, valid)
                scores.setdefault("psnr", []).append(float("inf") if err == 0 else float(10 * np.log10(1 / err)))
                scores.setdefault("mse", []).append(err)
    report = {k: float(np.mean(v)) for k, v in scores.items() if k != "scale"}
    report.update({"clips": sum(1 for c in clips if has_modality(c, modality)),
                   "codes_used": len(used), "vocab_size": int(tokenizer.vocab_size)})
    return report
