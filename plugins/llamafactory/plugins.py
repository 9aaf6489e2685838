"""LLaMA-Factory multimodal plugins (imported only once LLaMA-Factory is)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from llamafactory.data.mm_plugin import Qwen2VLPlugin, Qwen3VLPlugin

from egoforge.data.clip import ClipSettings, load_clip
from egoforge.llamafactory.frames import (
    FramesLayoutError,
    batch_frames_to_videos,
    frames_to_video,
    qwen3_video_layout_problem,
)


class _FramesAsVideoMixin:
    """Feeds each sample's loose ``<image>`` frames to the model as one video sampled at ``video_fps``.

    ``video_fps`` is LLaMA-Factory's own recipe key (default 2.0); set it to the rate the frames were sampled at
    (0.5 for EgoCross) so the timestamps Qwen3-VL sees are true. The per-frame pixel budget is
    ``video_max_pixels`` / ``video_min_pixels``.
    """

    def process_messages(self, messages, images, videos, audios, processor):
        messages, images, videos = frames_to_video(messages, images, videos)
        return super().process_messages(messages, images, videos, audios, processor)

    def _regularize_videos(self, videos, **kwargs):
        """Frame lists through :func:`egoforge.data.clip.load_clip` (every frame kept, the last repeated to an even
        count, one resize onto the model's grid), the frames and timing RL rollouts and evaluation also use;
        video files keep LLaMA-Factory's own sampling."""
        if not videos or not all(isinstance(v, (list, tuple)) for v in videos):
            if any(isinstance(v, (list, tuple)) for v in videos):
                raise FramesLayoutError("a batch mixing frame-list videos and video files: give one kind")
            return super()._regularize_videos(videos, **kwargs)
        fps = float(kwargs.get("video_fps", 2.0))
        settings = ClipSettings(min_pixels=int(kwargs["image_min_pixels"]), max_pixels=int(kwargs["image_max_pixels"]),
                                frames_fps=fps)
        clips = [load_clip(list(video), settings, sample=False) for video in videos]
        return {"videos": [c.frames for c in clips], "fps_per_video": [fps] * len(clips),
                "durations": [(max(c.indices) + 1) / fps for c in clips],
                "frames_indices": [list(c.indices) for c in clips]}

    def process_token_ids(self, input_ids, labels, images, videos, audios, tokenizer, processor):
        if images:
            images, videos = [], [list(images)]
        return super().process_token_ids(input_ids, labels, images, videos, audios, tokenizer, processor)

    def get_mm_inputs(self, images, videos, audios, imglens, vidlens, audlens, batch_ids, processor):
        videos, vidlens = batch_frames_to_videos(images, videos, imglens, vidlens)
        imglens = [0] * len(imglens)
        return super().get_mm_inputs([], videos, audios, imglens, vidlens, audlens, batch_ids, processor)


@dataclass
class EgoFramesQwen2VLPlugin(_FramesAsVideoMixin, Qwen2VLPlugin):
    """Qwen2-VL / Qwen2.5-VL: frames as one video (Qwen2.5-VL gets ``second_per_grid_ts`` from ``video_fps``)."""


@dataclass
class EgoFramesQwen3VLPlugin(_FramesAsVideoMixin, Qwen3VLPlugin):
    """Qwen3-VL: frames as one video with ``<t seconds>`` timestamps computed from ``video_fps``.

    Samples whose video layout LLaMA-Factory 0.9.5 would expand with another clip's metadata are refused by name
    (see :func:`qwen3_video_layout_problem`) instead of being trained on with wrong timestamps.
    """

    def process_messages(self, messages, images, videos, audios, processor):
        converted, images, videos = frames_to_video(messages, images, videos)
        problem = qwen3_video_layout_problem(converted)
        if problem:
            raise FramesLayoutError(problem)
        return Qwen3VLPlugin.process_messages(self, converted, images, videos, audios, processor)


MM_PLUGINS = {"ego_frames_qwen2_vl": EgoFramesQwen2VLPlugin, "ego_frames_qwen3_vl": EgoFramesQwen3VLPlugin}


def register_when_ready() -> None:
    """Finish a registration the start-up hook deferred because this module was still being imported."""
    if "llamafactory.data.template" in sys.modules and not os.environ.get("EGOFORGE_DISABLE_LF_HOOK"):
        from egoforge.llamafactory.register import register_all

        register_all()


register_when_ready()
