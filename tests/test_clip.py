"""egoforge.data.clip against the code it claims to match: qwen-vl-utils' frame count, LLaMA-Factory's resize steps,
the Qwen processors' grid (``smart_resize``) and Qwen3-VL's timestamps, on generated hard cases."""

from __future__ import annotations

import math
import random

import pytest
from PIL import Image

from egoforge.data import clip as one_clip
from egoforge.data.video import write_video


def _smart_nframes_oracle(total: int, video_fps: float, fps: float, min_frames: int, max_frames: int) -> list[int]:
    """qwen-vl-utils 0.0.14 ``smart_nframes`` + ``torch.linspace(0, total - 1, n).round()`` (its readers' pick)."""
    import torch
    from qwen_vl_utils.vision_process import smart_nframes

    n = smart_nframes({"fps": fps, "min_frames": min_frames, "max_frames": max_frames}, total, video_fps)
    return torch.linspace(0, total - 1, n).round().long().tolist()


@pytest.mark.parametrize("seed", range(4))
def test_frame_rule_is_qwen_vl_utils(seed):
    rng = random.Random(seed)
    for _ in range(200):
        total, native = rng.randint(4, 900), rng.choice([1.0, 2.0, 10.0, 24.0, 29.97, 30.0, 60.0])
        fps, lo = rng.choice([0.5, 1.0, 2.0, 4.0]), rng.choice([2, 4])
        hi = rng.choice([4, 8, 16, 32]) if total >= 4 else 4
        settings = one_clip.ClipSettings(fps=fps, min_frames=lo, max_frames=max(lo, hi))
        expected = _smart_nframes_oracle(total, native, fps, lo, max(lo, hi))
        assert one_clip.select_indices(total, native, settings) == expected, (total, native, fps, lo, hi)


def test_frame_rule_window_and_short_clips():
    settings = one_clip.ClipSettings(fps=1.0, min_frames=2, max_frames=8)
    picked = one_clip.select_indices(300, 30.0, settings, start=2.0, end=6.0)  # 121 frames, 4 s -> 4 frames
    assert picked[0] == 60 and picked[-1] == 180 and len(picked) == 4
    assert one_clip.select_indices(1, 30.0, settings) == [0]
    assert one_clip.select_indices(0, 30.0, settings) == []
    with pytest.raises(ValueError, match="native_fps"):
        one_clip.select_indices(10, 0.0, settings)


def _lf_preprocess(image: Image.Image, max_pixels: int, min_pixels: int) -> Image.Image:
    """LLaMA-Factory 0.9.5's ``Qwen2VLPlugin._preprocess_image`` (through its own class)."""
    from llamafactory.data.mm_plugin import Qwen2VLPlugin

    plugin = Qwen2VLPlugin(image_token="<|image_pad|>", video_token="<|video_pad|>", audio_token=None)
    return plugin._preprocess_image(image, image_max_pixels=max_pixels, image_min_pixels=min_pixels)


@pytest.mark.parametrize("size, budget", [((176, 120), (1024, 16384)), ((640, 480), (3136, 100352)),
                                          ((20, 300), (3136, 16384)), ((90, 70), (8000, 16384)),
                                          ((3000, 12), (1024, 16384)), ((33, 1000), (1024, 4096))])
def test_resize_is_llamafactorys_pixel_for_pixel(size, budget):
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    img.paste((200, 30, 90), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    settings = one_clip.ClipSettings(min_pixels=budget[0], max_pixels=budget[1])
    ours = one_clip.resize_frame(img, settings)
    theirs = _lf_preprocess(img, budget[1], budget[0])
    assert ours.size == theirs.size == one_clip.frame_size(*size, settings)
    assert ours.tobytes() == theirs.tobytes()


def test_grid_is_the_processors_smart_resize():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    rng = random.Random(0)
    for _ in range(500):
        w, h, factor = rng.randint(28, 2000), rng.randint(28, 2000), rng.choice([28, 32])
        lo = rng.choice([factor * factor, 3136, 4096])
        hi = rng.choice([16384, 100352, 401408, 1003520])
        assert one_clip.snap_to_grid(w, h, factor, lo, hi) == smart_resize(h, w, factor, lo, hi)[::-1], (w, h)


def test_qwen3_timestamps_are_the_processors(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir("qwen3_vl"))
    rng = random.Random(1)
    for _ in range(50):
        n, fps = rng.randint(1, 17), rng.choice([0.5, 1.0, 2.0, 29.97, 30.0])
        indices = sorted(rng.sample(range(400), n))
        assert one_clip.qwen3_timestamps(indices, fps) == pytest.approx(
            processor._calculate_timestamps(indices, fps, 2))


def test_a_video_file_is_sampled_on_its_own_timeline(tmp_path):
    frames = [Image.new("RGB", (64, 48), (i * 8, 0, 0)) for i in range(30)]  # 3 s at 10 fps
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 10)
    clip = one_clip.load_clip(path, one_clip.ClipSettings(fps=2.0, min_frames=2, max_frames=16))
    assert clip.fps == 10.0 and clip.indices == _smart_nframes_oracle(30, 10.0, 2.0, 2, 16) and len(clip.frames) == 6
    assert clip.video_metadata()["frames_indices"] == clip.indices and clip.padded == 0
    assert clip.second_per_grid() == pytest.approx(2 * (29 / 10) / 5)


def test_bad_settings_and_sources_are_named(tmp_path):
    with pytest.raises(ValueError, match="min_pixels 5000 > max_pixels 4000"):
        one_clip.ClipSettings(min_pixels=5000, max_pixels=4000)
    with pytest.raises(ValueError, match="model family 'llava'"):
        one_clip.patch_size_of("llava")
    with pytest.raises(ValueError, match="frames_as"):
        one_clip.ClipSettings(frames_as="gif")
    with pytest.raises(ValueError, match="model_type 'llava'"):
        one_clip.family_of("llava")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        one_clip.load_clip(tmp_path / "empty", one_clip.ClipSettings())
    assert math.isclose(one_clip.qwen3_timestamps([0, 1, 2], 2.0)[-1], 1.0)
