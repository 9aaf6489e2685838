"""Several processes: each takes its own slice of every global batch (the sampler), and `egoforge train` runs under
torchrun as it does on a multi-GPU machine (here two CPU processes over gloo, via accelerate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lego_helpers import REPO, TINY_RECIPE, tiny_overrides_for

from egoforge.lego.dataset import EpochBatchSampler


def test_processes_take_disjoint_slices_of_the_same_permutation():
    world, batch = 3, 2
    per_rank = [list(EpochBatchSampler(20, batch, seed=7, epoch=1, rank=r, world=world)) for r in range(world)]
    assert all(len(batches) == 20 // (batch * world) for batches in per_rank)
    for step in range(len(per_rank[0])):
        indices = [i for r in range(world) for i, _ in per_rank[r][step]]
        assert len(set(indices)) == batch * world  # one global batch, no overlap
    again = list(EpochBatchSampler(20, batch, seed=7, epoch=1, rank=1, world=world))
    assert again == per_rank[1]  # seeded: a resumed process sees the same batches
    other_epoch = list(EpochBatchSampler(20, batch, seed=7, epoch=2, rank=1, world=world))
    assert other_epoch != per_rank[1]
    resumed = list(EpochBatchSampler(20, batch, seed=7, epoch=1, rank=1, world=world, start_batch=2))
    assert resumed == per_rank[1][2:]


@pytest.mark.slow
def test_egoforge_train_under_torchrun_with_two_processes(lego_work, lego_features, tmp_path, worker_id):
    port = 29850 + (int(worker_id[2:]) if worker_id.startswith("gw") else 0)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "egoforge.tools.cli", "train", str(TINY_RECIPE),
           *tiny_overrides_for(lego_work, lego_features, out, **{"train.max_steps": 2, "train.batch_size": 2,
                                                                 "train.logging_steps": 1})]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"global_step"')]
    assert len(summaries) == 1 and summaries[0]["world_size"] == 2  # printed by the main process only
    state = json.loads((out / "checkpoint-2" / "state.json").read_text())
    assert state == {"global_step": 2, "steps_per_epoch": 16 // (2 * 2), "world_size": 2}
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").exists()
