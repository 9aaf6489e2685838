"""Resolve dataset media paths without ever leaving the data root.

Two kinds of paths appear in the files egoforge reads: paths relative to a data root (the support set, egoforge's
own files) and absolute paths. The EgoCross testbed as published uses absolute ``/egocross_testbed/<dataset>/...``
paths (its script expects the testbed at ``/egocross_testbed``); :class:`MediaRoot` maps those under a local
``--media-dir`` and refuses anything that would climb out of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The folder the published EgoCross testbed's absolute frame paths start with.
TESTBED_ROOT = "egocross_testbed"


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


def testbed_relative(path: str) -> str | None:
    """``a/b.jpg`` for ``/egocross_testbed/a/b.jpg``; None for any other path."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) >= 2 and parts[0] == "/" and parts[1] == TESTBED_ROOT:
        return "/".join(parts[2:])
    return None


@dataclass(frozen=True)
class MediaRoot:
    """Where the media paths of one data file resolve.

    - relative paths: under ``base`` (``--media-dir``, else the data file's folder); ``..`` escapes refused;
    - ``/egocross_testbed/...`` (the published testbed): with ``--media-dir D``, under ``D/egocross_testbed`` when
      D holds that folder, else under D itself (D *is* the testbed folder); without it, used as they are, which is
      what the official script does;
    - other absolute paths: with ``--media-dir``, they must lie under it; without it, used as they are.

    An absolute path with a ``..`` segment is always refused: no published file has one.
    """

    base: Path
    explicit: bool = False

    @classmethod
    def for_file(cls, data_file: str | os.PathLike, media_dir: str | os.PathLike | None = None) -> MediaRoot:
        if media_dir:
            return cls(Path(media_dir), explicit=True)
        return cls(Path(data_file).parent, explicit=False)

    def testbed_dir(self) -> Path:
        """The local folder that stands for ``/egocross_testbed`` (only meaningful with ``--media-dir``)."""
        nested = self.base / TESTBED_ROOT
        return nested if nested.is_dir() else self.base

    def resolve(self, path: str | os.PathLike) -> Path:
        """The local file ``path`` names; raises :class:`UnsafePathError` for escapes."""
        text = os.fspath(path)
        if not PurePosixPath(text.replace("\\", "/")).is_absolute() and not Path(text).is_absolute():
            return resolve_under(self.base, text)
        if ".." in PurePosixPath(text.replace("\\", "/")).parts:
            raise UnsafePathError(f"absolute path {text!r} contains '..': refused")
        rest = testbed_relative(text)
        if not self.explicit:
            return Path(text)
        if rest is not None:
            return resolve_under(self.testbed_dir(), rest) if rest else self.testbed_dir().resolve()
        return resolve_under(self.base, text, allow_absolute=True)

    def missing(self, path: str | os.PathLike, resolved: Path) -> str:
        """Why ``path`` (resolved to ``resolved``) is not there, with the ``--media-dir`` to pass when that helps."""
        text = os.fspath(path)
        if testbed_relative(text) is None or self.explicit:
            return f"file not found: {resolved}"
        local = self.base / TESTBED_ROOT
        hint = f" (this folder holds one: --media-dir {self.base})" if local.is_dir() else ""
        return (f"file not found: {text}; the testbed's frames are absolute /{TESTBED_ROOT}/... paths: pass "
                f"--media-dir D where D holds {TESTBED_ROOT}/ (or is that folder){hint}")

    def describe(self) -> str:
        return str(self.base) if self.explicit else f"{self.base} (absolute paths as they are)"
