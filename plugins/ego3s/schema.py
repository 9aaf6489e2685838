"""The Video-R1 json format Ego3S trains on, and its validation (every problem named by file, row and field).

A sample: ``problem_id``, ``problem``, ``problem_type`` (multiple choice | numerical | OCR | free-form |
regression), ``options`` (``"A. ..."`` lines for multiple choice), ``solution`` (``<answer>X</answer>``),
``data_type`` (video | image), ``path`` (video file, folder of frames, or image, relative to the data root) and,
for the grounded reward, ``roi_path`` (the interaction-region image). egoforge also reads an optional ``roi_box``
(relative [x0, y0, x1, y1], or one box per frame) to mask the interaction region for CSM.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from egoforge.data.paths import UnsafePathError, resolve_under
from egoforge.data.validate import Issue, MediaCheck, load_rows
from egoforge.ego3s.media import IMAGE_SUFFIXES, list_frames
from egoforge.rewards.accuracy import PROBLEM_TYPES, parse_number
from egoforge.rewards.answers import extract_tag

DATA_TYPES = ("video", "image")
_OPTION = re.compile(r"^\s*\(?([A-Z])\s*[.:)：]")


def option_letters(options: list[str]) -> list[str]:
    """The letters of ``"A. red"``-style options (entries that do not parse are skipped)."""
    letters = []
    for option in options:
        match = _OPTION.match(option) if isinstance(option, str) else None
        if match:
            letters.append(match.group(1))
    return letters


def _check_box(box: object) -> str | None:
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        return "expected [x0, y0, x1, y1] with relative coordinates"
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        return f"box {list(box)} must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
    return None


def _media_problem(media: MediaCheck, rel: str, data_type: str) -> str | None:
    try:
        real = resolve_under(media.root, rel, allow_absolute=True)
    except UnsafePathError as exc:
        return str(exc)
    if data_type == "video" and real.is_dir():
        frames = list_frames(real)
        if not frames:
            return f"frame folder has no images: {real}"
        # every frame decodes, as the converter and the trainers will need (a text file named .jpg is refused here,
        # not at training time)
        return next(filter(None, (media.file_problem(frame) for frame in frames)), None)
    if data_type == "image" and real.suffix.lower() not in IMAGE_SUFFIXES:
        return f"data_type is 'image' but {real.name} is not an image file"
    return media.problem(rel)


def check_row(row: object, index: int, file: str, media: MediaCheck) -> Iterator[Issue]:
    """All problems of one Video-R1 sample."""
    if not isinstance(row, dict):
        yield Issue(file, index, None, "sample is not a JSON object")
        return
    if row.get("problem_id") in (None, ""):
        yield Issue(file, index, "problem_id", "missing")
    if not isinstance(row.get("problem"), str) or not row["problem"].strip():
        yield Issue(file, index, "problem", "must be a non-empty string")
    problem_type = row.get("problem_type")
    if problem_type not in PROBLEM_TYPES:
        yield Issue(file, index, "problem_type", f"{problem_type!r} is not one of {list(PROBLEM_TYPES)}")
    options = row.get("options", [])
    if options is None:
        options = []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        yield Issue(file, index, "options", "must be a list of strings")
        options = []
    solution = row.get("solution")
    answer = extract_tag(solution, "answer") if isinstance(solution, str) else ""
    if not isinstance(solution, str) or "<answer>" not in solution or not answer:
        yield Issue(file, index, "solution", f"expected '<answer>X</answer>' with a non-empty X, got {solution!r}")
    elif problem_type == "multiple choice":
        letters = option_letters(options)
        if not letters:
            yield Issue(file, index, "options", "multiple choice needs options like 'A. ...'")
        elif answer.strip().strip("().") not in letters:
            yield Issue(file, index, "solution", f"answer {answer!r} is not among the options {''.join(letters)}")
    elif problem_type in ("numerical", "regression") and parse_number(answer) is None:
        yield Issue(file, index, "solution", f"{problem_type} answer {answer!r} is not a number")
    data_type = row.get("data_type")
    if data_type not in DATA_TYPES:
        yield Issue(file, index, "data_type", f"{data_type!r} is not one of {list(DATA_TYPES)}")
    path = row.get("path")
    if not isinstance(path, str) or not path:
        yield Issue(file, index, "path", "must be a path string")
    elif data_type in DATA_TYPES:
        problem = _media_problem(media, path, data_type)
        if problem:
            yield Issue(file, index, "path", problem)
    roi = row.get("roi_path")
    if roi not in (None, ""):
        problem = media.problem(roi) if isinstance(roi, str) else "must be a path string"
        if problem:
            yield Issue(file, index, "roi_path", problem)
    for key in ("roi_box", "roi_boxes"):
        if row.get(key) is None:
            continue
        boxes = row[key] if key == "roi_boxes" else [row[key]]
        if key == "roi_boxes" and (not isinstance(boxes, list) or not boxes):
            yield Issue(file, index, key, "expected a non-empty list of boxes")
            continue
        for i, box in enumerate(boxes):
            problem = _check_box(box)
            if problem:
                yield Issue(file, index, key if key == "roi_box" else f"{key}[{i}]", problem)


def validate_rows(rows: list, file: str, media_root: str | os.PathLike, decode: bool = True) -> list[Issue]:
    """Problems of a loaded Video-R1 file, including duplicate problem_ids. Never writes anything."""
    media = MediaCheck(Path(media_root), decode=decode)
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        issues.extend(check_row(row, index, file, media))
        if isinstance(row, dict) and row.get("problem_id") not in (None, ""):
            key = str(row["problem_id"])
            if key in seen:
                issues.append(Issue(file, index, "problem_id", f"duplicate of row {seen[key]} ({key!r})"))
            seen.setdefault(key, index)
    return issues


def load_video_r1(path: str | os.PathLike) -> list:
    """Rows of a Video-R1 json / jsonl file (ValueError naming the file when it does not parse)."""
    return load_rows(path)
