"""One module per benchmark: ``prepare(source, work, options) -> BenchmarkPlan`` plus its lmms-eval hooks.

The hooks are referenced from the task YAML as ``!function egoforge.lmms.tasks.<benchmark>.<hook>`` (lmms-eval
falls back to an absolute import when no ``utils.py`` sits beside the YAML).
"""

from __future__ import annotations

import importlib

# Ego3S's results table order (the paper's main table), then EgoCross (§1).
BENCHMARKS = ("egoplan2", "qaego4d", "egotextvqa", "egoschema", "egothink", "egocross")


def benchmark_module(name: str):
    """The module implementing benchmark ``name``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"{__name__}.{name}")
