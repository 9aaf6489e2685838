"""LLaMA-Factory multimodal plugins (imported only once LLaMA-Factory is)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from llamafactory.data.mm_plugin import Qwen2VLPlugin, Qwen3VLPlugin

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
