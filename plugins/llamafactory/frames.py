"""Egocentric "frames as one video": turn a sample's loose frames into one Qwen-VL video. Pure, no LLaMA-Factory.

EgoCross-style samples list the pre-sampled frames of one clip as ``<image><image>...`` with an ``images`` list.
Handing them to Qwen-VL as a single video instead (at the rate the frames were sampled) lets Qwen3-VL print a
timestamp per temporal patch and lets Qwen2.5-VL use absolute-time M-RoPE, and halves the visual tokens through
the temporal patch of 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
_RUN = re.compile(r"(?:<image>\s*)*<image>")


class FramesLayoutError(ValueError):
    """The sample's frames cannot be read as one clip (scattered placeholders, mixed images and videos)."""


def frames_to_video(
    messages: Sequence[dict[str, Any]], images: Sequence[Any], videos: Sequence[Any]
) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
    """Return ``(messages, images, videos)`` with all of a sample's images turned into one video.

    The ``<image>`` placeholders must form one contiguous run (whitespace allowed) in one message; that run becomes
    a single ``<video>`` whose frames are ``images`` in order. Samples without images are returned unchanged.
    """
    if not images:
        return list(messages), list(images), list(videos)
    if videos:
        raise FramesLayoutError("a sample with both <image> frames and videos cannot be read as one clip")
    runs = [(i, m) for i, msg in enumerate(messages) for m in _RUN.finditer(str(msg.get("content", "")))]
    if len(runs) != 1:
        raise FramesLayoutError(
            f"expected the {len(images)} <image> frames as one contiguous run in one message, found {len(runs)} runs"
        )
    index, match = runs[0]
    if match.group(0).count(IMAGE_PLACEHOLDER) != len(images):
        raise FramesLayoutError(
            f"{match.group(0).count(IMAGE_PLACEHOLDER)} <image> placeholders but {len(images)} images"
        )
    converted = [dict(m) for m in messages]
    content = converted[index]["content"]
    converted[index]["content"] = content[: match.start()] + VIDEO_PLACEHOLDER + content[match.end():]
    return converted, [], [list(images)]


def qwen3_video_layout_problem(messages: Sequence[dict[str, Any]]) -> str | None:
    """Why LLaMA-Factory 0.9.5's Qwen3-VL plugin would expand this sample's videos wrongly, or None if it will not.

    Its ``process_messages`` takes a video's metadata (frame indices, fps -> the ``<t seconds>`` timestamps) from
    ``video_metadata[message index]`` and every video's frame count from the first video: right only for one video
    in the first message. Several videos, or a video in a later turn, get another clip's timestamps and token count
    (or an IndexError). Upstream fixed this in LLaMA-Factory PR #10518, after 0.9.5.
    """
    where = [i for i, msg in enumerate(messages) for _ in range(str(msg.get("content", "")).count(VIDEO_PLACEHOLDER))]
    if len(where) > 1:
        return (f"{len(where)} videos in one sample: LLaMA-Factory 0.9.5's Qwen3-VL plugin expands every video with "
                "the first one's frame count and looks metadata up by message index (fixed upstream by PR #10518, "
                "not in 0.9.5); put one clip per sample")
    if where and where[0] != 0:
        return (f"the video sits in message {where[0]}: LLaMA-Factory 0.9.5's Qwen3-VL plugin reads its timestamps "
                "from video_metadata[message index] (fixed upstream by PR #10518, not in 0.9.5); put the clip in "
                "the first user message")
    return None


def batch_frames_to_videos(
    images: Sequence[Any], videos: Sequence[Any], imglens: Sequence[int], vidlens: Sequence[int]
) -> tuple[list[Any], list[int]]:
    """Collator side of :func:`frames_to_video`: regroup a batch's flat image list into one video per sample.

    Returns the new flat video list (in sample order, matching the ``<video>`` tokens) and per-sample video counts.
    """
    out_videos: list[Any] = []
    out_lens: list[int] = []
    img_at = vid_at = 0
    for n_img, n_vid in zip(imglens, vidlens):
        if n_img and n_vid:
            raise FramesLayoutError("a sample with both <image> frames and videos cannot be read as one clip")
        if n_img:
            out_videos.append(list(images[img_at: img_at + n_img]))
            out_lens.append(1)
        else:
            out_videos.extend(videos[vid_at: vid_at + n_vid])
            out_lens.append(n_vid)
        img_at += n_img
        vid_at += n_vid
    return out_videos, out_lens
