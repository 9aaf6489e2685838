"""Resolve dataset-relative media paths without ever leaving the data root."""

from __future__ import annotations

import os
from pathlib import Path


class UnsafePathError(ValueError):
    """A media path points outside the data root (``..`` segments, absolute paths elsewhere, symlink escapes)."""


def resolve_under(root: str | os.PathLike, relative: str | os.PathLike, *, allow_absolute: bool = False) -> Path:
    """Join ``relative`` onto ``root`` and return the real path, refusing anything that escapes ``root``.

    Absolute paths are accepted only when ``allow_absolute`` is set (LLaMA-Factory accepts them) and they still
    have to lie under ``root``. Symlinks are resolved before the check so a link cannot smuggle a path out.
    """
    root_real = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute() and not allow_absolute:
        raise UnsafePathError(f"absolute path {str(relative)!r} is not allowed; use a path relative to {root_real}")
    candidate = (root_real / rel).resolve()
    if candidate != root_real and root_real not in candidate.parents:
        raise UnsafePathError(f"path {str(relative)!r} escapes the data root {root_real}")
    return candidate


def is_under(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    try:
        resolve_under(root, path, allow_absolute=True)
    except UnsafePathError:
        return False
    return True
