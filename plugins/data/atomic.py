"""Atomic file and folder writes, and a process lock: outputs appear complete or not at all.

Outputs get the mode a plain ``open()`` / ``mkdir()`` would give them (the process umask; an existing file keeps its
mode), never the private 0600 / 0700 of ``mkstemp`` / ``mkdtemp``. A write refuses to replace a symbolic link (it
would replace the link, or whatever it points to, e.g. ``/dev/full`` as root), anything that is not a plain file,
and a folder egoforge did not write itself (:data:`OUTPUT_MARKER`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from egoforge.data.errors import OutputPathError

# Written into every folder atomic_dir creates: only such folders (or empty ones) are ever replaced by a later run.
OUTPUT_MARKER = ".egoforge-output"
# keep temporary names within the usual 255-byte limit however long the target's name is
_MAX_TEMP_STEM = 160


def _temp_name(path: Path, suffix: str) -> Path:
    return path.parent / f".{path.name[:_MAX_TEMP_STEM]}.{secrets.token_hex(4)}{suffix}"


def _ensure_parent(path: Path) -> None:
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise OutputPathError(folder, f"is a file, so it cannot hold the output {path.name}",
                                      fix="choose an output path under a folder")
            break
    parent.mkdir(parents=True, exist_ok=True)


def check_file_target(path: str | os.PathLike) -> Path:
    """``path`` if a file may be (re)written there: nothing, or a plain file; never a link, folder or device."""
    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(path, "is a symbolic link; egoforge does not write through links",
                              fix="remove the link or choose another output path")
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise OutputPathError(path, f"is {what}, expected a file path", fix="choose another output path")
    return path


def _create_temp_file(path: Path) -> tuple[int, Path]:
    """An exclusive new file beside ``path``, created with mode 0666 so the kernel applies the umask (mkstemp's
    0600 would survive the rename)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = _temp_name(path, ".tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary file")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = check_file_target(path)
    _ensure_parent(path)
    existing_mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
    fd, tmp = _create_temp_file(path)
    try:
        if existing_mode is not None:  # open(path, "w") on an existing file keeps its mode
            os.fchmod(fd, existing_mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        check_file_target(path)  # still not a link: nothing swapped one in while we wrote
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def check_folder_target(path: str | os.PathLike) -> Path:
    """``path`` if a folder may be written there: nothing, an empty folder, or a folder egoforge wrote."""
    path = Path(path)
    if path.is_symlink():
        raise OutputPathError(path, "is a symbolic link; egoforge does not replace links",
                              fix="remove the link or choose another output folder")
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(path, "exists and is not a folder", fix="choose another output folder")
        if not (path / OUTPUT_MARKER).is_file() and any(path.iterdir()):
            raise OutputPathError(path, "is a folder egoforge did not write (it holds other files); refusing to "
                                  "replace it", fix="move it away or choose another output folder")
    return path


def _make_temp_dir(path: Path, suffix: str) -> Path:
    for _ in range(100):
        tmp = _temp_name(path, suffix)
        try:
            os.mkdir(tmp, 0o777)  # the umask applies, as to any mkdir
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary folder")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` in one rename.

    ``path`` must not exist, be empty, or be a folder an earlier ``atomic_dir`` wrote (it carries
    :data:`OUTPUT_MARKER`): a folder of the user's is never swapped away."""
    path = check_folder_target(path)
    _ensure_parent(path)
    tmp = _make_temp_dir(path, ".tmp")
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text("written by egoforge: a later run may replace this folder as a whole\n")
        check_folder_target(path)
        if path.exists():
            # Move the old folder aside first so the swap never leaves a half-written target.
            old = _make_temp_dir(path, ".old")
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) shared by processes, e.g. pytest-xdist workers building a fixture."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
