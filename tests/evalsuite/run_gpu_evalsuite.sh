#!/usr/bin/env bash
# GPU checks of the benchmark suite (egoforge evaluate suite on the vLLM and CUDA transformers backends).
# Usage on a CUDA machine, from the repository root:
#   bash tests/evalsuite/run_gpu_evalsuite.sh
# It runs in the sft environment (.venv from locks/sft.txt, which holds lmms-eval), installed first. That lock has no
# vLLM (verl's vLLM needs transformers 5.9.0, LLaMA-Factory caps it at 5.6.0), so the in-process vLLM test skips.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
make setup
.venv/bin/python -m pytest tests/evalsuite/test_evalsuite_gpu.py -m gpu -v "$@"
