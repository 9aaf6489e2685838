"""Loose `<image>` frames vs one video (egoforge's frames-as-video templates): visual tokens and prompt length
per EgoCross-style sample, through LLaMA-Factory's own mm plugins, for Qwen3-VL and Qwen2.5-VL.

    python benchmarks/frames_as_video.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.testing.egocross_data import make_support_set  # noqa: E402
from egoforge.testing.tiny_models import ensure_tiny_model  # noqa: E402

PAIRS = {"qwen3_vl": ("qwen3_vl_nothink", "qwen3_vl_nothink_ego_frames"),
         "qwen2_5_vl": ("qwen2_vl", "qwen2_vl_ego_frames")}


def main() -> None:
    import llamafactory.data.template as lf_template
    from transformers import AutoProcessor

    from egoforge.llamafactory.register import register_all

    register_all()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "egocross"
        make_support_set(root, per_domain=5, frames=(6, 12))
        samples = json.loads((root / "train.json").read_text())
        for arch, templates in PAIRS.items():
            processor = AutoProcessor.from_pretrained(ensure_tiny_model(arch))
            for key, value in {"image_max_pixels": 16384, "image_min_pixels": 1024, "video_max_pixels": 16384,
                               "video_min_pixels": 1024, "video_fps": 0.5, "video_maxlen": 64}.items():
                setattr(processor, key, value)
            for name in templates:
                plugin = lf_template.TEMPLATES[name].mm_plugin
                counts = []

                def expand_all(plugin=plugin, counts=counts, processor=processor):
                    counts.clear()
                    for s in samples:
                        frames = [str(root / p) for p in s["images"]]
                        content = plugin.process_messages(s["messages"], frames, [], [], processor)[0]["content"]
                        counts.append(content.count("_pad|>"))

                median, _ = timeit(expand_all, repeat=3)
                rows.append([arch, name, f"{statistics.mean(counts):.1f}",
                             f"{1000 * median / len(samples):.1f}"])
    print(f"{len(samples)} samples, 6-12 frames of 96x64 each (tiny processors)")
    print(table(["model", "template", "visual tokens / sample", "ms / sample (expand + process)"], rows))
    for i in range(0, len(rows), 2):
        print(f"{rows[i][0]}: frames as video uses {float(rows[i + 1][2]) / float(rows[i][2]):.2f}x the tokens")


if __name__ == "__main__":
    main()
