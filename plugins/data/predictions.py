"""Resumable predictions.jsonl: one JSON object per line, appended and flushed as answers arrive."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


def read_predictions(path: str | os.PathLike) -> dict[str, dict]:
    """Read ``{id: record}``; a torn last line (interrupted run) is ignored, any other bad line is an error."""
    path = Path(path)
    if not path.exists():
        return {}
    records: dict[str, dict] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                break  # the run was killed mid-write; that question is simply redone
            raise ValueError(f"{path}, line {lineno}: not valid JSON") from None
        if not isinstance(record, dict) or "id" not in record:
            raise ValueError(f"{path}, line {lineno}, field 'id': every prediction needs an id")
        records[str(record["id"])] = record
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
