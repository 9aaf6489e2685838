"""CSM generations per sample, and what batching buys, with the transformers sampler on a tiny Qwen2.5-VL (CPU).

* generations per sample: egoforge generates the masked condition only for the coarse survivors, so a sample
  costs G x (2 + coarse keep rate) responses instead of 3 G for all three conditions everywhere (the official
  code: 2 G, no fine filter). Measured on a real ``run_csm`` and tabulated for other keep rates;
* wall time per sample with one request per ``generate`` call vs batches of 8 (each request yields G samples
  through ``num_return_sequences``). The tiny model is warm-started on the answer format (so rewards, and the
  coarse keep rate, are not all zero); it measures the pipeline's overhead, not a 7B model's compute. On a GPU
  the vLLM sampler takes the same requests.

    python benchmarks/ego3s_csm.py [--samples 16] [--new-tokens 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

from egoforge.ego3s.csm import CSMConfig  # noqa: E402
from egoforge.ego3s.csm_run import CSMRunOptions, run_csm  # noqa: E402
from egoforge.ego3s.generation import SamplingSettings, TransformersSampler  # noqa: E402
from egoforge.ego3s.media import FrameBudget  # noqa: E402
from egoforge.testing.ego3s_data import make_video_r1_dataset, warm_start_format  # noqa: E402
from egoforge.testing.tiny_models import ensure_tiny_model  # noqa: E402

G = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    import json

    budget = FrameBudget(max_pixels=112 * 84, min_pixels=28 * 28, image_max_pixels=112 * 84, max_frames=8)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = make_video_r1_dataset(Path(tmp) / "data", n=args.samples, seed=0)
        model = warm_start_format(ensure_tiny_model("qwen2_5_vl"), Path(tmp) / "warm",
                                  json.loads(source.read_text()), steps=40)
        timings = {}
        for batch in (1, 8):
            sampler = TransformersSampler(str(model), SamplingSettings(n=G, max_new_tokens=args.new_tokens,
                                                                       batch_size=batch))
            opts = CSMRunOptions(csm=CSMConfig.preset("paper"), budget=budget, batch_size=batch)
            start = time.perf_counter()
            result = run_csm(source, Path(tmp) / f"csm_b{batch}", sampler, opts)
            timings[batch] = (time.perf_counter() - start, result.summary)
        seconds, summary = timings[8]
        measured = summary["generations_per_sample"]
        keep = summary["coarse_kept"] / summary["samples"]
        rows.append([f"measured run (coarse keep {100 * keep:.0f}%)", f"{measured:.1f}", f"{3 * G}",
                     f"{measured / (3 * G):.2f}"])
    for rate in (0.1, 0.265, 0.5, 1.0):
        rows.append([f"coarse keep rate {100 * rate:.1f}%", f"{G * (2 + rate):.2f}", f"{3 * G}",
                     f"{(2 + rate) / 3:.2f}"])
    rows.append(["official preset (no fine filter)", f"{2 * G}", f"{3 * G}", f"{2 / 3:.2f}"])
    print(f"CSM on {args.samples} generated samples, G={G}, {args.new_tokens} new tokens, tiny Qwen2.5-VL on CPU")
    print(table(["case", "generations/sample", "all 3 conditions", "ratio"], rows))
    one, eight = timings[1][0], timings[8][0]
    print(table(["generate calls", "s/sample", "speed-up"], [
        ["1 request per call", f"{one / args.samples:.2f}", "1.00"],
        ["8 requests per call", f"{eight / args.samples:.2f}", f"{one / eight:.2f}"],
    ]))


if __name__ == "__main__":
    main()
