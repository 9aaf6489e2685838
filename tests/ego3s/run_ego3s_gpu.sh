#!/usr/bin/env bash
# Ego3S GPU checks: two real verl 0.9.1 GRPO steps (vLLM rollouts, ego3s_irl reward manager, ego3s_ecr trainer)
# of a tiny Qwen2.5-VL through recipes/ego3s_grpo_qwen2_5_vl_7b.sh, then a resume from the step-2 checkpoint.
# Usage on a CUDA machine, from the repository root:
#   bash tests/ego3s/run_ego3s_gpu.sh
# It runs in the rl environment (.venv-rl from locks/rl.txt: verl 0.9.1, vLLM 0.24.0, torch 2.11.0), installed first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
make setup-rl
export PATH="$PWD/.venv-rl/bin:$PATH"
.venv-rl/bin/python -m pytest tests/ego3s/test_ego3s_gpu.py -m gpu -v "$@"
