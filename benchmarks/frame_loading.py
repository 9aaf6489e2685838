"""Per-sample frame loading + processor time: raw 1280x720 frames vs frames pre-resized by `egoforge prepare`.

Both paths go through LLaMA-Factory's own Qwen3-VL mm plugin (`_get_mm_inputs`: open, regularize to the recipe's
`image_max_pixels`, then the HF processor) with the EgoCross recipe budget (360000 / 50176).

    python benchmarks/frame_loading.py [--samples 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.data.prepare import prepare_frames  # noqa: E402
from egoforge.testing.egocross_data import make_support_set  # noqa: E402
from egoforge.testing.tiny_models import build_processor, build_tokenizer  # noqa: E402

MAX_PIXELS, MIN_PIXELS = 360000, 50176


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    from llamafactory.data.mm_plugin import Qwen3VLPlugin

    processor = build_processor("qwen3_vl", build_tokenizer(arch="qwen3_vl"), min_pixels=MIN_PIXELS,
                                max_pixels=MAX_PIXELS * 2)
    processor.image_max_pixels, processor.image_min_pixels = MAX_PIXELS, MIN_PIXELS
    plugin = Qwen3VLPlugin("<|image_pad|>", "<|video_pad|>", None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "egocross"
        make_support_set(root, per_domain=max(1, args.samples // 4), frames=(8, 8))
        for frame in (root / "frames").rglob("*.jpg"):  # real EgoCross frames are HD video frames
            with Image.open(frame) as img:
                img.resize((1280, 720), Image.Resampling.BICUBIC).save(frame, quality=92)
        stats = prepare_frames(root / "train.json", Path(tmp) / "cache", MAX_PIXELS, MIN_PIXELS)
        rows = json.loads((root / "train.json").read_text())[: args.samples]
        results = []
        for label, base in (("raw 1280x720 frames", root), ("egoforge prepare cache", Path(tmp) / "cache")):
            def load_all(base=base):
                for row in rows:
                    plugin._get_mm_inputs([str(base / p) for p in row["images"]], [], [], processor)

            median, best = timeit(load_all, repeat=3)
            results.append([label, f"{1000 * median / len(rows):.1f}", f"{1000 * best / len(rows):.1f}"])
    ratio = float(results[0][1]) / float(results[1][1])
    print(f"{len(rows)} samples x 8 frames, budget image_max_pixels={MAX_PIXELS}; {stats.written} frames prepared")
    print(table(["frames", "median ms/sample", "min ms/sample"], results))
    print(f"speed-up from the cache: {ratio:.2f}x")


if __name__ == "__main__":
    main()
