#!/usr/bin/env bash
# Ego3S (CSM-selected data + IRL rewards + ECR curriculum) GRPO of Qwen2.5-VL-3B-Instruct on verl 0.9.1, vLLM rollouts.
# Environment: rl (`make setup-rl`: .venv-rl from locks/rl.txt, verl 0.9.1 + vLLM 0.24.0; docs/environments.md).
#
# Command (repository root, 1 node x 8 GPUs):
#   bash recipes/ego3s_grpo_qwen2_5_vl_3b.sh [extra Hydra overrides ...]
#   (any `key=value` appended here overrides the defaults below; `--cfg job` prints the composed config)
#
# What must exist locally (override the paths with the environment variables named in brackets):
#   models/Qwen2.5-VL-3B-Instruct                [MODEL]     base model
#   models/clip-vit-large-patch14                [CLIP_MODEL] CLIP for the grounded reward (transformers format)
#   data/ego3s/csm/selected.parquet              [TRAIN_FILES] from `egoforge select csm data/ego3s/train.json ...`
#   data/ego3s/pool.parquet                      [POOL_FILES]  the full pool, `egoforge ego3s convert` (ECR refills)
#   data/ego3s/csm/csm_report.json               [CSM_REPORT]  the CSM report over the pool (ranks ECR's candidates;
#                                                              CSM-rejected samples never come back; re-run CSM with
#                                                              a recent checkpoint to refresh it, it is re-read)
#   data/ego3s/val.parquet                       [VAL_FILES]   held-out samples, `egoforge ego3s convert`
#   the rl environment installed: `make setup-rl` (verl 0.9.1 + vLLM 0.24.0 from locks/rl.txt), then run with
#   .venv-rl on the PATH (`. .venv-rl/bin/activate`)
#
# Reproduces: the Ego3S setting on the smaller base model the paper also trains (Qwen2.5-VL-3B-Instruct; the paper's
# 3B numbers were not published, so there is no row to compare with). Same hyperparameters as the 7B recipe;
# the 3B rollout fits one GPU per vLLM engine (tensor parallel 1).
# GRPO, rollout n=5, lr 1e-6 (cosine), weight decay 0.01, KL 0.04 (low_var_kl = the k3 estimator), max prompt 16384 /
# response 768 tokens, grad clip 5 (actor.optim.clip_grad: verl 0.9.1's engine never reads actor.grad_clip),
# per-sequence mean loss (seq-mean-token-mean, TRL 0.14's GRPO loss), 2 epochs.
# Schedule as the official run: one optimizer step = 8 prompts (1 per GPU x 8 GPUs x accumulation 1) x 5 rollouts,
# one policy update per step, so ECR checks, saves and validations every 100 steps fall where the paper's do
# (3,180 samples: 397 steps/epoch, 794 steps, ECR checks at 100..700). `egoforge ego3s plan` prints the schedule;
# docs/ego3s.md lists the larger-batch alternative (interval scaled by 8 / batch).
# IRL reward at the paper's constants (alpha 0.5 on the penalty, N 5, H 1.1, lambda_o 0.21); add
# `reward.custom_reward_function.reward_kwargs.preset=official` for the official code's (0.8 r_int, 0.025, N 8, length
# bonus on; its temporal bonus needs the TRL trainer).
# ECR: probe 500, check every 100 steps, lambda_s 0.6. Frames: 2 fps, 4-16 frames, 128*28*28 pixels per frame.
# The reward is loaded from `reward.custom_reward_function.path` (verl 0.9.1 silently ignores the old top-level
# `custom_reward_function.path`), the manager `ego3s_irl` and trainer `ego3s_ecr` come from egoforge's
# `verl.plugins` entry point: verl is not patched.
set -euo pipefail

MODEL=${MODEL:-models/Qwen2.5-VL-3B-Instruct}
CLIP_MODEL=${CLIP_MODEL:-models/clip-vit-large-patch14}
TRAIN_FILES=${TRAIN_FILES:-data/ego3s/csm/selected.parquet}
POOL_FILES=${POOL_FILES:-data/ego3s/pool.parquet}
VAL_FILES=${VAL_FILES:-data/ego3s/val.parquet}
CSM_REPORT=${CSM_REPORT:-data/ego3s/csm/csm_report.json}
N_GPUS=${N_GPUS:-8}

# Before a launch (not when `--cfg` only composes the config): this environment's lock, egoforge's verl plugin as
# verl loads it (verl only logs a failed plugin at DEBUG) and every input above; exits here naming what is missing.
case " $* " in *" --cfg "*) ;; *) egoforge doctor "$0" ;; esac
# vLLM 0.24's multimodal processor cache is off (mm_processor_cache_gb=0): its key hashes a video's frames but not
# their metadata (vllm/multimodal/parse.py, VideoProcessorItems), so the same frames with other timestamps / fps would
# reuse another request's processed video. verl 0.9.1 turns it off only below vLLM 0.22 (the sleep/wake desync).

python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=grpo \
    algorithm.use_kl_in_reward=False \
    data.train_files="['${TRAIN_FILES}']" \
    data.val_files="['${VAL_FILES}']" \
    data.train_batch_size=8 \
    data.max_prompt_length=16384 \
    data.max_response_length=768 \
    data.filter_overlong_prompts=False \
    data.truncation=error \
    data.dataloader_num_workers=0 \
    data.custom_cls.path=pkg://egoforge.verl.dataset \
    data.custom_cls.name=ECRDataset \
    "+data.ecr.pool_files=['${POOL_FILES}']" \
    +data.ecr.probe_size=500 \
    +data.ecr.interval=100 \
    +data.ecr.lambda_s=0.6 \
    +data.ecr.rescore_file="${CSM_REPORT}" \
    actor_rollout_ref.model.path="${MODEL}" \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.optim.lr_scheduler_type=cosine \
    actor_rollout_ref.actor.optim.weight_decay=0.01 \
    actor_rollout_ref.actor.optim.clip_grad=5.0 \
    actor_rollout_ref.actor.ppo_mini_batch_size=8 \
    actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean \
    actor_rollout_ref.actor.use_dynamic_bsz=True \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=24576 \
    actor_rollout_ref.actor.use_kl_loss=True \
    actor_rollout_ref.actor.kl_loss_coef=0.04 \
    actor_rollout_ref.actor.kl_loss_type=low_var_kl \
    actor_rollout_ref.actor.entropy_coeff=0 \
    actor_rollout_ref.actor.fsdp_config.param_offload=False \
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=False \
    actor_rollout_ref.ref.fsdp_config.param_offload=True \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=5 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.max_num_batched_tokens=24576 \
    actor_rollout_ref.rollout.val_kwargs.n=1 \
    +actor_rollout_ref.rollout.engine_kwargs.vllm.mm_processor_cache_gb=0 \
    reward.custom_reward_function.path=pkg://egoforge.rewards.ego3s \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.preset=paper \
    +reward.custom_reward_function.reward_kwargs.clip_model="${CLIP_MODEL}" \
    reward.reward_manager.name=ego3s_irl \
    reward.num_workers=8 \
    trainer.v1.trainer_mode=ego3s_ecr \
    trainer.n_gpus_per_node="${N_GPUS}" \
    trainer.nnodes=1 \
    trainer.total_epochs=2 \
    trainer.save_freq=100 \
    trainer.test_freq=100 \
    trainer.logger='["console"]' \
    trainer.project_name=ego3s \
    trainer.experiment_name=qwen2_5_vl_3b_ego3s \
    "$@"
