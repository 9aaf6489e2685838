"""The media layer: only ``egoforge.data`` decodes video, and its API is right on awkward generated videos.

On the tree before the media layer (e8116ae4) the import walk found 9 modules outside plugins/data importing PyAV
(five decoders and four test-data encoders under plugins/testing; the sixth decoder was plugins/data/validate.py);
it must find none now.
"""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from egoforge.data.video import (
    VideoError,
    decode_all,
    decode_first_frame,
    decode_indices,
    decode_indices_seeking,
    duration_by_decoding,
    encode_video,
    iter_every_nth,
    iter_nearest_frames,
    sample_spread,
    video_info,
    write_video,
)

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_AREAS = ("plugins", "tools", "rewards")
MEDIA_LAYER = Path("plugins") / "data"
LOSSLESS = {"codec": "libx264rgb", "pix_fmt": "rgb24", "options": {"crf": "0"}}


def modules_importing(root: Path, package: str) -> list[str]:
    """Modules under ``root``'s product areas (outside the media layer) that import ``package`` or a submodule."""
    found = []
    for area in PRODUCT_AREAS:
        for path in sorted((root / area).rglob("*.py")):
            rel = path.relative_to(root)
            if rel.is_relative_to(MEDIA_LAYER):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                if any(n == package or n.startswith(package + ".") for n in names):
                    found.append(str(rel))
                    break
    return found


def test_only_the_media_layer_imports_pyav():
    assert modules_importing(ROOT, "av") == []


def test_the_import_walk_sees_lazy_and_from_imports(tmp_path):
    """The walk must catch the forms the old decoders used (import inside a function, ``from av import``)."""
    (tmp_path / "plugins" / "data").mkdir(parents=True)
    (tmp_path / "plugins" / "data" / "video.py").write_text("import av\n")
    (tmp_path / "plugins" / "x.py").write_text("def f():\n    import av\n    return av\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "y.py").write_text("from av.error import FFmpegError\n")
    (tmp_path / "rewards").mkdir()
    (tmp_path / "rewards" / "z.py").write_text("import avocado\nfrom .av import thing\n")
    assert modules_importing(tmp_path, "av") == ["plugins/x.py", "tools/y.py"]


# ---- generated videos ----

def _palette(n: int) -> list[np.ndarray]:
    """Flat colours far apart, so a decoded frame's index can be read back from its mean colour."""
    return [np.array([(37 * i) % 256, (91 * i + 40) % 256, (23 * i + 200) % 256], np.uint8) for i in range(n)]


def _frames(n: int, height: int, width: int) -> list[np.ndarray]:
    return [np.broadcast_to(c, (height, width, 3)).copy() for c in _palette(n)]


def _index_of(image, n: int) -> int:
    mean = np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return int(np.argmin([np.abs(mean - c).sum() for c in _palette(n)]))


def _write_vfr(path: Path, times: list[float], height: int = 24, width: int = 32) -> Path:
    """A variable-frame-rate mp4: frame i shown at ``times[i]`` seconds (millisecond time base)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        stream.options = {"crf": "0"}
        stream.codec_context.time_base = Fraction(1, 1000)
        for t, array in zip(times, _frames(len(times), height, width)):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def odd_video(tmp_path_factory) -> Path:
    """12 frames of 33x17 (odd sizes) at 6 fps, lossless, keyframe every 4 frames."""
    return write_video(tmp_path_factory.mktemp("v") / "odd.mp4", _frames(12, 17, 33), 6, gop=4, **LOSSLESS)


def test_video_info_of_an_odd_sized_clip(odd_video):
    info = video_info(odd_video)
    assert (info.width, info.height, info.frames) == (33, 17, 12)
    assert info.fps == pytest.approx(6.0) and info.start == pytest.approx(0.0)
    assert info.duration == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(AttributeError):  # frozen
        info.fps = 1.0


def test_video_info_errors_name_the_file(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="fake.mp4: cannot open as a video"):
        video_info(fake)
    with pytest.raises(VideoError, match="missing.mp4: cannot open as a video"):
        video_info(tmp_path / "missing.mp4")
    import av

    with pytest.raises(av.error.FFmpegError):  # PyAV's own error: validation reports its type and message
        decode_first_frame(fake)


def test_decoders_return_the_right_frames(odd_video):
    decode_first_frame(odd_video)
    frames, fps = decode_all(odd_video)
    assert fps == pytest.approx(6.0) and [_index_of(f, 12) for f in frames] == list(range(12))
    assert all(f.size == (33, 17) for f in frames)
    kept, count = decode_indices(odd_video, {1, 5, 7})
    assert count == 8 and {i: _index_of(f, 12) for i, f in kept.items()} == {1: 1, 5: 5, 7: 7}
    seeking = decode_indices_seeking(odd_video, [2, 9, 11], 6.0)
    assert {i: _index_of(f, 12) for i, f in seeking.items()} == {2: 2, 9: 9, 11: 11}
    assert [(i, _index_of(f, 12)) for i, f in iter_every_nth(odd_video, 5)] == [(0, 0), (5, 5), (10, 10)]


def test_requests_beyond_a_short_clip(odd_video):
    """Asking for more than the clip holds gives what exists (callers decide), never invented frames."""
    kept, count = decode_indices(odd_video, {3, 40})
    assert count == 12 and sorted(kept) == [3]
    assert decode_indices(odd_video, set())[1] == 12  # counting only
    assert decode_indices_seeking(odd_video, [3, 40], 6.0) is None  # cannot deliver every index: caller falls back
    picks = [_index_of(f, 12) for f in iter_nearest_frames(odd_video, np.array([1.0, 5.0, 9.0]))]
    assert picks == [6, 11, 11]  # after the last frame: the last frame
    spread = sample_spread(odd_video, 30, pick=lambda n, k: list(range(n)))
    times = [t for t, _ in spread]
    assert len(spread) == 12 and times == sorted(set(times))  # no frame twice
    assert [_index_of(img, 12) for _, img in spread] == list(range(12))


def test_nearest_frames_follow_timestamps_of_a_variable_rate_clip(tmp_path):
    times = [0.0, 0.1, 0.5, 0.55, 1.5, 1.6]
    video = _write_vfr(tmp_path / "vfr.mp4", times)
    query = np.array([0.0, 0.04, 0.06, 0.3, 0.31, 1.0, 1.06, 1.7])
    picks = [_index_of(f, len(times)) for f in iter_nearest_frames(video, query)]
    assert picks == [0, 0, 1, 1, 2, 3, 4, 5]  # 0.3 is a tie between 0.1 and 0.5: the earlier frame
    stats: dict = {}
    resumed = [_index_of(f, len(times)) for f in iter_nearest_frames(video, query[-2:], seek_s=1.0, stats=stats)]
    assert resumed == [4, 5] and 0 < stats["frames_decoded"] <= len(times)
    assert decode_indices(video, set())[1] == len(times)
    with pytest.raises(ValueError, match="ascending"):
        list(iter_nearest_frames(video, np.array([1.0, 0.5])))


def test_duration_by_decoding_counts_frames_over_the_average_rate(odd_video):
    assert duration_by_decoding(odd_video) == pytest.approx(12 / 6.0)


def test_encoder_refuses_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        encode_video([], 5)
    with pytest.raises(ValueError, match="frame of size 8x6 in a 16x12 video"):
        encode_video([np.zeros((12, 16, 3), np.uint8), np.zeros((6, 8, 3), np.uint8)], 5)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        encode_video([np.zeros((12, 16), np.uint8)], 5)
    with pytest.raises(ValueError, match="even width and height, got 33x17"):
        encode_video(_frames(2, 17, 33), 5)
    assert not list(tmp_path.iterdir())


def test_encoder_keeps_fractional_rates(tmp_path):
    video = write_video(tmp_path / "ntsc.mp4", _frames(4, 16, 16), Fraction(30000, 1001), codec="mpeg4")
    assert video_info(video).fps == pytest.approx(30000 / 1001)
    video = write_video(tmp_path / "float.mp4", _frames(4, 16, 16), 7.5, codec="mpeg4")
    assert video_info(video).fps == pytest.approx(7.5)
