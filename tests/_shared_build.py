"""pytest-only: build an expensive test artefact once per pytest run, shared by every xdist worker (lock-protected).

Imported as ``from _shared_build import build_once``: pytest puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from egoforge.data.atomic import file_lock


def shared_root(tmp_path_factory) -> Path:
    """A folder shared by all xdist workers of this run (each worker has its own basetemp below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, builder: Callable[[Path], object]) -> Path:
    """Run ``builder(path)`` once per run across workers; later callers (any worker) reuse ``path``.

    A build that failed half-way leaves no ``.done`` marker, so the next caller starts it again from scratch.
    """
    root = shared_root(tmp_path_factory)
    target = root / name
    with file_lock(root / f".{name}.lock"):
        if not (target / ".done").exists():
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            builder(target)
            (target / ".done").write_text("ok")
    return target
