"""EgoM2P tokenizer and clip-preparation throughput: clips per second.

- camera / gaze VQ tokenizers (the paper's 768-d, 12 + 12 layers, and the tiny test size): encode and decode;
- egoforge's FSQ video tokenizer at the paper's 16 x 256 x 256 clip (5 x 32 x 32 tokens) and at the tiny 32 px;
- clip preparation from an H.264 recording: egoforge's one-pass nearest-frame resampling (only the frames a clip
  uses are converted to RGB) against the stock path of decoding every frame to an array and then picking.

    python benchmarks/egom2p_tokenizers.py [--batch 8] [--repeat 3] [--skip-video-base]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.egom2p.clips import crop_resize, nearest_indices, resample_video  # noqa: E402
from egoforge.egom2p.traj_tokenizer import TrajectoryTokenizer, TrajectoryVQVAE, TrajTokenizerConfig  # noqa: E402
from egoforge.egom2p.video_tokenizer import (  # noqa: E402
    FSQVideoAutoencoder,
    FSQVideoTokenizer,
    VideoTokenizerConfig,
)
from egoforge.testing.egom2p_data import random_camera_clips, random_gaze_clips, write_recording  # noqa: E402

TRAJ_SIZES = {"paper (768, 12+12)": {}, "tiny (64, 2+2)": {"dim": 64, "depth": 2, "num_heads": 4}}
VIDEO_SIZES = {"paper clip 16x256x256": {}, "tiny 16x32x32": {"size": 32, "levels": [8, 5, 5], "base_channels": 8,
                                                                 "channel_mult": [1, 1, 2, 2]}}


def tokenizer_rows(batch: int, repeat: int, skip_video_base: bool, device: str) -> list[list]:
    rows = []
    for modality, make in (("cam", random_camera_clips), ("gaze", random_gaze_clips)):
        clips = make(batch, seed=0)
        for label, arch in TRAJ_SIZES.items():
            torch.manual_seed(0)
            tok = TrajectoryTokenizer(TrajectoryVQVAE(TrajTokenizerConfig(modality=modality, **arch)), device)
            tokens = tok.encode(clips)
            enc, _ = timeit(lambda tok=tok, clips=clips: tok.encode(clips), repeat=repeat)
            dec, _ = timeit(lambda tok=tok, tokens=tokens: tok.decode(tokens), repeat=repeat)
            rows.append([f"{modality} VQ", label, batch, f"{batch / enc:,.1f}", f"{batch / dec:,.1f}"])
    for label, arch in VIDEO_SIZES.items():
        if skip_video_base and not arch:
            continue
        cfg = VideoTokenizerConfig(**arch)
        n = max(1, batch // 8) if not arch else batch
        clips = np.random.default_rng(0).integers(0, 255, (n, cfg.frames, cfg.size, cfg.size, 3), dtype=np.uint8)
        torch.manual_seed(0)
        tok = FSQVideoTokenizer(FSQVideoAutoencoder(cfg), "rgb", device)
        tokens = tok.encode(clips)
        enc, _ = timeit(lambda tok=tok, clips=clips: tok.encode(clips), repeat=repeat)
        dec, _ = timeit(lambda tok=tok, tokens=tokens: tok.decode(tokens), repeat=repeat)
        rows.append(["rgb FSQ video", f"{label} -> {'x'.join(map(str, cfg.token_grid))}", n, f"{n / enc:,.2f}",
                     f"{n / dec:,.2f}"])
    return rows


def stock_resample(path: Path, query: np.ndarray, size: int) -> np.ndarray:
    """The stock way: decode every frame into an RGB array, then pick the nearest ones."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
    return np.stack([crop_resize(frames[i], size) for i in nearest_indices(np.asarray(times), query)])


def preparation_rows(repeat: int) -> list[list]:
    with tempfile.TemporaryDirectory() as tmp:
        video = write_recording(Path(tmp) / "rec", seed=0, seconds=12.0, width=640, height=480,
                                modalities=("rgb",)) / "rgb.mp4"
        query = np.asarray([s + k / 8 for s in (0.0, 2.0, 4.0, 6.0, 8.0) for k in range(16)])
        clips = len(query) // 16
        ours, _ = timeit(lambda: resample_video(video, query, 256), repeat=repeat)
        stock, _ = timeit(lambda: stock_resample(video, query, 256), repeat=repeat)
        assert np.array_equal(resample_video(video, query, 256), stock_resample(video, query, 256))
    return [["rgb clips from 640x480 H.264 @30 fps", f"{clips / stock:,.1f}", f"{clips / ours:,.1f}",
             f"{stock / ours:.2f}x"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-video-base", action="store_true")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"Tokenizers on {device} (fp32, untrained weights: speed does not depend on them), median of {args.repeat}")
    print(table(["tokenizer", "size", "clips per call", "encode clips/s", "decode clips/s"],
                tokenizer_rows(args.batch, args.repeat, args.skip_video_base, device)))
    print()
    print("Clip preparation: 8 fps resampling + centre crop + 256 px lanczos (5 clips of 2 s)")
    header = ["input", "stock clips/s (decode all)", "egoforge clips/s", "speed-up"]
    print(table(header, preparation_rows(args.repeat)))


if __name__ == "__main__":
    main()
