"""Read any egoforge dataset into ``Sample`` rows: LLaMA-Factory ShareGPT, the EgoCross testbed, verl RLHF parquet.

A report exists to show bad data too, so a malformed row never stops the reader: it becomes a sample carrying an
``Issue`` (file, row, field) and, when nothing else can be shown, its raw JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from egoforge.data.egocross import DATASET_TO_DOMAIN, answer_for, sampling_fps
from egoforge.data.validate import Issue, detect_format, load_rows
from egoforge.inspect.samples import (
    MediaRef,
    Sample,
    answer_letter,
    domain_from_paths,
    parse_option,
    split_options,
    strip_media_tags,
)

FORMATS = ("auto", "sharegpt", "egocross-testbed", "verl-parquet")
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
_ROLE = {"human": "user", "gpt": "assistant"}


def load_dataset(path: str | os.PathLike, fmt: str = "auto", fps: float = 0.5,
                 answers: dict[str, str] | None = None) -> tuple[str, list[Sample]]:
    """Return (format, samples). Raises ValueError naming the file when the file itself cannot be read."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "verl-parquet" or (fmt == "auto" and path.suffix == ".parquet"):
        return "verl-parquet", [_verl_sample(row, i, str(path), fps) for i, row in enumerate(_parquet_rows(path))]
    try:
        rows = load_rows(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    fmt = detect_format(rows) if fmt == "auto" else fmt
    if fmt == "egocross-testbed":
        return fmt, [_testbed_sample(row, i, str(path), fps, answers) for i, row in enumerate(rows)]
    return "sharegpt", [_sharegpt_sample(row, i, str(path), fps) for i, row in enumerate(rows)]


def _parquet_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except OSError as exc:  # pyarrow reports unreadable and non-parquet files as OSError / ArrowInvalid
        raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
    except Exception as exc:
        raise ValueError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None


def _raw(row: object) -> str:
    text = json.dumps(row, ensure_ascii=False, default=repr)
    return text if len(text) <= 4000 else text[:4000] + " ..."


def _broken(index: int, file: str, field: str | None, message: str, row: object) -> Sample:
    return Sample(row=index, id=str(index), issues=[Issue(file, index, field, message)], raw=_raw(row))


def _frame_list(frames: list, field: str, fps: float, file: str, index: int, issues: list[Issue]) -> list[MediaRef]:
    refs = []
    for j, frame in enumerate(frames):
        if isinstance(frame, str):
            refs.append(MediaRef("image", f"{field}[{j}]", path=frame, time=j / fps if fps else None))
        else:
            issues.append(Issue(file, index, f"{field}[{j}]", f"expected a frame path, got {type(frame).__name__}"))
    return refs


def _video_item(item: object, field: str, fps: float, file: str, index: int, issues: list[Issue]) -> list[MediaRef]:
    """A ``videos`` entry: a video file, a frame list, or (verl / qwen-vl-utils) ``{"video": ..., "fps": ...}``."""
    if isinstance(item, dict) and "video" in item:
        # qwen-vl-utils reads a frame list's rate from sample_fps (fps is the rate to sample a file at).
        rate = item.get("sample_fps") or item.get("fps") or fps
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            issues.append(Issue(file, index, f"{field}.fps", f"expected a number, got {rate!r}"))
            rate = fps
        return _video_item(item["video"], field, rate, file, index, issues)
    if isinstance(item, str):
        if item.lower().endswith(_VIDEO_SUFFIXES):
            return [MediaRef("video", field, path=item)]
        return [MediaRef("image", field, path=item, time=None)]
    if isinstance(item, list | tuple):
        return _frame_list(list(item), field, fps, file, index, issues)
    issues.append(Issue(file, index, field, f"expected a video path or a list of frame paths, got "
                                            f"{type(item).__name__}"))
    return []


def _image_item(item: object, field: str, time: float | None, file: str, index: int,
                issues: list[Issue]) -> MediaRef | None:
    """An ``images`` entry: a path, or (verl / HF datasets) ``{"bytes": ..., "path": ...}`` / ``{"image": path}``."""
    if isinstance(item, str):
        return MediaRef("image", field, path=item, time=time)
    if isinstance(item, dict):
        if isinstance(item.get("bytes"), bytes | bytearray) and item["bytes"]:
            return MediaRef("bytes", field, data=bytes(item["bytes"]), path=item.get("path"), time=time)
        for key in ("image", "path"):
            if isinstance(item.get(key), str):
                return MediaRef("image", field, path=item[key], time=time)
    issues.append(Issue(file, index, field, f"expected an image path or {{'bytes': ...}}, got {type(item).__name__}"))
    return None


def _media(row: dict, fps: float, file: str, index: int, issues: list[Issue]) -> list[MediaRef]:
    """Images are a sample's frames in order (EgoCross: one clip sampled at ``fps``); videos follow."""
    refs: list[MediaRef] = []
    images = row.get("images") or []
    images = images if isinstance(images, list) else [images]
    for i, item in enumerate(images):
        ref = _image_item(item, f"images[{i}]", i / fps if fps else None, file, index, issues)
        if ref is not None:
            refs.append(ref)
    videos = row.get("videos") or []
    videos = videos if isinstance(videos, list) else [videos]
    for i, item in enumerate(videos):
        refs.extend(_video_item(item, f"videos[{i}]", fps, file, index, issues))
    return refs


def _fill_qa(sample: Sample, prompt: str, answer: str) -> None:
    sample.question, sample.options = split_options(strip_media_tags(prompt))
    sample.answer = answer.strip()


def _turns(messages: list, role_key: str, content_key: str, field: str, file: str, index: int,
           issues: list[Issue]) -> list[tuple[str, str]]:
    turns = []
    for t, message in enumerate(messages):
        if not isinstance(message, dict):
            issues.append(Issue(file, index, f"{field}[{t}]", "must be an object"))
            continue
        content = message.get(content_key)
        if isinstance(content, list):  # OpenAI-style parts: keep the text, mark the media
            content = "".join(p.get("text", "") if isinstance(p, dict) and p.get("type") == "text" else ""
                              for p in content)
        if not isinstance(content, str):
            issues.append(Issue(file, index, f"{field}[{t}].{content_key}", "must be a string"))
            continue
        role = message.get(role_key)
        if not isinstance(role, str):  # a list here used to crash the alias lookup
            issues.append(Issue(file, index, f"{field}[{t}].{role_key}",
                                f"must be a string, got {type(role).__name__}"))
            continue
        turns.append((_ROLE.get(role, role), content))
    return turns


def _last(turns: list[tuple[str, str]], role: str) -> str:
    return next((text for r, text in reversed(turns) if r == role), "")


def _sharegpt_sample(row: object, index: int, file: str, fps: float) -> Sample:
    if not isinstance(row, dict):
        return _broken(index, file, None, "sample is not a JSON object", row)
    issues: list[Issue] = []
    if isinstance(row.get("messages"), list):
        turns = _turns(row["messages"], "role", "content", "messages", file, index, issues)
    elif isinstance(row.get("conversations"), list):
        turns = _turns(row["conversations"], "from", "value", "conversations", file, index, issues)
    else:
        return _broken(index, file, "messages", "no 'messages' (role/content) or 'conversations' (from/value) list",
                       row)
    media = _media(row, fps, file, index, issues)
    sample = Sample(row=index, id=str(row.get("id", index)), media=media, issues=issues)
    _fill_qa(sample, _last(turns, "user"), _last(turns, "assistant") if turns and turns[-1][0] == "assistant" else "")
    source = row.get("domain") or DATASET_TO_DOMAIN.get(str(row.get("dataset", "")))
    sample.domain = str(source or domain_from_paths([m.path for m in media if m.path]))
    sample.category = str(row.get("primary_category") or row.get("category") or "")
    sample.question_type = str(row.get("question_type") or "")
    return sample


def _testbed_sample(item: object, index: int, file: str, fps: float, answers: dict[str, str] | None) -> Sample:
    if not isinstance(item, dict):
        return _broken(index, file, None, "item is not a JSON object", item)
    issues: list[Issue] = []
    sample = Sample(row=index, id=str(item.get("id", index)), issues=issues)
    dataset = str(item.get("dataset", ""))
    sample.domain = DATASET_TO_DOMAIN.get(dataset, dataset)
    sample.category = str(item.get("primary_category") or "")
    sample.question_type = str(item.get("question_type") or "")
    sample.question = str(item.get("question_text") or "")
    for i, option in enumerate(item.get("options") or []):
        parsed = parse_option(option) if isinstance(option, str) else None
        if parsed is None:
            issues.append(Issue(file, index, f"options[{i}]", f"expected 'A: ...', got {option!r}"))
        else:
            sample.options.append(parsed)
    frames = item.get("video_path")
    if isinstance(frames, list) and frames:
        rate = sampling_fps(dataset, [f for f in frames if isinstance(f, str)], fps)
        sample.media = _frame_list(frames, "video_path", rate, file, index, issues)
    else:
        issues.append(Issue(file, index, "video_path", "must be a non-empty list of frame paths"))
    if answers is not None:
        sample.answer = answer_for(item, answers) or ""
        if not sample.answer:
            issues.append(Issue(file, index, "id", "no answer for this item in the answers file"))
    return sample


def _verl_sample(row: dict, index: int, file: str, fps: float) -> Sample:
    """A verl RLHFDataset row: ``prompt`` chat list with <image>/<video> tags, ``images`` / ``videos``,
    ``data_source``, ``reward_model.ground_truth`` and ``extra_info`` (verl's ``utils/dataset/rl_dataset.py``)."""
    issues: list[Issue] = []
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
    key = row.get("id", extra.get("id", extra.get("index", index)))
    sample = Sample(row=index, id=str(key), issues=issues)
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        turns = _turns(prompt, "role", "content", "prompt", file, index, issues)
    else:
        issues.append(Issue(file, index, "prompt", "must be a chat list of {role, content}"))
        turns = []
    reward = row.get("reward_model") if isinstance(row.get("reward_model"), dict) else {}
    truth = reward.get("ground_truth")
    if truth is None:
        issues.append(Issue(file, index, "reward_model.ground_truth", "missing"))
    elif not isinstance(truth, str):
        truth = json.dumps(truth, ensure_ascii=False, default=repr)
    _fill_qa(sample, _last(turns, "user"), truth or "")
    sample.media = _media(row, fps, file, index, issues)
    source = str(row.get("data_source") or "")
    sample.domain = str(extra.get("domain") or DATASET_TO_DOMAIN.get(source)
                        or domain_from_paths([m.path for m in sample.media if m.path]) or source)
    sample.category = str(extra.get("primary_category") or extra.get("category") or row.get("ability") or "")
    sample.question_type = str(extra.get("question_type") or "")
    letter = answer_letter(sample.answer)
    if letter and sample.options and not sample.option_text(letter):
        issues.append(Issue(file, index, "reward_model.ground_truth",
                            f"answer {sample.answer!r} is not among the options "
                            f"{''.join(lt for lt, _ in sample.options)}"))
    return sample
