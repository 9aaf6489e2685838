"""Video frame sampling for the benchmark suite: egoforge's PyAV sampler vs lmms-eval's stock ``read_video``.

Both decode an mp4 with PyAV and return 16 frames spread over the clip (the Ego3S protocol's frame budget). The
stock reader (what lmms-eval's video models call) cannot stop early; egoforge's stops at the last frame it needs,
which matters for EgoTextVQA's real-time questions (only the video before the question's timestamp is seen).

    python benchmarks/evalsuite_video_sampling.py [--seconds 30] [--fps 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.lmms.media import sample_video  # noqa: E402
from egoforge.testing.benchdata import write_mp4  # noqa: E402
from egoforge.testing.egocross_data import Scene, render_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    from lmms_eval.models.model_utils.load_video import read_video

    n = args.seconds * args.fps
    clip = render_clip(Scene("Industry", "red", "top left", "right", 3, n, 0), size=(480, 272))
    with tempfile.TemporaryDirectory() as tmp:
        video = str(write_mp4(Path(tmp) / "clip.mp4", clip, args.fps))
        cases = [
            ("lmms-eval read_video (stock), whole clip", lambda: read_video(video, num_frm=args.frames)),
            ("egoforge sample_video, whole clip",
             lambda: sample_video(video, clip="c", max_frames=args.frames)),
            ("egoforge sample_video, real-time window (first 25%)",
             lambda: sample_video(video, clip="c", max_frames=args.frames, end=args.seconds / 4)),
        ]
        rows, medians = [], []
        for label, fn in cases:
            median, best = timeit(fn, repeat=3)
            medians.append(median)
            rows.append([label, f"{1000 * median:.0f}", f"{1000 * best:.0f}"])
    for row, median in zip(rows, medians):
        row.append(f"{medians[0] / median:.2f}x")
    print(f"{args.seconds} s mp4 at {args.fps} fps, 480x272, {args.frames} frames sampled")
    print(table(["reader", "median ms/video", "min ms/video", "speed vs stock"], rows))


if __name__ == "__main__":
    main()
