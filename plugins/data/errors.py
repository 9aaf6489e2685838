"""What counts as a user's input error, and the one line that tells the user about it.

Every ``egoforge`` command reports bad input the same way: one line naming the file (once), the row and field where
known, and the fix; exit code 2; no traceback. This module decides which exceptions are such input errors and words
them; ``egoforge.tools.cli`` applies it around every sub-command. Anything else is a bug in egoforge (exit 1), still
reported in one line, with the hint to rerun with ``--debug`` for the traceback.
"""

from __future__ import annotations

import errno
import io
import json
import os
from dataclasses import dataclass
from types import TracebackType

INPUT_ERROR_EXIT = 2
BUG_EXIT = 1


class InputError(ValueError):
    """Bad user input: the message names the file, the row and field where known, and the fix."""

    def __init__(self, path: str | os.PathLike | None, reason: str, *, row: int | None = None,
                 field: str | None = None, fix: str | None = None) -> None:
        self.path, self.row, self.field, self.reason, self.fix = (
            None if path is None else str(path), row, field, reason, fix)
        where = ", ".join(filter(None, [self.path, f"row {row}" if row is not None else None,
                                        f"field '{field}'" if field else None]))
        super().__init__((f"{where}: " if where else "") + reason + (f" ({fix})" if fix else ""))


class OutputPathError(InputError):
    """An output path egoforge refuses to write (a symlink, something that is not a plain file, a foreign folder)."""


@dataclass(frozen=True)
class Report:
    """How the CLI reports an exception: the line to print and the exit code."""

    message: str
    exit_code: int

    @property
    def is_input_error(self) -> bool:
        return self.exit_code == INPUT_ERROR_EXIT


# errno -> (short description, fix) for OS errors whose strerror is unclear to a user or has no fix in it
_OS_ERRORS = {
    errno.ENOENT: ("not found", "check the path"),
    errno.EISDIR: ("is a folder, expected a file", "give the file inside it"),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", "choose a path whose parents are folders"),
    errno.EEXIST: ("already exists and is in the way", "move it away or choose another path"),
    errno.EACCES: ("permission denied", "check its permissions or choose another path"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write"),
    errno.EROFS: ("read-only file system", "choose an output folder on a writable disk"),
    errno.ENOSPC: ("no space left on the device", "free some space or choose another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another disk"),
    errno.ENAMETOOLONG: ("file name too long", "shorten the name"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the link"),
    errno.ENXIO: ("not a regular file (no device or reader behind it)", "give a regular file"),
}


def _innermost_file(tb: TracebackType | None) -> str | None:
    """The name of the open file the innermost frame of a traceback was reading (a UnicodeDecodeError, a JSON or
    YAML decoder deep in a library, a RecursionError carry no file name themselves)."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            name = getattr(value, "name", None) if isinstance(value, io.IOBase) else None
            if isinstance(name, str) and not name.startswith("<"):  # not <stderr>
                return name
    # read whole (Path.read_text, then json.loads): the innermost frame holding the path of an existing file
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, (str, os.PathLike)) and _is_file(value):
                return os.fspath(value)
    return None


def _is_file(value: str | os.PathLike) -> bool:
    try:
        text = os.fspath(value)
        return isinstance(text, str) and 0 < len(text) < 4096 and "\n" not in text and os.path.isfile(text)
    except (TypeError, ValueError, OSError):
        return False


def _prefixed(path: str | None, text: str) -> str:
    """``path: text`` unless the text already names the path (never the file name twice)."""
    if not path or path in text:
        return text
    return f"{path}: {text}"


def _is_yaml_error(exc: BaseException) -> bool:
    return any(cls.__module__.startswith("yaml") and cls.__name__ == "YAMLError" for cls in type(exc).__mro__)


def _is_egoforge_error(exc: BaseException) -> bool:
    """egoforge's own exception classes are raised on purpose, with messages written for the user."""
    return type(exc).__module__.split(".")[0] == "egoforge"


def _os_message(exc: OSError) -> str:
    code = exc.errno
    described = _OS_ERRORS.get(code)
    text = described[0] if described else (exc.strerror or str(exc))
    fix = described[1] if described else None
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    if exc.strerror is None and not names:  # an OSError raised with a message of its own
        return str(exc)
    where = " -> ".join(os.fsdecode(n) if isinstance(n, bytes) else str(n) for n in names)
    return ((f"{where}: " if where else "") + text + (f" ({fix})" if fix else ""))


def _yaml_message(exc: BaseException) -> str:
    """``file: not valid YAML: problem at line L, column C``, the file named once (PyYAML names it in every mark)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    name = getattr(mark, "name", None)
    file = name if isinstance(name, str) and not name.startswith("<") else _innermost_file(exc.__traceback__)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if problem is None:
        return _prefixed(file, "not valid YAML: " + " ".join(str(exc).split()))
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    text = f"not valid YAML: {problem}{where}"
    if "python/" in problem:
        text += " (egoforge reads YAML safely: no !!python tags)"
    return _prefixed(file, text)


def describe(exc: BaseException) -> Report:
    """The one-line report of ``exc`` and the exit code: 2 for input errors, 1 for what looks like a bug."""
    if type(exc).__name__ == "UnidentifiedImageError":  # PIL: "cannot identify image file 'x.jpg'"
        file = getattr(exc, "filename", None) or _innermost_file(exc.__traceback__)
        if file is None and exc.args and "'" in str(exc):
            file = str(exc).split("'")[1]
        return Report(_prefixed(file, "not an image that can be decoded (empty, truncated, or not an image)")
                      if file else str(exc), INPUT_ERROR_EXIT)
    if isinstance(exc, ValueError) and "pickled" in str(exc):  # numpy: a text or non-.npy file given as .npy
        return Report(_prefixed(_innermost_file(exc.__traceback__), "not a NumPy .npy array (no .npy header; "
                                "egoforge never loads pickles)"), INPUT_ERROR_EXIT)
    if isinstance(exc, EOFError):  # numpy's zero-byte or truncated .npy
        return Report(_prefixed(_innermost_file(exc.__traceback__), f"empty or truncated file ({exc})"),
                      INPUT_ERROR_EXIT)
    if isinstance(exc, InputError):
        return Report(str(exc), INPUT_ERROR_EXIT)
    if _is_egoforge_error(exc):
        # egoforge's RuntimeErrors (a training run or lmms-eval that failed, a missing optional package) are failures
        # to report, not bad input; its ValueError / OSError / KeyError classes are input errors
        failure = isinstance(exc, RuntimeError)
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return Report(text or type(exc).__name__, BUG_EXIT if failure else INPUT_ERROR_EXIT)
    if isinstance(exc, UnicodeDecodeError):
        file = _innermost_file(exc.__traceback__)
        text = (f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}; re-save the file as "
                "UTF-8)" if exc.object else f"not UTF-8 text ({exc.reason})")
        return Report(_prefixed(file or "an input file", text), INPUT_ERROR_EXIT)
    if isinstance(exc, json.JSONDecodeError):
        file = _innermost_file(exc.__traceback__)
        return Report(_prefixed(file, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"),
                      INPUT_ERROR_EXIT)
    if _is_yaml_error(exc):
        return Report(_yaml_message(exc), INPUT_ERROR_EXIT)
    if isinstance(exc, RecursionError):
        file = _innermost_file(exc.__traceback__)
        return Report(_prefixed(file or "an input", "nested too deeply to read (RecursionError); a real data file "
                                "is never nested this deep: check it is the file you meant"), INPUT_ERROR_EXIT)
    if isinstance(exc, OSError):
        return Report(_os_message(exc), INPUT_ERROR_EXIT)
    if isinstance(exc, ValueError) and "embedded null byte" in str(exc):
        return Report("a path contains a NUL byte (\\x00): fix the file name in the input", INPUT_ERROR_EXIT)
    if type(exc).__name__ == "DecompressionBombError":
        file = _innermost_file(exc.__traceback__)
        return Report(_prefixed(file, f"image too large to decode safely ({exc})"), INPUT_ERROR_EXIT)
    if isinstance(exc, ValueError):
        # egoforge raises ValueError (and its DataFormatError, UnsafePathError ...) for bad input
        file = _innermost_file(exc.__traceback__)
        return Report(_prefixed(file, str(exc) or type(exc).__name__), INPUT_ERROR_EXIT)
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # host RAM, torch's CUDA OOM
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return Report(f"out of memory ({type(exc).__name__}{': ' + first if first else ''}): try a smaller batch "
                      "size or input", BUG_EXIT)
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return Report(f"internal error {type(exc).__name__}" + (f": {detail}" if detail else "")
                  + " - this is a bug in egoforge (or an input it does not check yet); rerun with --debug for the "
                  "traceback and report it", BUG_EXIT)
