"""GPU-only EgoM2P checks (skipped without CUDA; run `bash tests/egom2p/run_gpu_checks.sh` on a GPU machine).

- the tiny recipe through the real trainer in bf16 mixed precision on CUDA;
- one bf16 training step of the paper's 400M model at the 2048 / 2048 budget;
- the Cosmos DV4x8x8 adapter on NVIDIA's real encoder.jit / decoder.jit, when EGOFORGE_COSMOS_DIR points at them
  (16 x 256 x 256 -> 5 x 32 x 32 tokens below 64,000, and a faithful reconstruction).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from egoforge.tools.cli import main as cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.gpu


def test_tiny_recipe_bf16_on_cuda(tmp_path, egom2p_tokens):
    args = ["train", str(REPO / "recipes" / "egom2p_tiny.yaml"), f"data.root={egom2p_tokens}",
            f"output_dir={tmp_path / 'run'}", "max_steps=20", "mixed_precision=bf16", "progress=false",
            "logging_steps=5"]
    assert cli(args) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]


def test_base_model_step_bf16():
    from egoforge.egom2p.masking import MaskingConfig, mask_sample
    from egoforge.egom2p.modalities import modality_table
    from egoforge.egom2p.model import EgoM2P, ModelConfig
    from egoforge.egom2p.shards import assemble

    table = modality_table()
    model = EgoM2P(ModelConfig(), table).cuda()
    rng = np.random.default_rng(0)
    sizes = [m.num_tokens for m in table.values()]
    samples = [("d", f"k{i}", {k: rng.integers(0, m.vocab_size, m.num_tokens) for k, m in table.items()})
               for i in range(2)]
    masks = [mask_sample(rng, MaskingConfig(), sizes, np.ones(4, bool), np.ones(4, bool)) for _ in samples]
    mods = {m: {k: v.cuda() for k, v in d.items()} for m, d in assemble(samples, table, masks)["modalities"].items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss, parts = model(mods, 2048, 2048)
    loss.backward()
    assert torch.isfinite(loss) and 9 < loss.item() < 12  # about log(64000) at initialisation for video targets


@pytest.mark.skipif(not os.environ.get("EGOFORGE_COSMOS_DIR"),
                    reason="set EGOFORGE_COSMOS_DIR to a folder with Cosmos DV4x8x8 encoder.jit and decoder.jit")
def test_real_cosmos_dv4x8x8_round_trip(egom2p_raw_and_clips):
    from egoforge.egom2p.clips import ClipSettings, prepare_clips
    from egoforge.egom2p.metrics import psnr
    from egoforge.egom2p.tokenizers import load_tokenizer

    clips = egom2p_raw_and_clips.parent / "egom2p_clips_256"
    prepare_clips(egom2p_raw_and_clips / "raw", clips, "synth", ClipSettings(size=256), progress=False)
    rgb = np.load(next(clips.glob("synth/*/rgb.npy")))[None]
    tokenizer = load_tokenizer(os.environ["EGOFORGE_COSMOS_DIR"], "rgb", "cuda")
    tokens = tokenizer.encode(rgb)
    assert tokens.shape == (1, 5, 32, 32) and tokens.min() >= 0 and tokens.max() < 64000
    recon = tokenizer.decode(tokens)
    assert recon.shape == rgb.shape and psnr(recon / 255.0, rgb / 255.0) > 20
