#!/usr/bin/env bash
# Every GPU-only check of every area, on a CUDA machine. Installs both locked environments first (docs/environments.md):
# .venv from locks/sft.txt (LLaMA-Factory, the egoforge trainers) and .venv-rl from locks/rl.txt (verl 0.9.1 + vLLM
# 0.24.0). Each area's script can also be run alone; it installs the environment it needs.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
make setup setup-rl || exit 1
# Both environments are checked before any GPU time is spent (hooks, plugins, entry points, locks).
.venv/bin/egoforge doctor && .venv-rl/bin/egoforge doctor || exit 1
status=0
for script in tests/gpu/run_gpu_checks.sh tests/ego3s/run_ego3s_gpu.sh tests/evalsuite/run_gpu_evalsuite.sh \
              tests/egoagent/run_gpu_checks.sh tests/egom2p/run_gpu_checks.sh tests/lego/run_lego_gpu_checks.sh; do
  echo "=== $script"
  bash "$script" || { echo "FAILED: $script"; status=1; }
done
exit $status
