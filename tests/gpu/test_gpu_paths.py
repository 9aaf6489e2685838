"""GPU-only paths (skipped without CUDA): the vLLM backend, and a bf16 recipe run on all visible GPUs.

Run them with tests/gpu/run_gpu_checks.sh on a GPU machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from egoforge.llamafactory.launch import train
from egoforge.testing.recipes import tiny_overrides

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.gpu


def _gpus() -> int:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return len([line for line in out.splitlines() if line.startswith("GPU ")])


def test_vllm_backend_matches_transformers_protocol(egocross_work, tiny_qwen3_vl, tmp_path):
    pytest.importorskip("vllm")
    from egoforge.eval.backends import GenerationSettings
    from egoforge.eval.egocross_run import generate_predictions, score_and_report

    testbed = egocross_work / "testbed"
    settings = GenerationSettings(frames_as="video", max_new_tokens=8, max_pixels=16384, batch_size=8)
    preds = generate_predictions(str(tiny_qwen3_vl), testbed / "egocross_testbed_imgs.json", tmp_path, backend="vllm",
                                 settings=settings, progress=False,
                                 backend_kwargs={"max_model_len": 4096, "gpu_memory_utilization": 0.3})
    results = score_and_report(testbed / "egocross_testbed_imgs.json", testbed / "egocross_testbed_answers.json",
                               preds, tmp_path)
    assert results.as_dict()["n_questions"] == len(json.loads((testbed / "egocross_testbed_imgs.json").read_text()))


def test_bf16_full_recipe_on_all_gpus(egocross_work, tiny_qwen3_vl, tmp_path):
    """recipes/egocross_full.yaml as on the paper's 4 GPUs (bf16, ZeRO-2 via torchrun), on tiny inputs."""
    n = _gpus()
    zero2 = str(REPO / "recipes" / "deepspeed" / "ds_z2_config.json")
    overrides = tiny_overrides(tiny_qwen3_vl, egocross_work / "dataset_info", egocross_work / "data" / "egocross",
                               tmp_path / "out", bf16=True, deepspeed=zero2, max_steps=4, save_steps=4)
    env = {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": str(n), "MASTER_PORT": "29631"}
    train(REPO / "recipes" / "egocross_full.yaml", overrides, tmp_path / "train.log", cwd=tmp_path, env=env)
    log = (tmp_path / "train.log").read_text()
    assert "compute dtype: torch.bfloat16" in log and f"world size: {n}" in log
    assert (tmp_path / "out" / "model.safetensors").exists()
