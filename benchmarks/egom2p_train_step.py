"""EgoM2P training-step throughput (forward + backward + AdamW), tiny and base (400M) configurations.

Tokens per second count each sample's input + target tokens (the paper's budget unit). The stock path is a dense
masked autoencoder over the same modalities: every token of every modality goes through the encoder and every
token is a target. 4M-style budgets (2048 in / 2048 out of 10,300 tokens for base) are what make the run affordable;
the ratio shows by how much.

    python benchmarks/egom2p_train_step.py [--base-batch 1] [--repeat 3] [--skip-base] [--dense-base]

The dense base step attends over 10,300 tokens in 24 layers: minutes on a CPU, so it runs only with --dense-base
(or on a GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.egom2p.masking import MaskingConfig, mask_sample  # noqa: E402
from egoforge.egom2p.modalities import modality_table  # noqa: E402
from egoforge.egom2p.model import SIZES, EgoM2P, ModelConfig  # noqa: E402
from egoforge.egom2p.shards import assemble  # noqa: E402

TINY_TABLE = {"rgb": {"token_grid": [5, 4, 4], "vocab_size": 200},
              "depth": {"token_grid": [5, 4, 4], "vocab_size": 200}}


def make_batch(table, batch: int, masking: MaskingConfig | None, device) -> dict:
    rng = np.random.default_rng(0)
    sizes = [m.num_tokens for m in table.values()]
    samples, masks = [], []
    for i in range(batch):
        samples.append(("bench", f"s{i}", {k: rng.integers(0, m.vocab_size, m.num_tokens) for k, m in table.items()}))
        if masking is None:  # dense: everything visible and everything a target
            masks.append([(np.zeros(n, bool), np.zeros(n, bool)) for n in sizes])
        else:
            masks.append(mask_sample(rng, masking, sizes, np.ones(len(sizes), bool), np.ones(len(sizes), bool)))
    mods = assemble(samples, table, masks)["modalities"]
    return {m: {k: v.to(device) for k, v in d.items()} for m, d in mods.items()}


def measure(size: str, table, batch: int, masking: MaskingConfig, dense: bool, device, repeat: int,
            dtype) -> tuple[float, int]:
    torch.manual_seed(0)
    model = EgoM2P(ModelConfig(**SIZES[size]), table).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    total = sum(m.num_tokens for m in table.values())
    n_in, n_tgt = (total, total) if dense else (masking.num_input_tokens, masking.num_target_tokens)
    mods = make_batch(table, batch, None if dense else masking, device)
    tokens = batch * (sum(int((~d["input_mask"]).sum()) for d in mods.values())
                      + sum(int((~d["target_mask"]).sum()) for d in mods.values())) // batch

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss, _ = model(mods, n_in, n_tgt)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    median, _ = timeit(step, repeat=repeat, warmup=1)
    return median, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-batch", type=int, default=8)
    parser.add_argument("--base-batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--dense-base", action="store_true", help="also time the dense base step (default on GPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else None
    configs = [("tiny", modality_table(TINY_TABLE), args.tiny_batch, MaskingConfig(64, 64))]
    if not args.skip_base:
        configs.append(("base", modality_table(), args.base_batch, MaskingConfig(2048, 2048)))
    rows = []
    for size, modalities, batch, masking in configs:
        total = sum(m.num_tokens for m in modalities.values())
        repeat = args.repeat if size == "tiny" or device.type == "cuda" else 1  # a CPU base step takes ~a minute
        budget_s, budget_tokens = measure(size, modalities, batch, masking, False, device, repeat, dtype)
        row = [size, batch, f"{masking.num_input_tokens}/{masking.num_target_tokens} of {total}",
               f"{budget_s * 1000:.1f}", f"{budget_tokens / budget_s:,.0f}"]
        if size == "tiny" or args.dense_base or device.type == "cuda":
            dense_s, dense_tokens = measure(size, modalities, batch, masking, True, device, repeat, dtype)
            row += [f"{dense_s * 1000:.1f}", f"{dense_tokens / dense_s:,.0f}", f"{dense_s / budget_s:.2f}x"]
        else:
            row += ["n/a", "n/a", "(--dense-base)"]
        rows.append(row)
    print(f"EgoM2P training step on {device.type}{' (bf16 autocast)' if dtype else ' (fp32)'}, median of "
          f"{args.repeat} (base on CPU: 1) after a warm-up step")
    print(table(["config", "batch", "budget in/out of total", "4M step ms", "4M tokens/s", "dense step ms",
                 "dense tokens/s", "step speed-up"], rows))


if __name__ == "__main__":
    main()
