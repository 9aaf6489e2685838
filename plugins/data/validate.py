"""Dataset validation: every problem reported with file, row and field; the source is only ever read.

Two formats: LLaMA-Factory ShareGPT json/jsonl (``messages`` with role/content or ``conversations`` with
from/value, plus ``images`` / ``videos``), and the EgoCross testbed (with an optional answers file).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from egoforge.data.paths import MediaRoot, UnsafePathError
from egoforge.data.video import decode_first_frame

IMAGE_TAG, VIDEO_TAG = "<image>", "<video>"
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[\)\.:：]\s+\S", re.MULTILINE)
_LETTER_ANSWER = re.compile(r"^\s*\(?([A-Z])\)?\.?\s*$")
_ROLE_ALIASES = {"human": "user", "gpt": "assistant", "observation": "observation", "function_call": "function_call"}
_VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm"}


@dataclass(frozen=True)
class Issue:
    file: str
    row: int | None
    field: str | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = self.file + (f", row {self.row}" if self.row is not None else "")
        where += f", field '{self.field}'" if self.field else ""
        return f"{self.severity}: {where}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MediaCheck:
    """Decodes media once per path, so frames shared by several rows are opened once.

    ``root`` is a folder (an explicit data root) or a :class:`MediaRoot` (how one data file's paths resolve, the
    published testbed's absolute paths included); ``root`` is always the folder afterwards, ``media`` the rule.
    """

    root: Path | MediaRoot
    decode: bool = True

    def __post_init__(self) -> None:
        self.media = self.root if isinstance(self.root, MediaRoot) else MediaRoot(Path(self.root), explicit=True)
        self.root = self.media.base
        self._cache: dict[str, str | None] = {}

    def problem(self, path: str) -> str | None:
        """None if ``path`` is a readable image/video under the root, else why not."""
        if path in self._cache:
            return self._cache[path]
        try:
            real = self.media.resolve(path)
        except UnsafePathError as exc:
            result: str | None = str(exc)
        else:
            if not real.is_file():
                result = self.media.missing(path, real)
            elif not self.decode:
                result = None
            else:
                result = _decode_problem(real)
        self._cache[path] = result
        return result

    def file_problem(self, real: Path) -> str | None:
        """None if the already-resolved file ``real`` decodes (or decoding is off), else why not; cached."""
        key = f"file:{real}"
        if key not in self._cache:
            self._cache[key] = _decode_problem(real) if self.decode else None
        return self._cache[key]


def _decode_problem(path: Path) -> str | None:
    if path.suffix.lower() in _VIDEO_SUFFIXES:
        try:
            decode_first_frame(path)
        except Exception as exc:  # any decoder failure is a data problem to report, not to raise
            return f"video does not decode: {path} ({type(exc).__name__}: {exc})"
        return None
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.load()
    except Exception as exc:
        return f"image does not decode: {path} ({type(exc).__name__}: {exc})"
    return None


def load_rows(path: str | os.PathLike) -> list:
    """Read a json list or a jsonl file; raises ValueError naming the file (and line) when unreadable."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # reading a FIFO would block forever
        from egoforge.data.errors import InputError

        raise InputError(path, "is not a regular file (a FIFO or device)", fix="give the dataset file itself")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}, line {lineno}: not valid JSON ({exc.msg})") from None
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of samples, got {type(data).__name__}")
    return data


def _messages(row: dict) -> tuple[str, list[dict], str, str] | None:
    if isinstance(row.get("messages"), list):
        return "messages", row["messages"], "role", "content"
    if isinstance(row.get("conversations"), list):
        return "conversations", row["conversations"], "from", "value"
    return None


def _media_list(row: dict, key: str) -> list:
    value = row.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_sharegpt_row(row: object, index: int, file: str, media: MediaCheck) -> Iterator[Issue]:
    """All problems of one ShareGPT sample."""
    if not isinstance(row, dict):
        yield Issue(file, index, None, "sample is not a JSON object")
        return
    found = _messages(row)
    if found is None:
        yield Issue(file, index, "messages", "no 'messages' (role/content) or 'conversations' (from/value) list")
        return
    key, messages, role_key, content_key = found
    roles = []
    for turn, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get(content_key), str):
            yield Issue(file, index, f"{key}[{turn}].{content_key}", "must be a string")
            return
        role = message.get(role_key)
        if not isinstance(role, str):  # a list or number here used to crash the alias lookup
            yield Issue(file, index, f"{key}[{turn}].{role_key}", f"must be a string, got {type(role).__name__}")
            return
        roles.append(_ROLE_ALIASES.get(role, role))
    body = roles[1:] if roles and roles[0] == "system" else roles
    expected = ["user", "assistant"] * (len(body) // 2 + 1)
    if not body or len(body) % 2 or body != expected[: len(body)]:
        yield Issue(file, index, f"{key}[*].{role_key}",
                    f"roles must alternate user/assistant (after an optional system) and end with assistant: {roles}")
    text = "".join(m[content_key] for m in messages)
    for tag, field_name in ((IMAGE_TAG, "images"), (VIDEO_TAG, "videos")):
        items = _media_list(row, field_name)
        if text.count(tag) != len(items):
            yield Issue(file, index, field_name, f"{text.count(tag)} {tag} tags but {len(items)} {field_name}")
        for i, item in enumerate(items):
            frames = item if isinstance(item, list) else [item]
            for j, frame in enumerate(frames):
                where = f"{field_name}[{i}]" + (f"[{j}]" if isinstance(item, list) else "")
                if not isinstance(frame, str):
                    yield Issue(file, index, where, f"expected a path string, got {type(frame).__name__}")
                    continue
                problem = media.problem(frame)
                if problem:
                    yield Issue(file, index, where, problem)
    user_texts = [m[content_key] for m, r in zip(messages, roles) if r == "user"]
    answers = [m[content_key] for m, r in zip(messages, roles) if r == "assistant"]
    if user_texts and answers:
        letters = set(_OPTION_LINE.findall(user_texts[-1]))
        answer = _LETTER_ANSWER.match(answers[-1])
        if letters and answer and answer.group(1) not in letters:
            yield Issue(file, index, f"{key}[-1].{content_key}",
                        f"answer {answer.group(1)!r} is not among the options {''.join(sorted(letters))}")


def check_testbed_item(item: object, index: int, file: str, media: MediaCheck,
                       answers: dict[str, str] | None) -> Iterator[Issue]:
    """All problems of one EgoCross testbed item (and its answer, when an answers file is given)."""
    from egoforge.data.egocross import TESTBED_FIELDS, answer_for, domain_of

    if not isinstance(item, dict):
        yield Issue(file, index, None, "item is not a JSON object")
        return
    for name in TESTBED_FIELDS:
        if name not in item:
            yield Issue(file, index, name, "missing")
    if "dataset" in item:
        try:
            domain_of(item["dataset"])
        except ValueError as exc:
            yield Issue(file, index, "dataset", str(exc))
    letters = set()
    for i, option in enumerate(item.get("options") or []):
        match = re.match(r"^\s*([A-Z])\s*[:：.)]", option) if isinstance(option, str) else None
        if not match:
            yield Issue(file, index, f"options[{i}]", f"expected 'A: ...', got {option!r}")
        else:
            letters.add(match.group(1))
    frames = item.get("video_path")
    if "video_path" in item and (not isinstance(frames, list) or not frames):
        yield Issue(file, index, "video_path", "must be a non-empty list of frame paths")
    elif isinstance(frames, list):
        for j, frame in enumerate(frames):
            problem = media.problem(frame) if isinstance(frame, str) else "expected a path string"
            if problem:
                yield Issue(file, index, f"video_path[{j}]", problem)
    if answers is not None:
        truth = answer_for(item, answers)
        if truth is None:
            yield Issue(file, index, "id", "no answer for this item in the answers file")
        elif letters and truth not in letters:
            yield Issue(file, index, "correct_option_letter",
                        f"answer {truth!r} is not among the options {''.join(sorted(letters))}")


def check_turn_types(rows: list, file: str | os.PathLike) -> None:
    """Raise an error naming file, row and field at the first ShareGPT turn whose role (``role`` / curation
    ``from``) is not a string: commands that only read media paths would otherwise accept rows that training then
    rejects. (Content is left to ``validate``: OpenAI-style part lists are read by some tools.)"""
    from egoforge.data.errors import InputError

    for index, row in enumerate(rows):
        found = _messages(row) if isinstance(row, dict) else None
        if found is None:
            continue
        key, messages, role_key, _ = found
        for turn, message in enumerate(messages):
            value = message.get(role_key) if isinstance(message, dict) else None
            if not isinstance(value, str):
                raise InputError(file, f"must be a string, got {type(value).__name__}", row=index,
                                 field=f"{key}[{turn}].{role_key}")


def detect_format(rows: list) -> str:
    first = next((r for r in rows if isinstance(r, dict)), {})
    if "question_text" in first and "video_path" in first:
        return "egocross-testbed"
    return "sharegpt"


def validate_file(
    path: str | os.PathLike,
    media_dir: str | os.PathLike | None = None,
    fmt: str = "auto",
    answers: str | os.PathLike | None = None,
    decode: bool = True,
    progress: Callable[[Iterable], Iterable] | None = None,
    *,
    raise_unreadable: bool = False,
) -> list[Issue]:
    """Validate a dataset file; returns the issues (empty when clean). Never writes anything.

    A file (or answers file) that cannot be read at all is one issue, or with ``raise_unreadable`` the error itself
    (the CLI reports it as bad input, exit 2, rather than as a finding, exit 1).
    """
    path = Path(path)
    file = str(path)
    try:
        rows = load_rows(path)
    except (OSError, ValueError) as exc:
        if raise_unreadable:
            raise
        return [Issue(file, None, None, str(exc))]
    media = MediaCheck(MediaRoot.for_file(path, media_dir), decode=decode)
    fmt = detect_format(rows) if fmt == "auto" else fmt
    iterate = progress or (lambda x: x)
    issues: list[Issue] = []
    if fmt == "egocross-testbed":
        from egoforge.data.egocross import load_answers
        from egoforge.data.jsonio import DataFormatError

        answer_map = None
        if answers is not None:
            try:
                answer_map = load_answers(answers)
            except DataFormatError as exc:
                if raise_unreadable:
                    raise
                return [Issue(exc.path, exc.row, exc.field, exc.reason)]
        seen: set[str] = set()
        for index, item in enumerate(iterate(rows)):
            issues.extend(check_testbed_item(item, index, file, media, answer_map))
            if isinstance(item, dict) and "id" in item:
                if str(item["id"]) in seen:
                    issues.append(Issue(file, index, "id", f"duplicate id {item['id']!r}"))
                seen.add(str(item["id"]))
    elif fmt == "sharegpt":
        for index, row in enumerate(iterate(rows)):
            issues.extend(check_sharegpt_row(row, index, file, media))
    else:
        raise ValueError(f"unknown format {fmt!r}: choose auto, sharegpt or egocross-testbed")
    return issues
