#!/usr/bin/env bash
# GPU checks of the benchmark suite (egoforge evaluate suite on the vLLM and CUDA transformers backends).
# Usage on a CUDA machine, from the repository root, in egoforge's environment (make setup):
#   pip install vllm        # optional: without it the vLLM test is skipped
#   bash tests/evalsuite/run_gpu_evalsuite.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
nvidia-smi -L
python -m pytest tests/evalsuite/test_evalsuite_gpu.py -m gpu -v "$@"
