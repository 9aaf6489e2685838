#!/usr/bin/env bash
# EgoAgent GPU checks: bf16 training, DDP on every visible GPU, DeepSpeed ZeRO-2 (exact resume), a 300m step at the
# paper's crops, then the training-step benchmark (tiny and 300m, bf16).
# Usage on a CUDA machine, from the repository root (installs the sft environment, .venv from locks/sft.txt, first):
#   bash tests/egoagent/run_gpu_checks.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
make setup
.venv/bin/python -m pytest tests/egoagent -m gpu -v "$@"
.venv/bin/python benchmarks/egoagent_train_step.py
