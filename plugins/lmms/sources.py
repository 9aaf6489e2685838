"""Reading benchmark annotation files (json, jsonl, parquet) into rows, with errors naming file, row and field.

The source files are only read; prepared docs are written elsewhere (atomically) by :func:`write_docs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from egoforge.data.atomic import atomic_write_text
from egoforge.data.jsonio import DataFormatError
from egoforge.data.paths import UnsafePathError, resolve_under

TABLE_SUFFIXES = (".json", ".jsonl", ".parquet")


def read_rows(path: str | os.PathLike, columns: Sequence[str] | None = None) -> list[dict]:
    """Rows of a JSON list, a JSON-lines file or a parquet file (``columns`` limits what parquet decodes)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, None, None, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            schema_names = pq.read_schema(path).names
            missing = [c for c in columns or () if c not in schema_names]
            if missing:
                raise DataFormatError(path, None, missing[0], f"missing column (columns: {', '.join(schema_names)})")
            return pq.read_table(path, columns=list(columns) if columns else None).to_pylist()
        except DataFormatError:
            raise
        except Exception as exc:  # pyarrow raises many types for damaged files
            raise DataFormatError(path, None, None, f"not a readable parquet file ({exc})") from None
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = []
        for line_no, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, line_no, None, f"not valid JSON ({exc.msg})") from None
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, None, None, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, f"expected a JSON list of rows, got {type(data).__name__}")
    return data


def require_fields(row: object, fields: Iterable[str], path: str | os.PathLike, index: int) -> dict:
    """``row`` as a dict that has every field in ``fields`` (non-null), else a DataFormatError."""
    if not isinstance(row, dict):
        raise DataFormatError(path, index, None, "row is not an object")
    for field in fields:
        if row.get(field) is None:
            raise DataFormatError(path, index, field, "missing")
    return row


def resolve_media(root: str | os.PathLike, relative: str | os.PathLike, path: str | os.PathLike, index: int,
                  field: str, *, kind: str = "file") -> Path:
    """A media path under ``root`` that exists (``kind`` "file" or "dir"); errors name the row and field."""
    try:
        resolved = resolve_under(root, relative, allow_absolute=True)
    except UnsafePathError as exc:
        raise DataFormatError(path, index, field, str(exc)) from None
    exists = resolved.is_dir() if kind == "dir" else resolved.is_file()
    if not exists:
        raise DataFormatError(path, index, field, f"{kind} not found: {resolved}")
    return resolved


def find_tables(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Annotation tables in ``folder`` (json, jsonl, parquet), sorted; hidden files are skipped."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def write_docs(path: str | os.PathLike, docs: list[dict]) -> Path:
    """Write prepared docs as JSON lines, atomically."""
    if not docs:
        raise ValueError(f"no docs to write to {path}")
    return atomic_write_text(path, "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs))
