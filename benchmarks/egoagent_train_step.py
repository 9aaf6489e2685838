"""EgoAgent stage-1 training step: images/s of the tiny and 300m configurations through the real trainer step
(student multi-crop forward, teacher forward, DINO loss, backward, centring, clipped AdamW, EMA update), the share
of the DINO loss + centring in that step, and egoforge's pairwise DINO loss against DINO's reference loop.

    python benchmarks/egoagent_train_step.py [--sizes tiny 300m] [--repeat 3] [--batch-300m 2]

CPU: fp32, one thread per core. On a CUDA machine the 300m row runs bf16 with batch 16 (the recipe's
per-device batch) and gradient checkpointing, as recipes/egoagent_stage1_300m.yaml.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.egoagent.data.frames import extract_videos  # noqa: E402
from egoforge.egoagent.ema import ema_update_  # noqa: E402
from egoforge.egoagent.losses import batch_center, dino_loss, update_center  # noqa: E402
from egoforge.egoagent.train.config import Stage1Config  # noqa: E402
from egoforge.egoagent.train.stage1 import Stage1Trainer  # noqa: E402
from egoforge.testing.egoagent_data import make_walking_tours  # noqa: E402
from egoforge.testing.recipes import REPO_ROOT  # noqa: E402
from egoforge.train.recipe import build_config, load_recipe  # noqa: E402

CUDA = torch.cuda.is_available()


def reference_dino_loss(student, teacher, center, student_temp=0.1, teacher_temp=0.04):
    """DINO's own formulation (facebookresearch/dino DINOLoss.forward): a Python loop over view pairs."""
    student_out = [s / student_temp for s in student]
    teacher_out = [torch.softmax((t - center) / teacher_temp, dim=-1).detach() for t in teacher]
    total, terms = 0.0, 0
    for iq, q in enumerate(teacher_out):
        for v, s in enumerate(student_out):
            if v == iq:
                continue
            total = total + torch.sum(-q * torch.log_softmax(s, dim=-1), dim=-1).mean()
            terms += 1
    return total / terms


def trainer_for(size: str, frames: Path, out: Path, batch: int) -> Stage1Trainer:
    overrides = [f"output_dir={out}", f"data.frame_roots=[{frames}]", "progress=false", "num_workers=0",
                 f"per_device_batch_size={batch}", "max_steps=1000", f"model.size={size}"]
    if size != "tiny":  # the paper's crops and local-crop count, from the 300m recipe
        overrides += ["model.image_size=224", "data.local_crop_size=112", "data.local_crops_number=6",
                      "data.photometric_augmentation=true", "data.init_crop_size=300"]
        if CUDA:
            overrides += ["mixed_precision=bf16", "model.gradient_checkpointing=true"]
    recipe = load_recipe(REPO_ROOT / "recipes" / "egoagent_stage1_tiny.yaml", overrides)
    recipe.pop("trainer")
    trainer = Stage1Trainer(build_config(Stage1Config, recipe), recipe)
    trainer.setup()
    return trainer


def measure(trainer: Stage1Trainer, repeat: int) -> dict:
    batch = next(iter(trainer.loader()))
    sync = torch.cuda.synchronize if CUDA else (lambda: None)

    def step() -> None:
        trainer.train_step(batch, 0)
        ema_update_(*trainer.ema_pairs, 0.996)
        sync()

    median, best = timeit(step, repeat=repeat, warmup=1)
    images = batch["global_crops"].shape[0]
    crops = batch["global_crops"].shape[1] + batch["local_crops"].shape[1]
    out_dim = trainer.spec["head"]["out_dim"]
    device = trainer.accelerator.device
    student = torch.randn(crops, images, out_dim, device=device, requires_grad=True)
    teacher = torch.randn(2, images, out_dim, device=device)
    center = torch.zeros(out_dim, device=device)

    def loss_and_centre(fn=dino_loss) -> None:
        fn(student, teacher, center).backward()
        update_center(center, batch_center(teacher), 0.9)
        sync()

    loss_median, _ = timeit(loss_and_centre, repeat=max(repeat, 5), warmup=1)
    reference_median, _ = timeit(lambda: loss_and_centre(reference_dino_loss), repeat=max(repeat, 5), warmup=1)
    data_start = time.perf_counter()
    for index in range(min(8, len(trainer.dataset))):
        trainer.dataset[(index, index)]
    data_per_image = (time.perf_counter() - data_start) / min(8, len(trainer.dataset))
    return {"images": images, "crops": crops, "step_s": median, "best_s": best, "images_per_s": images / median,
            "loss_s": loss_median, "reference_loss_s": reference_median, "augment_s": data_per_image,
            "params_m": sum(p.numel() for p in trainer.student.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "300m"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-tiny", type=int, default=16)
    parser.add_argument("--batch-300m", type=int, default=16 if CUDA else 2)
    args = parser.parse_args()
    if not CUDA:
        torch.set_num_threads(max(1, torch.get_num_threads()))
    rows, loss_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = make_walking_tours(tmp / "wtour", cities=("Venice", "Zurich"), seconds=4, size=(400, 300))
        extract_videos(videos, tmp / "frames", every=2, progress=False)
        for size in args.sizes:
            batch = args.batch_tiny if size == "tiny" else args.batch_300m
            trainer = trainer_for(size, tmp / "frames", tmp / f"out_{size}", batch)
            # A 300m step takes over a minute on a 2-core CPU: one timed step after the warm-up there.
            result = measure(trainer, args.repeat if size == "tiny" or CUDA else 1)
            precision = trainer.config.mixed_precision
            rows.append([size, f"{result['params_m']:.2f}", f"{result['images']} x {result['crops']} crops",
                         precision, f"{result['step_s'] * 1000:.0f}", f"{result['images_per_s']:.3g}",
                         f"{100 * result['loss_s'] / result['step_s']:.1f}%",
                         f"{1 / result['augment_s']:.1f}"])
            loss_rows.append([size, f"{result['loss_s'] * 1000:.2f}", f"{result['reference_loss_s'] * 1000:.2f}",
                              f"{result['reference_loss_s'] / result['loss_s']:.2f}x"])
            del trainer
    device = torch.cuda.get_device_name() if CUDA else f"CPU, {torch.get_num_threads()} threads"
    print(f"EgoAgent stage-1 training step on {device} (median of {args.repeat} after a warm-up step; 300m on CPU: "
          "1; images/s = source frames/s)")
    print(table(["size", "params (M)", "batch", "precision", "ms/step", "images/s", "DINO loss+centre share",
                 "augment img/s/worker"], rows))
    print()
    print("DINO loss + centring, forward and backward (egoforge pairwise einsum vs DINO's reference loop):")
    print(table(["size", "egoforge ms", "reference ms", "speed-up"], loss_rows))


if __name__ == "__main__":
    main()
