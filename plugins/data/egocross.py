"""EgoCross data conventions: domains, source datasets, support-set files and the frame sampling rates."""

from __future__ import annotations

import os
from dataclasses import dataclass

from egoforge.data.jsonio import DataFormatError, read_json

# Domain order used in every EgoCross table (the seed README's column order).
DOMAINS = ("Surgery", "Industry", "XSports", "Animal")

# Source datasets per domain as spelled in the testbed json ("ExtrameSportFPV" is the json's own spelling).
DOMAIN_SOURCES = {
    "Surgery": ("CholecTrack20", "EgoSurgery"),
    "Industry": ("ENIGMA",),
    "XSports": ("ExtrameSportFPV",),
    "Animal": ("EgoPet",),
}
_ALIASES = {"ExtremeSportFPV": "XSports"}
DATASET_TO_DOMAIN = {src: dom for dom, srcs in DOMAIN_SOURCES.items() for src in srcs} | _ALIASES

SUPPORT_SET_DOMAIN_FILES = {d: f"train_{d.lower()}.json" for d in DOMAINS}

# The testbed's frames were pre-sampled at 0.5 fps, except CholecTrack20 .png frames and all of EgoSurgery (1 fps).
DEFAULT_SAMPLING_FPS = 0.5


def domain_of(dataset: str) -> str:
    """Map a testbed ``dataset`` value to its EgoCross domain, with a clear error for unknown sources."""
    if not isinstance(dataset, str):  # a list or number would crash the lookup (unhashable) or match nothing
        raise ValueError(f"must be a string naming the source dataset, got {type(dataset).__name__} {dataset!r}")
    try:
        return DATASET_TO_DOMAIN[dataset]
    except KeyError:
        known = ", ".join(sorted(DATASET_TO_DOMAIN))
        raise ValueError(f"unknown EgoCross source dataset {dataset!r} (known: {known})") from None


def _first_suffix(frame_paths: list[str]) -> str:
    return os.path.splitext(frame_paths[0])[1].lower() if frame_paths else ""


def sampling_fps(dataset: str, frame_paths: list[str], default: float = DEFAULT_SAMPLING_FPS) -> float:
    """The rate at which a testbed item's frames were really sampled (per the official script's comment).

    EgoSurgery and CholecTrack20 ``.png`` clips are 1 fps, everything else ``default`` (0.5). This is the *true*
    rate; the official script itself uses :func:`clip_rates` (``true_fps=False``), which differs for EgoSurgery.
    """
    if dataset == "EgoSurgery":
        return 1.0
    if dataset == "CholecTrack20" and _first_suffix(frame_paths) == ".png":
        return 1.0
    return default


@dataclass(frozen=True)
class ClipRates:
    """The two rates of one testbed clip: what the prompt says, and what the model is told the video runs at."""

    prompt_fps: float
    video_fps: float


def clip_rates(dataset: str, frame_paths: list[str], fps: float = DEFAULT_SAMPLING_FPS,
               true_fps: bool = False) -> ClipRates:
    """The rates of a clip under the official CloseQA protocol, or under the true per-domain rates.

    Official (``eval_os_closedset.py``): every clip is fed as a frame-list video at ``fps`` (0.5; a non-positive
    value means 0.5), and the prompt says 1.0 only for CholecTrack20 clips whose first frame is ``.png``;
    EgoSurgery prompts say 0.5 although its frames were sampled at 1.0. ``true_fps`` (an egoforge deviation)
    uses :func:`sampling_fps` for both, so EgoSurgery and CholecTrack20 ``.png`` clips get 1.0 everywhere.
    """
    default = fps if fps > 0 else DEFAULT_SAMPLING_FPS
    if true_fps:
        rate = sampling_fps(dataset, frame_paths, default)
        return ClipRates(rate, rate)
    prompt = 1.0 if dataset == "CholecTrack20" and _first_suffix(frame_paths) == ".png" else default
    return ClipRates(prompt, default)


# --- testbed and answers files ----------------------------------------------------------------------------------

TESTBED_FIELDS = ("id", "dataset", "primary_category", "question_type", "question_text", "options", "video_path")


def _load_json_list(path: str | os.PathLike) -> list:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, f"expected a JSON list of items, got {type(data).__name__}")
    return data


def load_testbed(path: str | os.PathLike) -> list[dict]:
    """Load and check an EgoCross testbed json (``egocross_testbed_imgs.json`` layout)."""
    items = _load_json_list(path)
    seen: set[str] = set()
    for row, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataFormatError(path, row, None, "item is not an object")
        for field in TESTBED_FIELDS:
            if field not in item:
                raise DataFormatError(path, row, field, "missing")
        if not isinstance(item["video_path"], list) or not item["video_path"]:
            raise DataFormatError(path, row, "video_path", "must be a non-empty list of frame paths")
        if not isinstance(item["options"], list) or len(item["options"]) < 2:
            raise DataFormatError(path, row, "options", "must be a list of at least two 'A: ...' strings")
        for i, option in enumerate(item["options"]):
            if not isinstance(option, str):
                raise DataFormatError(path, row, f"options[{i}]", f"must be a string, got {type(option).__name__}")
        for j, frame in enumerate(item["video_path"]):
            if not isinstance(frame, str):
                raise DataFormatError(path, row, f"video_path[{j}]", f"must be a path string, got "
                                      f"{type(frame).__name__}")
        if not isinstance(item["question_text"], str):
            raise DataFormatError(path, row, "question_text", "must be a string")
        try:
            domain_of(item["dataset"])
        except ValueError as exc:
            raise DataFormatError(path, row, "dataset", str(exc)) from None
        key = str(item["id"])
        if key in seen:
            raise DataFormatError(path, row, "id", f"duplicate id {key!r}")
        seen.add(key)
    return items


def load_answers(path: str | os.PathLike) -> dict[str, str]:
    """Load an answers json into ``{id: correct_option_letter}``, indexed by ``id`` and by ``question_id``."""
    rows = _load_json_list(path)
    answers: dict[str, str] = {}
    for row, item in enumerate(rows):
        if not isinstance(item, dict):
            raise DataFormatError(path, row, None, "item is not an object")
        letter = item.get("correct_option_letter")
        if not isinstance(letter, str) or not letter.strip():
            raise DataFormatError(path, row, "correct_option_letter", "missing or empty")
        keys = [str(item[k]) for k in ("id", "question_id") if item.get(k) is not None]
        if not keys:
            raise DataFormatError(path, row, "id", "an answer needs 'id' or 'question_id'")
        for key in keys:
            answers[key] = letter.strip()
    return answers


def answer_for(item: dict, answers: dict[str, str]) -> str | None:
    """The correct letter of a testbed item, matched by ``id`` first and ``question_id`` second."""
    for key in ("id", "question_id"):
        if item.get(key) is not None and str(item[key]) in answers:
            return answers[str(item[key])]
    return None
