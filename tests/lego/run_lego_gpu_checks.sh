#!/usr/bin/env bash
# LEGO checks that need CUDA (they are skipped on CPU). Run from the repository root on a GPU machine with the
# sft environment active (`make setup && . .venv/bin/activate`, installed from locks/sft.txt):
#   bash tests/lego/run_lego_gpu_checks.sh
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi -L
# 1. the GPU tests: bf16/fp16 LDM training, fp16 sampling with the paper's 100 steps, bf16 feature extraction,
#    one SD-1.5-sized bf16 step (random weights)
python -m pytest tests/lego -m gpu -q -p no:cacheprovider
# 2. multi-GPU training through accelerate (one process per GPU), on the generated data the tests build
GPUS=$(nvidia-smi -L | wc -l)
if [ "$GPUS" -gt 1 ]; then
  python -m pytest tests/lego/test_lego_distributed.py -q -p no:cacheprovider   # 2 processes (gloo/nccl)
fi
# 3. throughput on this GPU: tiny and SD-1.5-sized LDM (paper batch 32 per GPU), feature extraction
python benchmarks/lego_ldm_train.py --device cuda --sd-batch 32 --sd-steps 5
python benchmarks/lego_features.py --batch-size 4
