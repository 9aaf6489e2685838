"""The check every table-driven hostile-input case runs: the CLI in-process on one argv, then the exit code, the
message fragment on stderr, no traceback, every source byte-for-byte unchanged and no partial output left."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """``argv(f)`` / ``sources(f)`` / ``absent(f)`` take the module's fixture dict of paths."""

    name: str
    argv: Callable[[dict], list]
    code: int
    fragment: str
    sources: Callable[[dict], list] = field(default=lambda f: [])
    absent: Callable[[dict], list] = field(default=lambda f: [])


def digest(path: Path) -> str | None:
    """A file's sha256, or of every file below a folder (path + bytes), None when absent."""
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()
    return None


def run_cli(argv: list, capsys) -> tuple[int, str, str]:
    from egoforge.tools.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def check(case: Case, fixtures: dict, capsys) -> str:
    """Run ``case``; assert what it promises; return stderr for extra checks."""
    sources = [Path(p) for p in case.sources(fixtures)]
    before = {p: digest(p) for p in sources}
    assert all(v is not None for v in before.values()), "a case's source must exist before it runs"
    code, _, err = run_cli(case.argv(fixtures), capsys)
    assert "Traceback" not in err, err
    assert code == case.code, f"{case.name}: exit {code}, expected {case.code}; stderr: {err}"
    assert case.fragment in err, f"{case.name}: {case.fragment!r} not in stderr: {err}"
    changed = [str(p) for p in sources if digest(p) != before[p]]
    assert not changed, f"{case.name}: sources modified: {changed}"
    left = [str(p) for p in case.absent(fixtures) if Path(p).exists()]
    assert not left, f"{case.name}: partial output left: {left}"
    return err
