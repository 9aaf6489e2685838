"""Step time of a tiny `llamafactory-cli train` run: stock LLaMA-Factory vs the egoforge start-up hook vs the
egoforge frames-as-video template. Target: hook overhead ratio <= 1.01.

    python benchmarks/sft_step_time.py [--steps 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.llamafactory.launch import train  # noqa: E402
from egoforge.testing.egocross_data import make_support_set  # noqa: E402
from egoforge.testing.recipes import REPO_ROOT, stage_dataset_info, tiny_overrides  # noqa: E402
from egoforge.testing.tiny_models import ensure_tiny_model  # noqa: E402

CONFIGS = [
    ("stock LLaMA-Factory (hook off), qwen3_vl, loose frames", {"EGOFORGE_DISABLE_LF_HOOK": "1"}, "qwen3_vl", {}),
    ("egoforge hook on, qwen3_vl, loose frames", {}, "qwen3_vl", {}),
    ("egoforge hook on, qwen3_vl_ego_frames, frames as video", {}, "qwen3_vl_ego_frames", {"video_fps": 0.5}),
]


def step_time(work: Path, model: Path, steps: int, env: dict, template: str, extra: dict, tag: str) -> float:
    out = work / f"out_{tag}"
    overrides = tiny_overrides(model, work / "dataset_info", work / "data" / "egocross", out, max_steps=steps,
                               per_device_train_batch_size=4, template=template, logging_steps=steps, **extra)
    train(REPO_ROOT / "recipes" / "egocross_lora.yaml", overrides, out / "train.log", cwd=work, env=env)
    results = json.loads((out / "all_results.json").read_text())
    return results["train_runtime"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = ensure_tiny_model("qwen3_vl")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_support_set(work / "data" / "egocross", per_domain=20, frames=(4, 8))
        stage_dataset_info(work)
        rows, stock = [], None
        for i, (name, env, template, extra) in enumerate(CONFIGS):
            times = [step_time(work, model, args.steps, env, template, extra, f"{i}_{r}") for r in range(args.repeat)]
            median = statistics.median(times)
            stock = stock or median
            rows.append([name, f"{1000 * median:.1f}", f"{1000 * min(times):.1f}", f"{median / stock:.3f}"])
    print(f"tiny Qwen3-VL LoRA SFT, batch 4, {args.steps} steps x {args.repeat} runs (trainer train_runtime / step)")
    print(table(["configuration", "median ms/step", "min ms/step", "ratio vs stock"], rows))
    print("(the frames-as-video row trains on half the visual tokens: see frames_as_video.py)")

    def start(disable: bool) -> None:
        env = {**os.environ, **({"EGOFORGE_DISABLE_LF_HOOK": "1"} if disable else {})}
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)

    off, _ = timeit(lambda: start(True), repeat=15)
    on, _ = timeit(lambda: start(False), repeat=15)
    print(f"\ninterpreter start (python -c pass): hook off {1000 * off:.1f} ms, hook on {1000 * on:.1f} ms, "
          f"ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
