"""The ``egoforge_vl`` lmms-eval model: visuals -> Qwen-VL inputs (clips as videos with their true timing), batching,
stop strings, the entry point; generation on the tiny Qwen3-VL / Qwen2.5-VL."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from egoforge.lmms.engines import Prompt, TransformersEngine, grouped, truncate_at_stops, video_metadata
from egoforge.lmms.inputs import InputSettings, Visual, to_visuals
from egoforge.lmms.media import mark_frames
from egoforge.testing.benchdata import write_mp4
from egoforge.testing.egocross_data import Scene, render_clip

SETTINGS = InputSettings(video_max_pixels=64 * 64, image_max_pixels=96 * 96, min_pixels=32 * 32, max_frames=4)


def _frames(n: int, size=(96, 64)) -> list[Image.Image]:
    return [f.resize(size) for f in render_clip(Scene("Industry", "red", "top left", "left", 2, n, 3))]


def test_tagged_frames_become_one_video_untagged_stay_images(tmp_path):
    clip = mark_frames(_frames(3), "clip-1", 0.5, [0, 1, 2])
    photo = _frames(1, size=(200, 150))[0]
    visuals = to_visuals([photo, *clip], SETTINGS)
    assert [v.kind for v in visuals] == ["image", "video"]
    image, video = visuals
    assert image.frames[0].width * image.frames[0].height <= SETTINGS.image_max_pixels
    # Odd clip padded to an even length (Qwen's temporal patch of 2): the repeated frame keeps its index, as the
    # Qwen processors and LLaMA-Factory pad (egoforge.data.clip.pad_even), so the last timestamp is the frame's.
    assert len(video.frames) == 4 and video.indices == [0, 1, 2, 2] and video.fps == 0.5
    assert all(f.width * f.height <= SETTINGS.video_max_pixels for f in video.frames)
    as_images = to_visuals(clip, InputSettings(frames_as="images"))
    assert [v.kind for v in as_images] == ["image"] * 3


def test_video_and_image_paths_are_read(tmp_path):
    video = write_mp4(tmp_path / "v.mp4", _frames(12), fps=6.0)
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "p.png")
    visuals = to_visuals([str(video), str(tmp_path / "p.png")], SETTINGS)
    assert [v.kind for v in visuals] == ["video", "image"]
    assert visuals[0].fps == 6.0 and visuals[0].indices == [0, 4, 7, 11]  # 2 fps, at most 4 frames
    with pytest.raises(TypeError, match="cannot read a visual"):
        to_visuals([42], SETTINGS)


def test_gen_kwargs_stops_and_batching():
    prompt = Prompt.from_gen_kwargs("q", [], {"max_new_tokens": 8, "until": ["\n\n", "###"], "temperature": 0,
                                              "do_sample": True})
    assert prompt.until == ["###"] and not prompt.do_sample and prompt.max_new_tokens == 8
    assert truncate_at_stops("A. red### more", prompt.until) == "A. red"
    image = Visual("image", [Image.new("RGB", (8, 8))])
    video = Visual("video", [Image.new("RGB", (8, 8))] * 2, 1.0, [0, 1])
    prompts = [Prompt("a", [image]), Prompt("b", [video]), Prompt("c", [image]), Prompt("d", [image], 4)]
    batches = [(pos, [p.text for p in batch]) for pos, batch in grouped(prompts, batch_size=2)]
    assert batches == [([0, 2], ["a", "c"]), ([1], ["b"]), ([3], ["d"])]


def test_video_metadata_carries_true_timing():
    meta = video_metadata(Visual("video", [], 6.0, [0, 4, 7, 11]))
    assert meta["fps"] == 6.0 and meta["frames_indices"] == [0, 4, 7, 11] and meta["total_num_frames"] == 12


def test_entry_point_declares_the_model():
    """setup.cfg declares the lmms_eval.models entry point and its manifest resolves to EgoforgeVL (the installed
    entry point itself is exercised by every real lmms-eval run in test_evalsuite_run.py)."""
    import configparser

    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from egoforge.lmms.manifest import manifests
    from egoforge.lmms.model import EgoforgeVL
    from egoforge.testing.recipes import find_repo_file

    cfg = configparser.ConfigParser()
    cfg.read(find_repo_file("setup.cfg"))
    assert "egoforge_vl = egoforge.lmms.manifest:manifests" in cfg["options.entry_points"]["lmms_eval.models"]
    registry = ModelRegistryV2()
    for manifest in manifests():
        registry.register_manifest(manifest)
    assert registry.get_model_class("egoforge_vl") is EgoforgeVL


def test_qwen3_sees_the_clip_timestamps(tiny_qwen3_vl):
    engine = TransformersEngine(str(tiny_qwen3_vl), device="cpu")
    clip = mark_frames(_frames(4), "c", 0.5, [0, 1, 2, 3])  # 0.5 fps: frames at 0, 2, 4, 6 s
    prompt = Prompt("What is held?", to_visuals(clip, SETTINGS), max_new_tokens=3)
    inputs = engine._inputs([prompt])
    text = engine.processor.tokenizer.decode(inputs["input_ids"][0])
    # Qwen3-VL stamps each temporal patch (2 frames) with its mean time: (0+2)/2 and (4+6)/2.
    assert re.findall(r"<([\d.]+) seconds>", text) == ["1.0", "5.0"]
    assert "<|video_pad|>" in text and "<|image_pad|>" not in text
    outputs = engine.generate([prompt, prompt])
    assert len(outputs) == 2 and outputs[0] == outputs[1]  # greedy, batched with left padding


def test_qwen2_5_gets_seconds_per_temporal_patch(tiny_qwen2_5_vl):
    engine = TransformersEngine(str(tiny_qwen2_5_vl), device="cpu")
    clip = mark_frames(_frames(4), "c", 6.0, [0, 4, 8, 12])  # sampled at 1.5 fps from a 6 fps timeline
    inputs = engine._inputs([Prompt("q", to_visuals(clip, SETTINGS), max_new_tokens=2)])
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / (4 / 13 * 6.0)])
    assert isinstance(engine.generate([Prompt("q", to_visuals(clip, SETTINGS), max_new_tokens=2)])[0], str)


def test_seeking_and_sequential_decoding_pick_the_same_frames(tmp_path):
    """Sparse picks from a long clip seek to keyframes; they must equal the frames sequential decoding gives."""
    import numpy as np

    from egoforge.data.video import decode_indices, decode_indices_seeking
    from egoforge.lmms import media

    clip = render_clip(Scene("Industry", "red", "top left", "right", 3, 240, 0), size=(96, 64))
    video = str(write_mp4(tmp_path / "long.mp4", clip, fps=30.0))
    keep = media.select_indices(240, 30.0, max_frames=8)
    seeking = decode_indices_seeking(video, keep, 30.0)
    sequential, count = decode_indices(video, set(keep))
    assert count == keep[-1] + 1 and sorted(seeking) == sorted(sequential) == keep
    assert all(np.array_equal(np.asarray(seeking[i]), np.asarray(sequential[i])) for i in keep)
    frames = media.sample_video(video, clip="long", max_frames=8)
    assert [media.read_mark(f).index for f in frames] == keep
