"""EgoM2P clip preparation: peak memory against recording length (it should not grow), and the cost of a resume.

Generates recordings of increasing length (H.264 video, compressed or stored ``depth.npz``, gaze, camera), prepares
them at the paper's 256 px and reports the peak of Python/numpy allocations (tracemalloc) during ``prepare_clips``,
then deletes the last clip and reports how many frames the resumed run decoded.

    python benchmarks/egom2p_prepare_memory.py [--seconds 10 40] [--size 256]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

from egoforge.egom2p.clips import ClipSettings, prepare_clips  # noqa: E402
from egoforge.testing.egom2p_data import write_recording  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 40.0])
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    rows = []
    for depth_format in ("npz", "npz_stored"):
        for seconds in args.seconds:
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw"
                write_recording(raw / "rec", seed=0, seconds=seconds, width=160, height=120, gop=30,
                                depth_format=depth_format)
                tracemalloc.start()
                start = time.perf_counter()
                counts = prepare_clips(raw, Path(tmp) / "clips", "bench", ClipSettings(size=args.size),
                                       progress=False)
                elapsed = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                last = sorted((Path(tmp) / "clips" / "bench").iterdir())[-1]
                shutil.rmtree(last)
                resumed = prepare_clips(raw, Path(tmp) / "clips", "bench", ClipSettings(size=args.size),
                                        progress=False)
                rows.append([depth_format, f"{seconds:g}", counts["clips"], f"{peak / 2**20:.0f}",
                             f"{elapsed:.1f}", counts["frames_decoded"], resumed["frames_decoded"]])
    print(table(["depth.npz", "seconds", "clips", "peak MiB", "prepare s", "frames decoded", "resume decoded"],
                rows))


if __name__ == "__main__":
    main()
