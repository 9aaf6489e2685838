"""GPU only (skipped on CPU): two real verl 0.9.1 GRPO steps of a tiny Qwen2.5-VL with vLLM rollouts, egoforge's
``ego3s_irl`` reward manager and the ``ego3s_ecr`` trainer, launched through the shipped recipe; then a resume
from the step-2 checkpoint that restores the ECR selection; CSM with the vLLM sampler.
Run with ``bash tests/ego3s/run_ego3s_gpu.sh``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[2]


def _launch(work: Path, model: Path, clip: Path, active: Path, pool: Path, steps: int, log: Path) -> str:
    n_gpus = torch.cuda.device_count()
    overrides = [
        "data.train_batch_size=4", "data.max_prompt_length=4096", "data.max_response_length=64",
        "data.ecr.interval=1", "data.ecr.probe_size=4", "data.ecr.lambda_s=0.0",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4", "actor_rollout_ref.actor.use_dynamic_bsz=False",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.model.use_remove_padding=False",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
        "actor_rollout_ref.rollout.max_num_batched_tokens=8192", "actor_rollout_ref.rollout.max_model_len=4200",
        "reward.num_workers=2", "+reward.custom_reward_function.reward_kwargs.lambda_o=-1.0",
        f"trainer.total_training_steps={steps}", "trainer.save_freq=2", "trainer.test_freq=-1",
        "trainer.val_before_train=False", f"trainer.default_local_dir={work / 'ckpt'}",
        "trainer.resume_mode=auto",
    ]
    # The CSM report of the pool ranks ECR's candidates: every pool sample kept (none rejected).
    pool_ids = [e["problem_id"] for e in pq.read_table(pool).column("extra_info").to_pylist()]
    report = work / "csm_report.json"
    report.write_text(json.dumps({"settings": {"coarse_side": "both"},
                                  "samples": {i: {"coarse_deviation": 0.5, "kept": True} for i in pool_ids}}))
    env = dict(os.environ, MODEL=str(model), CLIP_MODEL=str(clip), TRAIN_FILES=str(active), POOL_FILES=str(pool),
               VAL_FILES=str(active), CSM_REPORT=str(report), N_GPUS=str(n_gpus))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    with open(log, "w") as handle:
        proc = subprocess.run(["bash", str(REPO / "recipes" / "ego3s_grpo_qwen2_5_vl_7b.sh"), *overrides],
                              cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=3600)
    text = log.read_text()
    assert proc.returncode == 0, text[-6000:]
    return text


def test_two_verl_grpo_steps_with_vllm_ego3s_rewards_and_ecr(tmp_path, tiny_qwen2_5_vl, tiny_clip):
    pytest.importorskip("vllm")
    from egoforge.ego3s.convert import convert_file
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    source = make_video_r1_dataset(tmp_path / "data", n=12, seed=0)
    parquet, _ = convert_file(source, tmp_path / "all.parquet")
    table = pq.read_table(parquet)
    pq.write_table(table.slice(0, 8), tmp_path / "active.parquet")
    pq.write_table(table.slice(8), tmp_path / "pool.parquet")
    log = _launch(tmp_path, tiny_qwen2_5_vl, tiny_clip, tmp_path / "active.parquet", tmp_path / "pool.parquet", 2,
                  tmp_path / "train.log")
    assert "ecr/stability" in log and "r_int" in log  # ECR metrics and the manager's group terms were logged
    state = torch.load(tmp_path / "ckpt" / "global_step_2" / "data.pt", weights_only=False)["dataset_state"]
    assert len(state["curriculum"]["slots"]) == 8 and state["curriculum"]["latest"]
    # resume: verl loads data.pt into the dataloader, restoring the identical selection, and trains step 3
    log = _launch(tmp_path, tiny_qwen2_5_vl, tiny_clip, tmp_path / "active.parquet", tmp_path / "pool.parquet", 3,
                  tmp_path / "resume.log")
    assert "Resuming from" in log or "global_step_2" in log
    json.dumps(state)  # the ECR state is plain data


def test_csm_with_the_vllm_sampler(tmp_path, tiny_qwen2_5_vl):
    pytest.importorskip("vllm")
    from egoforge.ego3s.csm_run import CSMRunOptions, run_csm
    from egoforge.ego3s.generation import SamplingSettings, VLLMSampler
    from egoforge.ego3s.media import FrameBudget
    from egoforge.testing.ego3s_data import make_video_r1_dataset

    source = make_video_r1_dataset(tmp_path / "data", n=8, seed=0)
    sampler = VLLMSampler(str(tiny_qwen2_5_vl), SamplingSettings(n=5, max_new_tokens=16), max_model_len=4096,
                          gpu_memory_utilization=0.3)
    result = run_csm(source, tmp_path / "csm", sampler,
                     CSMRunOptions(budget=FrameBudget(max_pixels=112 * 84, max_frames=8)))
    cache = [json.loads(line) for line in (tmp_path / "csm" / "responses.jsonl").read_text().splitlines()]
    assert result.summary["samples"] == 8 and all(len(c["responses"]) == 5 for c in cache)
