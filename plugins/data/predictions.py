"""predictions.jsonl: one JSON object per line, appended and flushed as answers arrive.

Two readers of the same file: a *resuming* generator tolerates a torn last line (the run was killed mid-write; that
question is redone), while a *scorer* must see every answer it scores, so :func:`read_predictions` with
``strict=True`` refuses a missing or empty file, a torn last line and duplicate ids instead of silently dropping or
overriding answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from egoforge.data.errors import InputError


def read_predictions(path: str | os.PathLike, *, strict: bool = False) -> dict[str, dict]:
    """Read ``{id: record}``.

    Resume mode (default): a missing file is ``{}`` and a torn last line is ignored. ``strict`` (scoring): a missing
    file, a file with no prediction, a torn last line and an id given twice are :class:`InputError` naming the file
    and line(s). In both modes any other bad line is an error.
    """
    path = Path(path)
    if not path.exists():
        if strict:
            raise InputError(path, "predictions file not found", fix="check the path; a run writes "
                             "OUT/predictions.jsonl")
        return {}
    records: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines) and not strict:
                break  # the run was killed mid-write; that question is simply redone
            torn = " (a torn last line: the run was interrupted; resume it to redo that question)" if (
                lineno == len(lines)) else ""
            raise InputError(f"{path}, line {lineno}", f"not valid JSON{torn}") from None
        if not isinstance(record, dict) or "id" not in record:
            raise InputError(f"{path}, line {lineno}", "every prediction needs an id", field="id")
        key = str(record["id"])
        if strict and key in first_line:
            raise InputError(path, f"id {record['id']!r} is given twice, on lines {first_line[key]} and {lineno}",
                             fix="keep one answer per question")
        first_line.setdefault(key, lineno)
        records[key] = record
    if strict and not records:
        raise InputError(path, "holds no predictions (the file is empty)", fix="give the predictions.jsonl of a run")
    return records


class PredictionWriter:
    """Appends records to a jsonl file, one flushed line each, so a crash loses at most the line in flight."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = read_predictions(self.path)
        if existing:
            # Rewrite without a torn tail so appended lines start on a clean line.
            from egoforge.data.atomic import atomic_write_text

            atomic_write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in existing.values()))
        self.done = set(existing)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close()/__exit__)

    def write(self, records: Iterable[dict]) -> None:
        for record in records:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.done.add(str(record["id"]))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
