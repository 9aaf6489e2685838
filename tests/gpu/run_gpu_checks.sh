#!/usr/bin/env bash
# GPU end-to-end checks for the foundation (vLLM evaluation backend, bf16 multi-GPU LLaMA-Factory run).
# Usage on a CUDA machine, from the repository root, in egoforge's environment (make setup):
#   pip install vllm        # the vLLM backend is optional; without it that test is skipped
#   bash tests/gpu/run_gpu_checks.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
python -m pytest tests/gpu -m gpu -v "$@"
