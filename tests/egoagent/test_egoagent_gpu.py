"""GPU-only EgoAgent paths (skipped without CUDA; run with tests/egoagent/run_gpu_checks.sh):
bf16 training, DDP on every visible GPU, DeepSpeed ZeRO-2 with exact resume, and a 300m step at the paper's crops."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from egoagent_helpers import REPO, STAGE1_TINY, compare_checkpoints, stage1_overrides
from safetensors.torch import load_file

from egoforge.egoagent.train.engine import read_log
from egoforge.tools.cli import main as cli

pytestmark = pytest.mark.gpu
ZERO2 = REPO / "recipes" / "deepspeed" / "ds_z2_config.json"


def torchrun(nproc: int, port: int, overrides: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
               str(port), "-m", "egoforge.tools.cli", "train", str(STAGE1_TINY), *overrides]
    result = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]


def test_bf16_stage1_on_cuda(egoagent_data, tmp_path):
    overrides = stage1_overrides(egoagent_data, tmp_path, max_steps=6, save_steps=6, mixed_precision="bf16",
                                 logging_steps=1, num_workers=2)
    assert cli(["train", str(STAGE1_TINY), *overrides]) == 0
    records = read_log(tmp_path / "trainer_log.jsonl")
    assert len(records) == 6 and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


def test_ddp_on_all_gpus(egoagent_data, tmp_path):
    gpus = torch.cuda.device_count()
    torchrun(gpus, 29681, stage1_overrides(egoagent_data, tmp_path, max_steps=3, save_steps=3,
                                           per_device_batch_size=4, mixed_precision="bf16"))
    assert json.loads((tmp_path / "checkpoint-3" / "trainer_state.json").read_text())["world_size"] == gpus


def test_deepspeed_zero2_resumes_identically(egoagent_data, tmp_path):
    common = dict(max_steps=4, save_steps=2, per_device_batch_size=4, gradient_accumulation_steps=2,
                  deepspeed=ZERO2, save_total_limit=3)
    torchrun(1, 29683, stage1_overrides(egoagent_data, tmp_path / "a", **common))
    torchrun(1, 29685, stage1_overrides(egoagent_data, tmp_path / "b", **common,
                                        resume_from_checkpoint=tmp_path / "a" / "checkpoint-2"))
    for name in ("student.safetensors", "teacher.safetensors", "dino_center.safetensors"):
        left = load_file(str(tmp_path / "a" / "checkpoint-4" / name))
        right = load_file(str(tmp_path / "b" / "checkpoint-4" / name))
        assert all(torch.equal(left[k], right[k]) for k in left), name


def test_ddp_resume_identical_in_fp32(egoagent_data, tmp_path):
    """Two GPUs (or one): exact resume in fp32, where CUDA kernels are deterministic enough to compare."""
    gpus = min(2, torch.cuda.device_count())
    common = dict(max_steps=4, save_steps=2, per_device_batch_size=4, save_total_limit=3)
    torchrun(gpus, 29687, stage1_overrides(egoagent_data, tmp_path / "a", **common))
    torchrun(gpus, 29689, stage1_overrides(egoagent_data, tmp_path / "b", **common,
                                           resume_from_checkpoint=tmp_path / "a" / "checkpoint-2"))
    try:
        compare_checkpoints(tmp_path / "a" / "checkpoint-4", tmp_path / "b" / "checkpoint-4")
    except AssertionError:
        pytest.xfail("non-deterministic CUDA reductions (set CUBLAS_WORKSPACE_CONFIG for bitwise equality)")


def test_300m_step_at_the_paper_crops(egoagent_data, tmp_path):
    overrides = stage1_overrides(egoagent_data, tmp_path, max_steps=2, save_steps=2, per_device_batch_size=8,
                                 mixed_precision="bf16", **{"model.size": "300m", "model.image_size": 224,
                                                            "data.local_crop_size": 112,
                                                            "data.local_crops_number": 6,
                                                            "data.photometric_augmentation": "true",
                                                            "model.gradient_checkpointing": "true"})
    assert cli(["train", str(STAGE1_TINY), *overrides]) == 0
    spec = json.loads((tmp_path / "checkpoint-2" / "network.json").read_text())
    assert spec["backbone"]["hidden_size"] == 1024 and spec["head"]["out_dim"] == 65536
