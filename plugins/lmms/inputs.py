"""Turn what an lmms-eval task's ``doc_to_visual`` returns into images and videos for a Qwen-VL model.

- frames tagged as one clip (:mod:`egoforge.lmms.media`) become one video with their timeline rate and indices;
- untagged PIL images stay images (e.g. EgoPlan-Bench2 keyframes, EgoThink photos);
- a video path (stock lmms-eval video tasks) is decoded with PyAV at the model's ``video_fps`` / ``max_frames``;
- an image path is opened.

Every frame is resized once, here, to its pixel budget, so a batch never holds full-resolution video in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from egoforge.data.clip import ClipSettings, pad_even, resize_frame
from egoforge.lmms.media import is_image_path, is_video_path, read_mark, sample_video
from egoforge.vlm.request import Visual


@dataclass(frozen=True)
class InputSettings:
    frames_as: str = "video"  # "video": a clip is one video; "images": every frame is its own image
    image_max_pixels: int = 401408  # Ego3S's evaluation --max_pixels
    video_max_pixels: int = 128 * 28 * 28  # Ego3S's VIDEO_MAX_PIXELS per frame
    min_pixels: int = 3136
    video_fps: float = 2.0  # for video paths from stock tasks
    max_frames: int = 16

    def __post_init__(self) -> None:
        if self.frames_as not in ("video", "images"):
            raise ValueError(f"frames_as must be 'video' or 'images', not {self.frames_as!r}")

    def clip_settings(self, video_max_pixels: int | None = None) -> ClipSettings:
        """The one resize of :mod:`egoforge.data.clip` under these budgets."""
        return ClipSettings(min_pixels=self.min_pixels, max_pixels=video_max_pixels or self.video_max_pixels,
                            image_min_pixels=self.min_pixels, image_max_pixels=self.image_max_pixels,
                            frames_as=self.frames_as)


def _even(visual: Visual) -> Visual:
    frames, indices, _ = pad_even(visual.frames, visual.indices)
    return Visual("video", frames, visual.fps, indices)


def to_visuals(raw: object, settings: InputSettings) -> list[Visual]:
    """The model inputs of one request, in the order the task gave them."""
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    visuals: list[Visual] = []
    current_clip: str | None = None
    for item in items:
        if isinstance(item, str) and is_video_path(item):
            item = sample_video(item, clip=item, sample_fps=settings.video_fps, max_frames=settings.max_frames)
            visuals.extend(to_visuals(item, settings))
            current_clip = None
            continue
        if isinstance(item, str) and is_image_path(item):
            with Image.open(item) as img:
                item = img.convert("RGB")
        if not isinstance(item, Image.Image):
            raise TypeError(f"egoforge_vl cannot read a visual of type {type(item).__name__} ({str(item)[:80]!r})")
        mark = read_mark(item)
        if mark is None:
            visuals.append(Visual("image", [resize_frame(item, settings.clip_settings(), "image")]))
            current_clip = None
            continue
        budget = min(settings.video_max_pixels, mark.max_pixels or settings.video_max_pixels)
        frame = resize_frame(item, settings.clip_settings(budget), "video")
        if current_clip == mark.clip and visuals and visuals[-1].kind == "video":
            visuals[-1].frames.append(frame)
            visuals[-1].indices.append(mark.index)
        else:
            visuals.append(Visual("video", [frame], mark.fps, [mark.index]))
            current_clip = mark.clip
    if settings.frames_as == "images":
        return [Visual("image", [f]) for v in visuals for f in v.frames]
    return [_even(v) if v.kind == "video" else v for v in visuals]
