"""verl dataset classes for Ego3S (``data.custom_cls``), built on verl's own ``RLHFDataset``.

``Ego3SDataset`` reads the parquet of ``egoforge ego3s convert`` and, at rollout time (verl calls the dataset
class's ``process_multi_modal_info`` inside the agent loop), decodes video files and frame folders with PyAV under
the paper's budget (2 fps, 4-16 frames) before handing frame lists to qwen-vl-utils. It also marks each row's
split (``extra_info.split``), which the ``ego3s_irl`` reward manager uses to know the group size.

``ECRDataset`` adds the evolving curriculum: a fixed number of slots over the CSM-selected training files plus a
pool (``data.ecr.pool_files``); the ``ego3s_ecr`` trainer feeds it every step's rewards and it recurates on
stagnation. Its state rides in verl's checkpoint: ``StatefulDataLoader`` saves ``dataset.state_dict()`` into
``data.pt`` and restores it on resume, giving the identical selection. Needs ``data.dataloader_num_workers=0``
(worker processes would hold stale copies of the slots).

    data.custom_cls.path=pkg://egoforge.verl.dataset data.custom_cls.name=ECRDataset
    +data.ecr.pool_files=[pool.parquet] +data.ecr.interval=100 +data.ecr.probe_size=500 +data.ecr.lambda_s=0.6
    +data.ecr.rescore_file=data/ego3s/csm/csm_report.json   # rank the pool by CSM, never re-admit its rejects
    +data.ecr.readmit_rejected=true                          # optional: let CSM-rejected samples back in
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from collections.abc import Mapping, Sequence

import datasets
from omegaconf import ListConfig
from verl.utils.dataset.rl_dataset import RLHFDataset

from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum, RescoreFile
from egoforge.ego3s.media import FrameBudget, load_one_clip, sampling_fps

_BUDGET_KEYS = {"fps", "min_frames", "max_frames", "frames_fps"}


def check_training_file(path) -> None:
    """A training file ECR serves from must exist and hold rows: verl's own reader fails on either with an error
    that does not say why (an empty CSM selection writes no ``selected.parquet``)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training file not found (an empty CSM selection writes no "
                                "selected.parquet: see csm_report.json beside it)")
    if path.suffix == ".parquet" and pq.ParquetFile(path).metadata.num_rows == 0:
        raise ValueError(f"{path}: no samples to train on: ECR needs at least one active sample (an empty CSM "
                         "selection?)")


def _as_list(files) -> list[str]:
    if files is None:
        return []
    if isinstance(files, (list, tuple, ListConfig)):
        return [str(f) for f in files]
    return [str(files)]


def decode_clips(messages: list[dict], image_patch_size=14) -> tuple[list[dict], list]:
    """Messages whose ``{"type": "video", "video": <file or folder>}`` items are replaced by the frames of
    :func:`egoforge.data.clip.load_clip` (sampled, padded, fitted to the per-frame budget), and those clips in order.

    The input is not modified (verl keeps ``raw_prompt`` for logging and the reward loop).
    """
    del image_patch_size  # the processor snaps frames to its patch grid itself, as in every other path
    out, clips = [], []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list) or not any(
            isinstance(i, dict) and i.get("type") == "video" and isinstance(i.get("video"), str) for i in content
        ):
            out.append(message)
            continue
        items = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "video" and isinstance(item.get("video"), str):
                fields = {k: item[k] for k in _BUDGET_KEYS if item.get(k) is not None}
                fields.update({k: item[k] for k in ("min_pixels", "max_pixels") if item.get(k) is not None})
                clip = load_one_clip(item["video"], FrameBudget(**fields))
                clips.append(clip)
                item = {k: v for k, v in item.items() if k not in _BUDGET_KEYS}
                item.update(video=clip.frames, sample_fps=sampling_fps(clip))
            items.append(item)
        out.append({**message, "content": items})
    return out, clips


def decode_video_items(messages: list[dict], image_patch_size=14) -> list[dict]:
    """:func:`decode_clips` without the clips."""
    return decode_clips(messages, image_patch_size)[0]


def with_clip_videos(videos, clips: list) -> list:
    """verl's ``(tensor, metadata)`` per video, made from each clip itself: its frames as they are (uint8, the
    tensor the processor builds from PIL frames; qwen-vl-utils' copy is resized again and turned to float) and its
    metadata (its true frame indices on its timeline, Qwen3-VL's ``<t seconds>``, instead of the ``0..n-1``
    qwen-vl-utils makes up for a frame list)."""
    if not clips:
        return videos
    if videos is None or len(videos) != len(clips):
        raise ValueError(f"egoforge: {len(clips)} decoded clips but {0 if videos is None else len(videos)} videos "
                         "from qwen-vl-utils; the prompt's videos and the decoded clips do not line up")
    import numpy as np
    import torch

    return [(torch.from_numpy(np.stack([np.asarray(f) for f in clip.frames])).permute(0, 3, 1, 2).contiguous(),
             clip.video_metadata()) for clip in clips]


def split_of(data_files, data_config) -> str | None:
    """"train" / "val" from which file list this dataset reads; None when both lists are the same files.

    verl does not tell a dataset class its split. With identical lists the ``ego3s_ecr`` trainer sets the split
    after building both datasets; any other trainer leaves it None and the reward manager releases groups of
    either size after ``group_settle_s`` (slow: use a held-out validation file).
    """
    files = _as_list(data_files)
    train, val = _as_list(data_config.get("train_files")), _as_list(data_config.get("val_files"))
    if train == val and files == train:
        warnings.warn("egoforge: data.train_files == data.val_files; the split of each dataset is unknown until "
                      "the ego3s_ecr trainer sets it (other trainers: Ego3S reward groups wait group_settle_s)",
                      stacklevel=3)
        return None
    return "train" if files == train else ("val" if files == val else None)


class Ego3SDataset(RLHFDataset):
    """RLHFDataset with PyAV video decoding under the Ego3S frame budget and split-marked rows."""

    def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1):
        self.split = split_of(data_files, config)
        super().__init__(_as_list(data_files), tokenizer, config, processor, max_samples)

    def maybe_filter_out_long_prompts(self, dataframe=None):
        """verl's length filter with one worker runs in this process. datasets >= 5 (the rl lock's 5.2) forks a
        pool even for ``num_proc=1`` (4.x ran it in-process), and the forked child decoding videos through the
        processor died abruptly ("One of the subprocesses has abruptly died during map operation")."""
        workers = self.num_workers
        if workers is not None and workers <= 1:
            self.num_workers = None
        try:
            return super().maybe_filter_out_long_prompts(dataframe)
        finally:
            self.num_workers = workers

    @classmethod
    def _process_multi_modal_info(cls, messages, image_patch_size, config):
        decoded, clips = decode_clips(messages, image_patch_size)
        images, videos, audios = super()._process_multi_modal_info(decoded, image_patch_size, config)
        return images, with_clip_videos(videos, clips), audios

    @classmethod
    async def process_vision_info(cls, messages, image_patch_size, config):
        import asyncio

        loop = asyncio.get_running_loop()
        decoded, clips = await loop.run_in_executor(None, decode_clips, messages, image_patch_size)
        images, videos = await super().process_vision_info(decoded, image_patch_size, config)
        return images, with_clip_videos(videos, clips)

    def __getitem__(self, item):
        row = super().__getitem__(item)
        if self.split is not None:
            row["extra_info"] = {**row["extra_info"], "split": self.split}
        return row


def ecr_config_from(data_config) -> tuple[ECRConfig, list[str], str | None, bool]:
    """(ECRConfig, pool files, CSM report ranking the pool, re-admit CSM-rejected samples) from ``data.ecr``."""
    section = dict((data_config.get("ecr") or {}).items())
    pool_files = _as_list(section.pop("pool_files", None))
    rescore_file = section.pop("rescore_file", None)
    readmit_rejected = bool(section.pop("readmit_rejected", False))
    known = set(ECRConfig.__dataclass_fields__)
    unknown = set(section) - known
    if unknown:
        raise ValueError(f"data.ecr: unknown keys {sorted(unknown)}; known: pool_files, rescore_file, "
                         f"readmit_rejected, {', '.join(sorted(known))}")
    return ECRConfig(**section), pool_files, rescore_file, readmit_rejected


class ECRDataset(Ego3SDataset):
    """Ego3SDataset whose items are the curriculum's active slots (see the module docstring)."""

    def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1):
        if int(config.get("dataloader_num_workers", 0) or 0) != 0:
            raise ValueError("ECRDataset recurates the training set in the trainer process: set "
                             "data.dataloader_num_workers=0")
        self.ecr_config, pool_files, rescore_file, self.readmit_rejected = ecr_config_from(config)
        self.pool_files = pool_files
        # A CSM report over the pool (`egoforge select csm`, re-run with a recent checkpoint for the paper's
        # "current policy") ranks the pool candidates and names those CSM rejected; it is re-read whenever the
        # file changes, so a periodic offline CSM pass is picked up at the next recuration.
        self.rescore_file = rescore_file
        self.rescore = RescoreFile(rescore_file, _load_report, _report_generations) if rescore_file else None
        if not rescore_file and pool_files:
            warnings.warn("egoforge ECR: data.ecr.pool_files without data.ecr.rescore_file: recuration brings pool "
                          "samples in in random order, CSM-rejected ones included; give the CSM report of the pool",
                          stacklevel=2)
        self.curriculum: ECRCurriculum | None = None
        super().__init__(data_files, tokenizer, config, processor, max_samples)

    # -- data ----------------------------------------------------------------------------------------------
    def _read_files_and_tokenize(self):
        if self.split != "val":
            for path in self.data_files:
                check_training_file(path)
        super()._read_files_and_tokenize()
        active_frame = self.dataframe
        frames = [active_frame]
        if self.pool_files and self.split != "val":
            from verl.utils.fs import copy_to_local

            saved = self.data_files
            self.data_files = [copy_to_local(src=f, cache_dir=self.cache_dir, use_shm=self.use_shm)
                               for f in self.pool_files]
            try:
                super()._read_files_and_tokenize()
                frames.append(self.dataframe)
            finally:
                self.data_files = saved
        self.dataframe = datasets.concatenate_datasets(frames) if len(frames) > 1 else active_frame
        ids = [_sample_id(e, i) for i, e in enumerate(self.dataframe["extra_info"])]
        self.row_of: dict[str, int] = {}
        for row, sample_id in enumerate(ids):
            self.row_of.setdefault(sample_id, row)  # a pool copy of an active sample is ignored
        self.id_of_row = ids
        active = list(dict.fromkeys(ids[: len(active_frame)]))
        pool = [x for x in dict.fromkeys(ids[len(active_frame):]) if x not in set(active)]
        if self.curriculum is None:  # keep the live curriculum when verl re-reads files on resume
            self.curriculum = ECRCurriculum(active, pool, self.ecr_config,
                                            source=", ".join(str(f) for f in self.data_files))
        self._fingerprint = _fingerprint(active, pool)

    def __len__(self):
        return len(self.curriculum.slots)

    def __getitem__(self, slot):
        row_index = self.row_of[self.curriculum.slots[slot]]
        row = super().__getitem__(row_index)
        # verl groups rollouts and we map rewards back by ``index``: make it the unique row of this dataset.
        row["index"] = row_index
        return row

    # -- curriculum ----------------------------------------------------------------------------------------
    def observe(self, groups: Mapping[int, Sequence[float]]) -> None:
        """Rewards of rollout groups keyed by dataset ``index`` (the rows ``__getitem__`` returned)."""
        self.curriculum.observe_groups((self.id_of_row[int(index)], rewards) for index, rewards in groups.items())

    def curriculum_step(self, step: int, rescore=None) -> dict[str, float]:
        exclude = ()
        if self.rescore is not None and step > 0 and step % self.ecr_config.interval == 0:
            report = self.rescore.current()
            if rescore is None:
                rescore = lambda ids: report.scores  # noqa: E731
            exclude = () if self.readmit_rejected else report.rejected
        result = self.curriculum.step(step, rescore, exclude)
        if result is None:
            return {}
        metrics = result.metrics()
        if self.rescore is not None:  # how many refreshed CSM reports (offline passes) the run has picked up
            metrics["ecr/rescore_refreshes"] = float(self.rescore.refreshes)
        return metrics

    def state_dict(self) -> dict:
        return {"fingerprint": self._fingerprint, "curriculum": copy.deepcopy(self.curriculum.state_dict())}

    def load_state_dict(self, state: Mapping) -> None:
        if state.get("fingerprint") != self._fingerprint:
            raise ValueError("the checkpoint's ECR state was saved for different training/pool files; resume "
                             "with the same data.train_files and data.ecr.pool_files")
        self.curriculum.load_state_dict(state["curriculum"])


def _load_report(path):
    from egoforge.ego3s.csm_run import load_report

    return load_report(path)


def _report_generations(path) -> int | None:
    """Generations the CSM pass that wrote the report ran (its ``summary.generations_this_run``), None if unknown."""
    import json

    with open(path, encoding="utf-8") as f:
        value = (json.load(f).get("summary") or {}).get("generations_this_run")
    return None if value is None else int(value)


def _sample_id(extra_info, row: int) -> str:
    if isinstance(extra_info, Mapping) and extra_info.get("problem_id") not in (None, ""):
        return str(extra_info["problem_id"])
    if isinstance(extra_info, Mapping) and extra_info.get("index") is not None:
        return f"index:{extra_info['index']}"
    return f"row:{row}"


def _fingerprint(active: list[str], pool: list[str]) -> str:
    digest = hashlib.sha256()
    for part in (active, pool):
        digest.update("\x1f".join(part).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def group_rewards(uids: Sequence, indices: Sequence, scores: Sequence[float]) -> dict[int, list[float]]:
    """Rollout scores grouped per prompt (uid), keyed by the prompt's dataset index (last group wins)."""
    by_uid: dict[str, tuple[int, list[float]]] = {}
    for uid, index, score in zip(uids, indices, scores):
        entry = by_uid.setdefault(str(uid), (int(index), []))
        entry[1].append(float(score))
    return {index: rewards for index, rewards in by_uid.values()}
