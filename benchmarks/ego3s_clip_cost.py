"""Cost of the grounded reward's CLIP term per training step, one rollout at a time vs batched across the step,
with CLIP ViT-L/14 built from its config (random weights: the compute is that of the real model, the similarities
are meaningless).

Both modes run egoforge's real code path (``TransformersClip``, caches on): *one at a time* is what a reward
manager calling CLIP per rollout costs (each prompt's image is encoded once, its G rollouts share it); *batched* is
the ``ego3s_irl`` manager's path, every rollout of the step awaiting ``ClipBatcher`` concurrently, which encodes
the step's new images ``--micro-batch`` per forward pass. The measured step (``--prompts`` x ``--rollouts``) is
projected linearly per prompt to the official step (8 x 5) and to 512 x 5 (conservative for the batched mode: a
larger step fills the micro-batches better than a small measured one).

    python benchmarks/ego3s_clip_cost.py [--prompts 4] [--repeat 2] [--micro-batch 64] [--device cpu|cuda] \
        [--model tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

NEW_NAMES_PER_PROMPT = 2  # object names not yet in the text cache, per prompt (most repeat: hand, cup, knife, ...)
COMMON_NAMES = ["hand", "cup", "knife", "cutting board", "bowl", "phone", "door", "spoon"]
SIZES = {  # (text, vision, projection) configs; vit-l14 is openai/clip-vit-large-patch14's shape
    "vit-l14": (dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
                dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                     image_size=224, patch_size=14), 768),
    "tiny": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
             dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=224,
                  patch_size=14), 16),
}


def build_clip(size: str):
    """A random-weight CLIPModel of the given size and a processor with a character-level tokenizer (no hub)."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    text, vision, projection = SIZES[size]
    text = dict(text, vocab_size=49408, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection))
    return model, CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer)


def step_requests(folder: Path, prompts: int, rollouts: int, seed: int = 0) -> list[tuple[list[str], str]]:
    """One interaction image per prompt; each rollout lists 2-3 names, NEW_NAMES_PER_PROMPT new per prompt."""
    import numpy as np
    from PIL import Image

    rng = random.Random(seed)
    pixels = np.random.default_rng(seed)
    requests = []
    for p in range(prompts):
        image = folder / f"roi_{seed}_{p}.png"
        Image.fromarray(pixels.integers(0, 256, (256, 320, 3), dtype=np.uint8)).save(image)
        names = COMMON_NAMES + [f"object {seed}-{p}-{k}" for k in range(NEW_NAMES_PER_PROMPT)]
        requests += [(rng.sample(names, rng.randint(2, 3)), str(image)) for _ in range(rollouts)]
    return requests


def one_at_a_time(backend, requests) -> float:
    start = time.perf_counter()
    for names, image in requests:
        backend.max_similarity(names, image)
    return time.perf_counter() - start


def batched(batcher, requests) -> float:
    async def run():
        await asyncio.gather(*(batcher.max_similarity(names, image) for names, image in requests))

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def main() -> None:
    import torch

    from egoforge.rewards.clip import ClipBatcher, TransformersClip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4, help="prompts of the measured step")
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--micro-batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, alternating; the best is reported")
    parser.add_argument("--model", choices=sorted(SIZES), default="vit-l14")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    model, processor = build_clip(args.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"CLIP {args.model} ({params:.0f} M parameters, random weights) on {args.device}; "
          f"{torch.get_num_threads()} CPU threads; step {args.prompts} prompts x {args.rollouts} rollouts; "
          f"best of {args.repeat}")

    rows, per_prompt = [], {}
    modes = ["one at a time", "batched"]
    order = [modes[(i + r) % 2] for r in range(args.repeat) for i in range(2)]  # alternate: load drifts evenly
    best: dict[str, tuple[float, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm = step_requests(Path(tmp), 1, 1, seed=99)
        for run, mode in enumerate(order):
            backend = TransformersClip.from_model(model, processor, args.device,
                                                  batch_size=1 if mode == "one at a time" else args.micro_batch)
            backend.max_similarities(warm)  # first-call overheads out of the timing
            backend.forward_passes = {"image": 0, "text": 0}
            requests = step_requests(Path(tmp), args.prompts, args.rollouts, seed=run)  # new images and names
            if mode == "one at a time":
                seconds = one_at_a_time(backend, requests)
            else:
                seconds = batched(ClipBatcher(backend, args.micro_batch, wait_s=0.005), requests)
            if mode not in best or seconds < best[mode][0]:
                best[mode] = (seconds, dict(backend.forward_passes))
    for mode in modes:
        seconds, passes = best[mode]
        per_prompt[mode] = seconds / args.prompts
        rows.append([mode, f"{seconds:.2f}", passes["image"], passes["text"], f"{per_prompt[mode]:.2f}",
                     f"{8 * per_prompt[mode]:.1f}", f"{512 * per_prompt[mode] / 60:.1f}"])
    print(table(["mode", "step s", "image passes", "text passes", "s/prompt", "8x5 step s", "512x5 step min"],
                rows))
    print(f"batched / one at a time: {per_prompt['batched'] / per_prompt['one at a time']:.2f}x the time")


if __name__ == "__main__":
    main()
