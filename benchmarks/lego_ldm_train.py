"""LEGO LDM training throughput (images/s) for the tiny and the SD-1.5-sized model, against the stock
InstructPix2Pix step (the same UNet with only the CLIP text context, ``use_vllm: false``).

The ratio is the cost of LEGO's VLLM conditioning: the projections, the 2-layer mixer and a cross-attention context
of 77 + 256 + 77 tokens instead of 77. Weights are random (built from configs): only the arithmetic is measured.
The SD-1.5 size (860M-parameter UNet, 256 px frames, 32x32 latents) is measured with batch 1 on CPU; on a GPU use
``--sd-batch 32`` (the paper's per-GPU batch) and ``--device cuda``.

    python benchmarks/lego_ldm_train.py [--device cuda] [--sd-batch 1] [--skip-sd] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _batch(n: int, resolution: int, cfg) -> dict:
    import torch

    gen = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(n, 3, resolution, resolution, generator=gen) * 2 - 1,
             "target": torch.rand(n, 3, resolution, resolution, generator=gen) * 2 - 1,
             "prompt": ["The person reaches for the red cup with the right hand and lifts it up."] * n}
    if cfg.use_vllm:
        tokens = cfg.image_tokens or 256  # recipes read it from the features (null); 256: the official release
        batch["image_features"] = torch.randn(n, tokens, cfg.vllm_image_dim, generator=gen)
        batch["text_features"] = torch.randn(n, cfg.text_tokens, cfg.vllm_text_dim, generator=gen)
    return batch


def images_per_second(model_cfg: dict, use_vllm: bool, batch_size: int, resolution: int, steps: int,
                      device: str, checkpointing: bool = False) -> float:
    """Full optimizer steps (VAE + CLIP encode, UNet forward/backward, AdamW) with the paper's guidance dropout."""
    import torch

    from egoforge.lego.config import ModelConfig
    from egoforge.lego.model import LegoLDM
    from egoforge.train.recipe import build_config

    cfg = build_config(ModelConfig, {**model_cfg, "use_vllm": use_vllm})
    torch.manual_seed(0)
    ldm = LegoLDM.from_config(cfg).to(device)
    if checkpointing:
        ldm.unet.enable_gradient_checkpointing()
    params = list(ldm.unet.parameters()) + (list(ldm.conditioner.parameters()) if ldm.conditioner else [])
    optimizer = torch.optim.AdamW(params, lr=1e-4, foreach=False)  # no multi-tensor copies: SD size fits in RAM
    batch = _batch(batch_size, resolution, cfg)

    def step():
        loss = ldm.training_loss(batch, 0.05)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up (allocations, kernels)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    import torch
    import yaml

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sd-batch", type=int, default=1)
    parser.add_argument("--sd-steps", type=int, default=2)
    parser.add_argument("--skip-sd", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (1: stable figures on a shared 2-core machine; 0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tiny = yaml.safe_load((REPO / "recipes" / "lego_ldm_tiny.yaml").read_text())["model"]
    tiny["image_tokens"] = tiny.get("image_tokens") or 16  # the recipe reads it from the features; 16 as measured
    sd15 = {"pretrained": None}  # empty configs: model.py's SD-1.5 layouts (UNet 8-ch, f=8 VAE, CLIP ViT-L text)
    rows = []
    settings = [("tiny (recipes/lego_ldm_tiny.yaml)", tiny, 8, 32, 20, False)]
    if not args.skip_sd:
        settings.append(("SD-1.5 size (paper)", sd15, args.sd_batch, 256, args.sd_steps, True))
    for name, model_cfg, batch, resolution, steps, checkpointing in settings:
        stock, lego = 0.0, 0.0
        for _ in range(args.repeat):  # interleaved, best of N: other load on the machine hits both alike
            stock = max(stock, images_per_second(model_cfg, False, batch, resolution, steps, args.device,
                                                 checkpointing))
            gc.collect()
            lego = max(lego, images_per_second(model_cfg, True, batch, resolution, steps, args.device,
                                               checkpointing))
            gc.collect()  # the SD-1.5 size needs its memory back before the next model is built
        rows.append([name, batch, f"{resolution} px", f"{stock:.3g}", f"{lego:.3g}", f"{lego / stock:.2f}"])
    print(f"device: {args.device}, torch threads: {torch.get_num_threads()}")
    print(table(["model", "batch", "frames", "InstructPix2Pix img/s", "LEGO (+VLLM) img/s", "ratio"], rows))


if __name__ == "__main__":
    main()
