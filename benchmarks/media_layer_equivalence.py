"""Frame choice unchanged by the media layer: each pipeline's old decoder (a git revision) vs today's, same frames.

Loads the six pre-media-layer decoding modules from ``--rev`` (default e8116ae4, the tree before issue 12's media
layer) beside today's and compares what they return on generated videos: odd sizes, an NTSC rate, long H.264 with
keyframes (seeking), variable frame rate, a clip shorter than the requests. Prints the number of identical
comparisons; an assertion names the first difference.

    python benchmarks/media_layer_equivalence.py [--rev e8116ae4]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import numpy as np

from egoforge.data import video as V
from egoforge.ego3s import media as ego3s_media
from egoforge.egom2p import clips
from egoforge.inspect import thumbnails
from egoforge.lmms import media as lmms_media

ROOT = Path(__file__).resolve().parents[1]
LMMS_REQUESTS = [dict(max_frames=8), dict(sample_fps=1.0), dict(max_frames=64), dict(start=0.2, end=1.1, max_frames=4)]


def _old_module(tree: Path, rel: str, name: str):
    spec = importlib.util.spec_from_file_location(name, tree / "plugins" / rel)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _frames(n: int, height: int, width: int) -> list[np.ndarray]:
    colours = [np.array([(37 * i) % 256, (91 * i + 40) % 256, (23 * i + 200) % 256], np.uint8) for i in range(n)]
    return [np.broadcast_to(c, (height, width, 3)).copy() for c in colours]


def _write_vfr(path: Path, times: list[float]) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "rgb24"
        stream.codec_context.time_base = Fraction(1, 1000)
        for t, array in zip(times, _frames(len(times), 24, 32)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def compare(old_tree: Path, work: Path) -> int:
    o_lmms = _old_module(old_tree, "lmms/media.py", "old_lmms_media")
    o_ego3s = _old_module(old_tree, "ego3s/media.py", "old_ego3s_media")
    o_clips = _old_module(old_tree, "egom2p/clips.py", "old_egom2p_clips")
    o_thumbs = _old_module(old_tree, "inspect/thumbnails.py", "old_thumbnails")
    o_frames = _old_module(old_tree, "egoagent/data/frames.py", "old_egoagent_frames")
    videos = {
        "odd 33x17 6 fps": V.write_video(work / "odd.mp4", _frames(40, 17, 33), 6, gop=4, codec="libx264rgb",
                                         pix_fmt="rgb24"),
        "ntsc mpeg4": V.write_video(work / "ntsc.mp4", _frames(90, 48, 64), Fraction(30000, 1001), codec="mpeg4"),
        "h264 240 frames": V.write_video(work / "h264.mp4", _frames(240, 64, 96), 30, gop=12),
        "vfr": _write_vfr(work / "vfr.mp4", [0, .1, .5, .55, 1.5, 1.6, 2.9, 3.0]),
        "3 frames": V.write_video(work / "short.mp4", _frames(3, 16, 16), 10, codec="mpeg4"),
    }
    checks = 0
    for name, v in videos.items():
        for kw in LMMS_REQUESTS:
            a, b = o_lmms.sample_video(v, clip="c", **kw), lmms_media.sample_video(v, clip="c", **kw)
            marks = [o_lmms.read_mark(f).index for f in a], [lmms_media.read_mark(f).index for f in b]
            assert _same(a, b) and marks[0] == marks[1], f"lmms sample_video {name} {kw}"
            checks += 1
        for resize in (True, False):
            (fa, ra), (fb, rb) = o_ego3s.load_clip(v, resize=resize), ego3s_media.load_clip(v, resize=resize)
            assert _same(fa, fb) and ra == rb, f"ego3s load_clip {name}"
            checks += 1
        w, h, _, duration = o_clips.video_info(v)
        assert (w, h, duration) == clips.probe_video(v), f"egom2p probe {name}"
        query = np.sort(np.concatenate([np.linspace(0, 4, 33), [0.05, 0.3]]))
        for seek in (None, 0.5):
            q = query[query >= (seek or 0)]
            a = list(o_clips.iter_resampled_frames(v, q, 16, seek))
            b = list(clips.iter_resampled_frames(v, q, 16, seek))
            assert _same(a, b), f"egom2p frames {name} seek={seek}"
            checks += 1
        for count in (1, 4, 50):
            a, b = o_thumbs.sample_video(v, count), V.sample_spread(v, count, thumbnails.pick_evenly)
            assert [t for t, _ in a] == [t for t, _ in b] and _same([i for _, i in a], [i for _, i in b]), name
            checks += 1
        for every in (1, 3):
            a, b = list(o_frames.iter_frames(v, every)), list(V.iter_every_nth(v, every))
            assert [i for i, _ in a] == [i for i, _ in b] and _same([x for _, x in a], [x for _, x in b]), name
            checks += 1
        info = V.video_info(v)
        assert o_frames.video_info(v) == (info.fps, info.frames), f"egoagent video_info {name}"
        checks += 1
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="e8116ae4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.rev, "plugins"], cwd=ROOT, check=True, capture_output=True)
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(Path(tmp) / "old", filter="data")
        (Path(tmp) / "videos").mkdir()
        checks = compare(Path(tmp) / "old", Path(tmp) / "videos")
    print(f"{checks} comparisons of old ({args.rev}) and media-layer decoders: identical frames")


if __name__ == "__main__":
    main()
