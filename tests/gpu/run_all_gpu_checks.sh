#!/usr/bin/env bash
# Every GPU-only check of every area, on a CUDA machine, in egoforge's environment (make setup; pip install vllm
# and "verl[vllm]==0.9.1" first for the vLLM paths). Each area's script can also be run alone.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
status=0
for script in tests/gpu/run_gpu_checks.sh tests/ego3s/run_ego3s_gpu.sh tests/evalsuite/run_gpu_evalsuite.sh \
              tests/egoagent/run_gpu_checks.sh tests/egom2p/run_gpu_checks.sh tests/lego/run_lego_gpu_checks.sh; do
  echo "=== $script"
  bash "$script" || { echo "FAILED: $script"; status=1; }
done
exit $status
