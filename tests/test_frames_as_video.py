"""The pure frames->video conversion, and the LLaMA-Factory plugin built on it (tiny Qwen3-VL / Qwen2.5-VL)."""

from __future__ import annotations

import pytest
from PIL import Image

from egoforge.llamafactory.frames import FramesLayoutError, batch_frames_to_videos, frames_to_video


def _msgs(user: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": "A"}]


@pytest.mark.parametrize(
    "user, expected",
    [
        ("<image><image><image>What?", "<video>What?"),
        ("Look: <image>\n<image> <image>\nWhat?", "Look: <video>\nWhat?"),
        ("<image>", "<video>"),
    ],
)
def test_contiguous_frames_become_one_video(user, expected):
    n = user.count("<image>")
    messages, images, videos = frames_to_video(_msgs(user), [f"f{i}.jpg" for i in range(n)], [])
    assert messages[0]["content"] == expected
    assert images == [] and videos == [[f"f{i}.jpg" for i in range(n)]]
    assert messages[1] == {"role": "assistant", "content": "A"}


def test_input_messages_are_not_modified():
    original = _msgs("<image><image>Q")
    frames_to_video(original, ["a", "b"], [])
    assert original[0]["content"] == "<image><image>Q"


def test_samples_without_images_pass_through():
    assert frames_to_video(_msgs("text only"), [], []) == (_msgs("text only"), [], [])


@pytest.mark.parametrize(
    "user, images, videos, reason",
    [
        ("<image> between <image>", ["a", "b"], [], "contiguous run"),
        ("<image><image>", ["a"], [], "placeholders but"),
        ("<image><video>", ["a"], ["v.mp4"], "both"),
    ],
)
def test_layouts_that_are_not_one_clip_are_refused(user, images, videos, reason):
    with pytest.raises(FramesLayoutError, match=reason):
        frames_to_video(_msgs(user), images, videos)


def test_batch_regrouping_keeps_sample_order():
    videos, lens = batch_frames_to_videos(["a1", "a2", "c1"], ["vid_b.mp4"], [2, 0, 1], [0, 1, 0])
    assert videos == [["a1", "a2"], "vid_b.mp4", ["c1"]] and lens == [1, 1, 1]


def _frames(tmp_path, n=4):
    paths = []
    for i in range(n):
        path = tmp_path / f"frame_{i:03d}.jpg"
        Image.new("RGB", (96, 64), (40 * i, 100, 200)).save(path)
        paths.append(str(path))
    return paths


def _template_and_processor(model_dir, name):
    import llamafactory.data.template as lf_template
    from transformers import AutoProcessor

    from egoforge.llamafactory.register import register_all

    register_all()
    processor = AutoProcessor.from_pretrained(model_dir)
    for key, value in {"image_max_pixels": 16384, "image_min_pixels": 1024, "video_max_pixels": 16384,
                       "video_min_pixels": 1024, "video_fps": 0.5, "video_maxlen": 64}.items():
        setattr(processor, key, value)
    return lf_template.TEMPLATES[name], processor


def test_qwen3_plugin_feeds_frames_as_one_timestamped_video(tmp_path, tiny_qwen3_vl):
    template, processor = _template_and_processor(tiny_qwen3_vl, "qwen3_vl_nothink_ego_frames")
    frames = _frames(tmp_path, 4)
    messages = template.mm_plugin.process_messages(_msgs("<image>" * 4 + "Where?"), frames, [], [], processor)
    content = messages[0]["content"]
    # 4 frames at 0.5 fps -> two temporal patches, centred at 1 s and 5 s.
    assert content.count("<|vision_start|>") == 2 and "<1.0 seconds>" in content and "<5.0 seconds>" in content
    assert "<|image_pad|>" not in content
    mm = template.mm_plugin.get_mm_inputs(frames, [], [], [4], [0], [0], [[1]], processor)
    assert "pixel_values_videos" in mm and mm["video_grid_thw"].tolist() == [[2, 4, 6]]
    assert "pixel_values" not in mm
    n_tokens = content.count("<|video_pad|>")
    assert n_tokens == mm["video_grid_thw"].prod().item() // 4


def test_stock_template_keeps_loose_images_for_comparison(tmp_path, tiny_qwen3_vl):
    template, processor = _template_and_processor(tiny_qwen3_vl, "qwen3_vl_nothink")
    frames = _frames(tmp_path, 4)
    content = template.mm_plugin.process_messages(_msgs("<image>" * 4 + "Where?"), frames, [], [], processor)[0][
        "content"]
    assert content.count("<|vision_start|>") == 4 and "seconds>" not in content
    # Loose frames cost twice the visual tokens of the video form (temporal patch of 2).
    assert content.count("<|image_pad|>") == 4 * 6


def test_qwen25_plugin_sets_absolute_time_from_video_fps(tmp_path, tiny_qwen2_5_vl):
    template, processor = _template_and_processor(tiny_qwen2_5_vl, "qwen2_vl_ego_frames")
    frames = _frames(tmp_path, 4)
    mm = template.mm_plugin.get_mm_inputs(frames, [], [], [4], [0], [0], [[1]], processor)
    # second_per_grid_ts = temporal_patch_size / fps = 2 / 0.5
    assert mm["second_per_grid_ts"] == [4.0]


def _two_turns(second_user: str) -> list[dict]:
    return [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": second_user}, {"role": "assistant", "content": "A"}]


def test_stock_qwen3_plugin_misreads_a_video_in_a_later_turn(tmp_path, tiny_qwen3_vl):
    """Why the guard exists: LLaMA-Factory 0.9.5 looks the video's metadata up by message index (PR #10518)."""
    template, processor = _template_and_processor(tiny_qwen3_vl, "qwen3_vl_nothink")
    frames = _frames(tmp_path, 4)
    with pytest.raises(IndexError):
        template.mm_plugin.process_messages(_two_turns("<video>Where?"), [], [frames], [], processor)


@pytest.mark.parametrize("messages, images, reason", [
    (_two_turns("<image><image><image><image>Where?"), 4, "message 2"),
    ([{"role": "user", "content": "<video>then<video>?"}, {"role": "assistant", "content": "A"}], 0, "2 videos"),
])
def test_egoforge_qwen3_plugin_refuses_layouts_lf_095_expands_wrongly(tmp_path, tiny_qwen3_vl, messages, images,
                                                                      reason):
    template, processor = _template_and_processor(tiny_qwen3_vl, "qwen3_vl_nothink_ego_frames")
    frames = _frames(tmp_path, 4)
    videos = [] if images else [frames, frames[:2]]
    with pytest.raises(FramesLayoutError, match="#10518") as refused:
        template.mm_plugin.process_messages(messages, frames[:images], videos, [], processor)
    assert reason in str(refused.value)
