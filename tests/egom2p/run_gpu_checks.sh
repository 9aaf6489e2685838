#!/usr/bin/env bash
# EgoM2P checks that need a CUDA GPU (skipped by `make test` on CPU machines). Run from the repository root:
#   bash tests/egom2p/run_gpu_checks.sh          (the sft environment, .venv from locks/sft.txt: `make setup`)
# Optional: EGOFORGE_COSMOS_DIR=/path/to/Cosmos-0.1-Tokenizer-DV4x8x8 (encoder.jit + decoder.jit from
# https://huggingface.co/nvidia/Cosmos-0.1-Tokenizer-DV4x8x8) to check the Cosmos adapter on the real weights.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pytest -q -m gpu tests/egom2p/test_egom2p_gpu.py
# Multi-GPU: the tiny recipe under torchrun on every visible GPU (NCCL), 10 steps.
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -gt 1 ]; then
  WORK=$(mktemp -d)
  "$PY" - "$WORK" <<'PYEOF'
import sys
from egoforge.egom2p.modalities import modality_table
from egoforge.testing.egom2p_data import write_token_shards
grid = {"token_grid": [5, 4, 4], "vocab_size": 200}
write_token_shards(sys.argv[1] + "/tokens", modality_table({"rgb": grid, "depth": grid}),
                   {"synth_all": ("rgb", "depth", "gaze", "cam"), "synth_nogaze": ("rgb", "depth", "cam")}, samples=64)
PYEOF
  "$PY" -m torch.distributed.run --nproc_per_node "$GPUS" -m egoforge.tools.cli train recipes/egom2p_tiny.yaml \
    data.root="$WORK/tokens" output_dir="$WORK/run" max_steps=10 mixed_precision=bf16 progress=false
  grep -q "\"world_size\": $GPUS" "$WORK/run/checkpoint-10/trainer_state.json" && echo "torchrun on $GPUS GPUs: ok"
fi
# Throughput on the GPU (prints figures, asserts nothing).
"$PY" benchmarks/egom2p_train_step.py
"$PY" benchmarks/egom2p_tokenizers.py
