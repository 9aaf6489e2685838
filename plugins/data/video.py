"""Video files, the one place egoforge touches PyAV: probe, decode, sample frames, encode.

PyAV ships its own FFmpeg libraries, so decoding needs no decord, system FFmpeg or torchcodec. Every pipeline reads
video through this module; nothing above ``egoforge.data`` imports ``av`` (``tests/test_media_layer.py`` checks).

Which frames a pipeline keeps is still its own rule (a later step unifies the samplers). Each rule lives here as a
named function so the choice stays exactly what that pipeline did:

- :func:`decode_first_frame` — dataset validation: does the file decode at all.
- :func:`decode_all` — every frame of the stream (Qwen-VL clips go through :mod:`egoforge.data.clip`, which
  decodes only the frames it keeps).
- :func:`decode_indices` / :func:`decode_indices_seeking` — lmms-eval tasks: frames at native-timeline indices,
  sequentially or by seeking to keyframes (constant frame rate).
- :func:`iter_every_nth` — EgoAgent extraction: every ``every``-th frame, errors as :class:`VideoError`.
- :func:`iter_nearest_frames` — EgoM2P clips: the frame nearest to each query time, in one decoding pass.
- :func:`sample_spread` — report thumbnails: ``count`` seeks spread evenly over the duration.

:func:`encode_video` / :func:`write_video` write H.264 or MPEG-4 mp4s (used by the generated test data).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from egoforge.data.atomic import atomic_write_bytes


class VideoError(ValueError):
    """A video cannot be used; the message names the file (and the frame when decoding failed)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream.

    ``fps``: average frame rate, else FFmpeg's guess, else 0.0 (unknown: each caller applies its own default).
    ``frames``: the stated frame count, 0 when the container does not say. ``start``: seconds of the stream's first
    timestamp (0.0 when unstated). ``duration``: seconds, the stream's, else the container's, else None.
    """

    fps: float
    frames: int
    width: int
    height: int
    start: float = 0.0
    duration: float | None = None


def _av():
    import av  # imported on first use: PyAV loads FFmpeg's libraries, which most commands never need

    return av


@contextmanager
def _open(path: str | os.PathLike):
    with _av().open(str(path)) as container:
        yield container


def _start_seconds(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Probe the first video stream (no decoding); :class:`VideoError` names the file when it has none or is no
    video at all."""
    av = _av()
    try:
        with _open(path) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = None
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            return VideoInfo(fps=fps, frames=int(stream.frames or 0), width=stream.codec_context.width,
                             height=stream.codec_context.height, start=_start_seconds(stream), duration=duration)
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{path}: cannot open as a video ({exc})") from None


def duration_by_decoding(path: str | os.PathLike) -> float:
    """Seconds of a stream whose container states no duration: decoded frames over the average rate (30 when
    unstated); EgoM2P's fallback."""
    with _open(path) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(video=0)) / float(stream.average_rate or 30)


def to_pil(frame) -> Image.Image:
    """A decoded frame as an RGB PIL image."""
    return frame.to_image().convert("RGB")


def to_rgb_array(frame) -> np.ndarray:
    """A decoded frame as an (H, W, 3) uint8 array."""
    return frame.to_ndarray(format="rgb24")


# ---- samplers, one per caller rule ----

def decode_first_frame(path: str | os.PathLike) -> None:
    """Decode only the first frame (a readability check, nothing converted); PyAV's own exception says why not."""
    with _open(path) as container:
        next(container.decode(video=0))


def decode_all(path: str | os.PathLike) -> tuple[list[Image.Image], float | None]:
    """Every frame of the first video stream as PIL images (``frame.to_image()``, not copied), and the stream's
    average rate else guessed rate (None when neither is stated)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        frames = [frame.to_image() for frame in container.decode(video=0)]
    return frames, float(rate) if rate else None


def decode_indices(path: str | os.PathLike, keep: set[int] | None) -> tuple[dict[int, Image.Image], int]:
    """Decode frames in order, keeping (as RGB PIL images) those in ``keep`` (all when None) and stopping after the
    last wanted one; returns them by index and the number of frames decoded (``keep=set()`` counts every frame)."""
    kept: dict[int, Image.Image] = {}
    count = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = max(keep) if keep else None
        for index, frame in enumerate(container.decode(stream)):
            count = index + 1
            if keep is None or index in keep:
                kept[index] = to_pil(frame)
            if last is not None and index >= last:
                break
    return kept, count


def decode_indices_seeking(path: str | os.PathLike, keep: list[int], fps: float) -> dict[int, Image.Image] | None:
    """Seek to the keyframe before each wanted frame and decode forward to it (sparse sampling of long videos).

    A frame's index is its timestamp times ``fps``, so this needs a constant frame rate and presentation
    timestamps; it returns None when the file does not provide them (decode sequentially instead).
    """
    kept: dict[int, Image.Image] = {}
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base, start = stream.time_base, stream.start_time or 0
        if not base:
            return None
        for index in keep:
            container.seek(start + int(index / fps / base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    return None
                position = round(float((frame.pts - start) * base) * fps)
                if position >= index:
                    kept[index] = to_pil(frame)
                    break
    return kept if len(kept) == len(set(keep)) else None


def iter_every_nth(path: str | os.PathLike, every: int) -> Iterator[tuple[int, Image.Image]]:
    """Yield ``(source frame index, image)`` for every ``every``-th decoded frame (0, every, 2*every, ...);
    a decoder failure becomes a :class:`VideoError` naming the file and the last good frame."""
    av = _av()
    index = -1
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                if index % every == 0:
                    yield index, frame.to_image()
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: decoding failed after frame {index} ({exc})") from None


def iter_nearest_frames(path: str | os.PathLike, query: np.ndarray, seek_s: float | None = None,
                        stats: dict | None = None) -> Iterator[np.ndarray]:
    """Yield, for each query time (ascending, seconds from the stream start), the nearest frame as (H, W, 3) uint8.

    One decoding pass; a tie goes to the earlier frame, queries after the last frame get the last frame. Only the
    picked frames are converted and nothing else is kept, so memory does not grow with the video. ``seek_s``:
    start at the keyframe before this time (a resumed run does not replay the stream). ``stats["frames_decoded"]``
    counts the decoded frames. :class:`VideoError` when the video has no decodable frame.
    """
    query = np.asarray(query, dtype=np.float64)
    if len(query) and np.any(np.diff(query) < 0):
        raise ValueError("query times must be ascending")
    j = 0
    prev = None  # (time, frame) of the previous decoded frame
    stats = stats if stats is not None else {}
    stats.setdefault("frames_decoded", 0)
    with _open(path) as container:
        stream = container.streams.video[0]
        start = _start_seconds(stream)
        if seek_s is not None and seek_s > 0:
            container.seek(int((start + seek_s) / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            stats["frames_decoded"] += 1
            t = float(frame.pts * frame.time_base) - start if frame.pts is not None else float(frame.time)
            while j < len(query) and query[j] <= t:
                q = query[j]
                pick = frame if prev is None or (t - q) < (q - prev[0]) else prev[1]
                yield to_rgb_array(pick)
                j += 1
            prev = (t, frame)
            if j == len(query):
                break
        while j < len(query) and prev is not None:  # queries after the last frame's timestamp
            yield to_rgb_array(prev[1])
            j += 1
    if j < len(query):
        raise VideoError(f"{path}: the video has no decodable frames")


def sample_spread(path: str | os.PathLike, count: int,
                  pick: Callable[[int, int], list[int]]) -> list[tuple[float, Image.Image]]:
    """Up to ``count`` frames spread over a video, each with its time in seconds from the stream start.

    With a known duration, seeks to ``start + duration * k / count`` for each k and keeps the first frame at or
    after it (a long video is not decoded end to end; a frame already kept is not repeated). Without one, decodes
    every frame and keeps ``pick(n_frames, count)``. ValueError when nothing decodes.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        start = _start_seconds(stream)
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        if not duration:
            decoded = [(float(f.time or 0.0) - start, f.to_image()) for f in container.decode(stream)]
            return [decoded[i] for i in pick(len(decoded), count)]
        picked: list[tuple[float, Image.Image]] = []
        for k in range(count):
            target = start + duration * k / count
            container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
            frame = None
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= target - 1e-6:
                    break
            if frame is not None and frame.time is not None and (not picked or frame.time - start > picked[-1][0]):
                picked.append((float(frame.time) - start, frame.to_image()))
        if not picked:
            raise ValueError("no decodable frames")
        return picked


# ---- encoding ----

def _rgb_array(frame: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"))
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"a video frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return frame


def encode_video(frames: Iterable[Image.Image | np.ndarray], fps: float | Fraction, codec: str = "libx264",
                 options: dict[str, str] | None = None, gop: int | None = None,
                 pix_fmt: str = "yuv420p") -> bytes:
    """Encode RGB frames (PIL images or (H, W, 3) uint8 arrays, all one size) as an mp4; returns its bytes.

    ``fps`` may be a Fraction (e.g. 30000/1001); a float is turned into one with a denominator up to 1000.
    ``gop``: keyframe interval (libx264's default puts one keyframe in a short video).
    """
    av = _av()
    rate = fps if isinstance(fps, (int, Fraction)) else Fraction(fps).limit_denominator(1000)
    buf = io.BytesIO()
    stream = None
    with av.open(buf, mode="w", format="mp4") as container:
        for frame in frames:
            array = _rgb_array(frame)
            if stream is None:
                if codec == "libx264" and pix_fmt.startswith("yuv420") and any(n % 2 for n in array.shape[:2]):
                    raise ValueError(f"libx264 {pix_fmt} needs an even width and height, got "
                                     f"{array.shape[1]}x{array.shape[0]} (pass pix_fmt='yuv444p')")
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = array.shape[:2]
                stream.pix_fmt = pix_fmt
                if options:
                    stream.options = dict(options)
                if gop:
                    stream.codec_context.gop_size = gop
            elif array.shape[:2] != (stream.height, stream.width):
                raise ValueError(f"frame of size {array.shape[1]}x{array.shape[0]} in a "
                                 f"{stream.width}x{stream.height} video")
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def write_video(path: str | os.PathLike, frames: Iterable[Image.Image | np.ndarray], fps: float | Fraction,
                **encoding) -> Path:
    """:func:`encode_video` written atomically to ``path`` (parent folders created); returns the path."""
    return atomic_write_bytes(Path(path), encode_video(frames, fps, **encoding))
