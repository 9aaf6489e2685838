#!/usr/bin/env bash
# GPU end-to-end checks for the foundation (vLLM evaluation backend, bf16 multi-GPU LLaMA-Factory run).
# Usage on a CUDA machine, from the repository root:
#   bash tests/gpu/run_gpu_checks.sh
# LLaMA-Factory runs in the sft environment (.venv, locks/sft.txt); the vLLM backend in the rl environment (.venv-rl,
# locks/rl.txt: the vLLM 0.24.0 that verl 0.9.1 pins). Both are installed from the locks first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
make setup setup-rl
# Both environments are checked before any GPU time is spent (hooks, plugins, entry points, locks).
.venv/bin/egoforge doctor
.venv-rl/bin/egoforge doctor
.venv/bin/python -m pytest tests/gpu -m gpu -v -k "not vllm" "$@"
.venv-rl/bin/python -m pytest tests/gpu -m gpu -v -k vllm "$@"
