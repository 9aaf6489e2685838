#!/usr/bin/env bash
# Resolve egoforge's two locked environments from setup.cfg for Linux x86_64, Python 3.11 (`make lock`).
# sft: LLaMA-Factory 0.9.5 + verl's CPU classes + lmms-eval + diffusers (transformers 5.5.x, torch 2.14.1).
# rl:  verl 0.9.1 with its `vllm` extra (vLLM 0.24.0, torch 2.11.0, transformers 5.9.0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV=${UV:-uv}
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line)
"$UV" pip compile setup.py "${common[@]}" --extra sft --extra verl --extra eval --extra diffusion --extra shards \
  --extra inspect --extra dev -o locks/sft.txt "$@"
"$UV" pip compile setup.py "${common[@]}" --extra rl --extra dev -o locks/rl.txt "$@"
echo "locks/sft.txt and locks/rl.txt written; now run: make test test-rl"
