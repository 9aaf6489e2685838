"""Video-R1 CoT json -> LLaMA-Factory sharegpt json for the Ego3S CoT-SFT warm start.

The official IRL run starts from a CoT-SFT of Qwen2.5-VL-7B (its ``run_sft.sh``): each training target is the
sample's reasoning ``process`` followed by its ``<answer>`` solution, the prompt being the plain Video-R1 question
(no ``<object>`` list: that format is learnt in RL). One row per sample::

    {"messages": [{"role": "user", "content": "<video>question + instructions"},
                  {"role": "assistant", "content": "<think>...</think>\\n<answer>B</answer>"}],
     "videos": ["/abs/clip.mp4"]}            # or "images": [...]; a frame folder becomes its sorted frame list

Frames are sampled by LLaMA-Factory with the recipe's ``video_fps`` / ``video_maxlen`` / ``video_max_pixels``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from egoforge.data.atomic import atomic_write_json
from egoforge.data.paths import resolve_under
from egoforge.data.validate import Issue
from egoforge.ego3s.convert import ConversionError
from egoforge.ego3s.prompts import build_prompt
from egoforge.ego3s.schema import load_video_r1, validate_rows

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def _media(row: dict, root: Path) -> tuple[str, list[str]]:
    path = resolve_under(root, row["path"], allow_absolute=True)
    if row["data_type"] == "image":
        return "images", [str(path)]
    if path.is_dir():
        return "videos", [[str(p) for p in sorted(path.iterdir()) if p.suffix.lower() in FRAME_SUFFIXES]]
    return "videos", [str(path)]


def to_sft_rows(rows: list[dict], root: str | os.PathLike, file: str = "<rows>") -> list[dict]:
    """sharegpt rows; raises ConversionError naming each row without a reasoning ``process``."""
    missing = [Issue(file, i, "process", "missing or empty: the CoT-SFT target is process + solution")
               for i, row in enumerate(rows) if not str(row.get("process") or "").strip()]
    if missing:
        raise ConversionError(missing)
    out, kinds = [], {}
    for index, row in enumerate(rows):
        column, media = _media(row, Path(root))
        if column == "videos":  # datasets/Arrow needs one type per column: all paths, or all frame lists
            kinds.setdefault(isinstance(media[0], list), index)
            if len(kinds) > 1:
                first_file, first_folder = kinds[False], kinds[True]
                raise ConversionError([Issue(file, index, "path", (
                    f"video files (row {first_file}) and frame folders (row {first_folder}) in one file: "
                    "LLaMA-Factory's loader needs one kind per json; convert them into separate files"))])
        tag = "<image>" if column == "images" else "<video>"
        prompt = build_prompt(row["problem"], row["problem_type"], list(row.get("options") or []), irl=False)
        out.append({"messages": [{"role": "user", "content": tag + prompt},
                                 {"role": "assistant", "content": str(row["process"]).strip() + "\n"
                                  + str(row["solution"]).strip()}],
                    column: media})
    return out


def convert_sft_file(source: str | os.PathLike, out: str | os.PathLike, media_root: str | os.PathLike | None = None,
                     decode: bool = True) -> Path:
    """Validate ``source`` (Video-R1 rows with ``process``) and write the sharegpt json ``out`` atomically."""
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError(f"refusing to overwrite the source file {source}")
    rows = load_video_r1(source)
    root = Path(media_root) if media_root else source.parent
    issues = validate_rows(rows, str(source), root, decode=decode)
    if issues:
        raise ConversionError(issues)
    return atomic_write_json(out, to_sft_rows(rows, root, str(source)))


def read_sft_file(path: str | os.PathLike) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
