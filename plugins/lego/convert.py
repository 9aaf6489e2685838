"""LEGO files -> (a) ShareGPT for LLaMA-Factory action-description tuning, (b) the LDM training index.

Frame paths in the LEGO files are relative to one split's frame folder (``EgoGen/ego4d.fho/train``). The outputs
re-root them under a common media root (``EgoGen``) so one ``media_dir`` serves every dataset and split: a path
becomes ``ego4d.fho/train/<clip>/<action>/<frame>.jpg``. Each frame must exist under the frame folder and may not
leave it. Outputs are written atomically into new files; the sources are never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from egoforge.data.atomic import atomic_write_json, atomic_write_text
from egoforge.data.jsonio import DataFormatError
from egoforge.data.paths import UnsafePathError, resolve_under
from egoforge.lego.actions import QUERY, query_for
from egoforge.lego.formats import DESCRIPTION_KEY, CurationSample, LegoAction, load_curation, load_lego_json


class Rerooter:
    """Maps frame paths relative to ``frames_dir`` onto paths relative to ``media_root`` (checked, cached)."""

    def __init__(self, frames_dir: str | os.PathLike, media_root: str | os.PathLike, check: bool = True) -> None:
        self.frames_dir = Path(frames_dir).resolve()
        self.media_root = Path(media_root).resolve()
        if self.frames_dir != self.media_root and self.media_root not in self.frames_dir.parents:
            raise UnsafePathError(f"frame folder {self.frames_dir} is not inside the media root {self.media_root}")
        self.prefix = PurePosixPath(self.frames_dir.relative_to(self.media_root).as_posix())
        self.check = check

    def __call__(self, rel: str, file: str, row: int, field: str) -> str:
        try:
            real = resolve_under(self.frames_dir, rel)
        except UnsafePathError as exc:
            raise DataFormatError(file, row, field, str(exc)) from None
        if self.check and not real.is_file():
            raise DataFormatError(file, row, field, f"frame not found: {real}")
        return (self.prefix / PurePosixPath(rel)).as_posix()


def curation_to_sharegpt(samples: Iterable[CurationSample], reroot: Rerooter, file: str) -> list[dict]:
    """LLaVA conversations -> LLaMA-Factory ShareGPT rows (``messages`` role/content + ``images``).

    LLaVA puts ``<image>\\n`` before the question; LLaMA-Factory expands the tag in place, so it is kept where it is.
    """
    rows = []
    for sample in samples:
        messages = [{"role": role, "content": text} for role, text in sample.turns]
        rows.append({"messages": messages, "images": [reroot(sample.image, file, sample.row, "image")],
                     "id": sample.id})
    return rows


def lego_to_sharegpt(actions: Iterable[LegoAction], reroot: Rerooter, dataset: str, file: str,
                     answer_key: str = DESCRIPTION_KEY, query: str = QUERY) -> list[dict]:
    """A LEGO json with enriched descriptions -> ShareGPT rows asking the paper's query about the source frame."""
    rows = []
    for action in actions:
        answer = action.text(answer_key)
        if not answer:
            raise DataFormatError(file, action.row, f"[{action.clip_id}][{action.action_id}].{answer_key}",
                                  "missing: it is the answer the VLLM is tuned to give")
        try:
            question = "<image>" + query_for(action.action, dataset, query)
        except ValueError as exc:
            where = f"[{action.clip_id}][{action.action_id}].action"
            raise DataFormatError(file, action.row, where, str(exc)) from None
        rows.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                     "images": [reroot(action.image_0, file, action.row,
                                       f"[{action.clip_id}][{action.action_id}].image_0")],
                     "id": f"{dataset}/{action.key}"})
    return rows


def lego_to_ldm_index(actions: Iterable[LegoAction], reroot: Rerooter, dataset: str, file: str,
                      prompt_key: str = DESCRIPTION_KEY, fallback_to_action: bool = False) -> list[dict]:
    """A LEGO json -> LDM index rows: source/target frames, the text prompt, and the key of its VLLM features.

    ``feature_key`` is ``image_0`` as written in the LEGO json: the official feature files are named after it
    (``<image_0 with .npy>``) and :mod:`egoforge.lego.features` keys its shards the same way.
    """
    rows = []
    for action in actions:
        where = f"[{action.clip_id}][{action.action_id}]"
        prompt = action.text(prompt_key)
        if prompt is None:
            if not fallback_to_action:
                raise DataFormatError(file, action.row, f"{where}.{prompt_key}",
                                      "missing (use the `action` label with --prompt-key action or "
                                      "--fallback-to-action)")
            prompt = action.action
        rows.append({
            "id": f"{dataset}/{action.key}",
            "dataset": dataset,
            "clip_id": action.clip_id,
            "action_id": action.action_id,
            "source": reroot(action.image_0, file, action.row, f"{where}.image_0"),
            "target": reroot(action.image_1, file, action.row, f"{where}.image_1"),
            "action": action.action,
            "prompt": prompt,
            "feature_key": action.image_0,
        })
    return rows


def write_rows(rows: list[dict], out: str | os.PathLike) -> Path:
    """``.jsonl`` -> one row per line, otherwise a JSON list; atomic."""
    out = Path(out)
    if out.suffix == ".jsonl":
        return atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return atomic_write_json(out, rows)


def convert_file(source: str | os.PathLike, to: str, frames_dir: str | os.PathLike, media_root: str | os.PathLike,
                 out: str | os.PathLike, dataset: str, prompt_key: str = DESCRIPTION_KEY,
                 fallback_to_action: bool = False, check_frames: bool = True) -> tuple[Path, int]:
    """Convert one LEGO json or GPT-curation file; returns (output path, number of rows)."""
    from egoforge.lego.formats import detect_kind

    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError(f"refusing to overwrite the source {source}")
    reroot = Rerooter(frames_dir, media_root, check=check_frames)
    kind = detect_kind(source)
    if to == "sharegpt":
        if kind == "curation":
            rows = curation_to_sharegpt(load_curation(source), reroot, str(source))
        else:
            rows = lego_to_sharegpt(load_lego_json(source), reroot, dataset, str(source), answer_key=prompt_key)
    elif to == "ldm":
        if kind != "lego":
            raise DataFormatError(source, None, None, "the LDM index is built from a LEGO json (image_0/image_1), "
                                  "not from a GPT-curation file")
        rows = lego_to_ldm_index(load_lego_json(source), reroot, dataset, str(source), prompt_key,
                                 fallback_to_action)
    else:
        raise ValueError(f"unknown target {to!r}: choose sharegpt or ldm")
    if not rows:
        raise DataFormatError(source, None, None, "no samples")
    return write_rows(rows, out), len(rows)


def read_index(path: str | os.PathLike) -> list[dict]:
    """Read an LDM index (jsonl); rows are checked for the fields the dataset needs."""
    path = Path(path)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "file not found (build it with `egoforge lego convert --to ldm`)") \
            from None
    for lineno, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, None, f"not valid JSON ({exc.msg})") from None
        for name in ("id", "source", "target", "prompt", "feature_key"):
            if not isinstance(row.get(name), str):
                raise DataFormatError(path, lineno, name, "missing or not a string")
        rows.append(row)
    return rows
