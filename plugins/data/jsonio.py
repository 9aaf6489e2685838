"""JSON data files: the one error type for a malformed data file, and the reader that raises it.

Every pipeline's loaders raise :class:`DataFormatError`, whose message names the file, the row and the field, so the
CLI can print one line and exit 2 (``egoforge.data.errors``).
"""

from __future__ import annotations

import json
import os


class DataFormatError(ValueError):
    """A data file does not have the expected format; the message names the file, row and field."""

    def __init__(self, path: str | os.PathLike, row: int | None, field: str | None, reason: str) -> None:
        self.path, self.row, self.field, self.reason = str(path), row, field, reason
        where = str(path) + (f", row {row}" if row is not None else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {reason}")


def read_json(path: str | os.PathLike):
    """A JSON file's content; a missing or malformed file is a ``DataFormatError`` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataFormatError(path, None, None, "file not found") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, None, None, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
