"""Fixtures of the benchmark-suite tests: generated benchmark copies and one real suite run, each built once per
test run and shared by the xdist workers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _shared_build import build_once

from egoforge.tools.cli import main as cli


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> Path:
    """All six benchmarks in their real local layouts (``egoforge.testing.benchdata``)."""
    from egoforge.testing.benchdata import make_benchmarks

    return build_once(tmp_path_factory, "evalsuite_bench", make_benchmarks)


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory) -> Path:
    """A datasets cache for the lmms-eval subprocesses, so tests never write into the user's ~/.cache."""
    return build_once(tmp_path_factory, "evalsuite_hf_cache", lambda path: None)


def run_suite_cli(model, bench_root: Path, out: Path, *extra: str, hf_cache: Path | None = None) -> int:
    """The real CLI; lmms-eval's datasets cache goes to ``hf_cache`` (restored afterwards)."""
    old = os.environ.get("HF_DATASETS_CACHE")
    if hf_cache is not None:
        os.environ["HF_DATASETS_CACHE"] = str(hf_cache)
    try:
        return cli(["evaluate", "suite", "--model", str(model), "--data-root", str(bench_root), "--out", str(out),
                    "--max-new-tokens", "8", "--device", "cpu", "--quiet", *extra])
    finally:
        if hf_cache is not None:
            os.environ.pop("HF_DATASETS_CACHE", None) if old is None else os.environ.update(HF_DATASETS_CACHE=old)


@pytest.fixture(scope="session")
def suite_cli():
    """:func:`run_suite_cli`, for test modules (they cannot import this conftest by name reliably)."""
    return run_suite_cli


@pytest.fixture(scope="session")
def qwen3_suite_run(tmp_path_factory, bench_root, tiny_qwen3_vl, hf_cache) -> Path:
    """``egoforge evaluate suite`` on the tiny Qwen3-VL over all six benchmarks: a real lmms-eval run."""
    def build(path: Path) -> None:
        assert run_suite_cli(tiny_qwen3_vl, bench_root, path / "out", "--batch-size", "2", hf_cache=hf_cache) == 0

    return build_once(tmp_path_factory, "evalsuite_qwen3_run", build) / "out"
