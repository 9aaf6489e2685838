"""Cost of the grounded reward's CLIP term per training step, with CLIP ViT-L/14 built from its config (random
weights: the compute is that of the real model, the similarities are meaningless).

Per step, egoforge's ``TransformersClip`` encodes each prompt's interaction image once (its G rollouts share it,
cached) and each object name not seen before (cached across steps). So a step costs about one image encode per
prompt plus a few text encodes. Measured here on this machine's device (CPU without a GPU): one image at a time
(what the backend does) and batches of 8 (what a batched backend could do), and text batches; then projected to
the official step (8 prompts x 5 rollouts) and to 512 prompts x 5 rollouts.

    python benchmarks/ego3s_clip_cost.py [--repeat 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

NEW_NAMES_PER_PROMPT = 2  # object names not yet in the text cache, per prompt (most repeat: hand, cup, knife, ...)


def vit_l14(device: str):
    import torch
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                         max_position_embeddings=77, vocab_size=49408),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=224, patch_size=14),
        projection_dim=768,
    )
    torch.manual_seed(0)
    return CLIPModel(config).to(device).eval()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    model = vit_l14(args.device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    pixels = torch.randn(8, 3, 224, 224, device=args.device)
    tokens = torch.randint(0, 49407, (16, 8), device=args.device)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        model.get_image_features(pixel_values=pixels[:1])  # warm up
        one_image = best(lambda: (model.get_image_features(pixel_values=pixels[:1]), sync()), args.repeat)
        batch8 = best(lambda: (model.get_image_features(pixel_values=pixels), sync()), args.repeat) / 8
        texts16 = best(lambda: (model.get_text_features(input_ids=tokens), sync()), args.repeat) / 16

    rows = []
    for label, prompts in (("official step: 8 prompts x 5 rollouts", 8), ("512 prompts x 5 rollouts", 512)):
        text_cost = prompts * NEW_NAMES_PER_PROMPT * texts16
        rows.append([label, f"{prompts * one_image + text_cost:.2f}", f"{prompts * batch8 + text_cost:.2f}",
                     f"{prompts * 5 * one_image + prompts * 5 * NEW_NAMES_PER_PROMPT * texts16:.2f}"])
    print(f"CLIP ViT-L/14 ({params:.0f} M parameters, random weights) on {args.device}, best of {args.repeat}")
    print(table(["encode", "ms/item"], [["image, one at a time", f"{1000 * one_image:.0f}"],
                                       ["image, in batches of 8", f"{1000 * batch8:.0f}"],
                                       ["text (8 tokens), in batches of 16", f"{1000 * texts16:.1f}"]]))
    print(table(["per training step", "s (cached, 1 by 1)", "s (cached, batched)", "s (no cache)"], rows))
    print(f"assumes {NEW_NAMES_PER_PROMPT} new object names per prompt; one interaction image per prompt")


if __name__ == "__main__":
    main()
