"""One clip through the four paths: LLaMA-Factory SFT, verl (Ego3S) rollouts, the egoforge_vl lmms-eval model and
EgoCross evaluation give the model the same frames, the same pixels and the same prompt tokens.

Per model family (tiny random Qwen2-VL, Qwen2.5-VL, Qwen3-VL) and per packing (frames as one video, frames as
images), the same generated frame folder and the same settings go through each path's own code; the processor
inputs must be equal: the visual span of the prompt (token ids), pixel values, grid, timestamps / seconds per grid.
The differences that stay (documented in docs/media.md) are asserted explicitly at the end.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from egoforge.data import clip as one_clip

FPS = 2.0
MIN_PIXELS, MAX_PIXELS = 1024, 16384  # per frame, in every path
QUESTION = "What did the camera wearer do?"
LF_TEMPLATES = {  # frames as video: egoforge's ego_frames plugins; frames as images: the stock templates
    ("qwen2_vl", "video"): "qwen2_vl_ego_frames", ("qwen2_5_vl", "video"): "qwen2_vl_ego_frames",
    ("qwen3_vl", "video"): "qwen3_vl_nothink_ego_frames",
    ("qwen2_vl", "images"): "qwen2_vl", ("qwen2_5_vl", "images"): "qwen2_vl",
    ("qwen3_vl", "images"): "qwen3_vl_nothink",
}


def _frame_folder(root, n: int, size=(176, 120)):
    """A frame folder at 2 fps: smooth gradients with a moving square (bicubic resizes change every pixel)."""
    folder = root / f"clip_{n}"
    folder.mkdir()
    for i in range(n):
        img = Image.linear_gradient("L").resize(size).convert("RGB")
        img.paste((200, 40 + 20 * i, 90), (10 + 12 * i, 20, 40 + 12 * i, 60))
        img.save(folder / f"frame_{i:05d}.png")
    return folder


@pytest.fixture(scope="module")
def processors(tiny_model_dir):
    from transformers import AutoProcessor

    return {arch: AutoProcessor.from_pretrained(tiny_model_dir(arch)) for arch in one_clip.FAMILIES}


def _visual_span(text: str) -> str:
    """The expanded visuals of a prompt: from the first timestamp / vision start to the last vision end."""
    match = re.search(r"(<[\d.]+ seconds>)?<\|vision_start\|>.*<\|vision_end\|>", text, re.S)
    assert match, text
    return match.group(0)


def _inputs_summary(processor, text: str, mm: dict) -> dict:
    """What the model sees: the visual span's token ids and every vision tensor."""
    span = _visual_span(text)
    out = {"span": span, "span_ids": processor.tokenizer(span, add_special_tokens=False)["input_ids"]}
    for key in ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw", "second_per_grid_ts"):
        if key in mm and mm[key] is not None:
            value = mm[key]
            out[key] = value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.float64)
    return out


def _lf_path(processor, arch, frames_as, files):
    import llamafactory.data.template as lf_template

    from egoforge.llamafactory.register import register_all

    register_all()
    for key, value in {"image_max_pixels": MAX_PIXELS, "image_min_pixels": MIN_PIXELS, "video_max_pixels": MAX_PIXELS,
                       "video_min_pixels": MIN_PIXELS, "video_fps": FPS, "video_maxlen": 64}.items():
        setattr(processor, key, value)
    plugin = lf_template.TEMPLATES[LF_TEMPLATES[(arch, frames_as)]].mm_plugin
    messages = [{"role": "user", "content": "<image>" * len(files) + QUESTION}, {"role": "assistant", "content": "A"}]
    paths = [str(f) for f in files]
    text = plugin.process_messages(messages, paths, [], [], processor)[0]["content"]
    mm = plugin.get_mm_inputs(paths, [], [], [len(paths)], [0], [0], [[1]], processor)
    return _inputs_summary(processor, text, mm)


def _engine(processor, arch):
    from egoforge.vlm.transformers_engine import TransformersEngine

    model = SimpleNamespace(config=SimpleNamespace(model_type=arch))
    return TransformersEngine(None, device="cpu", model=model, processor=processor)


def _engine_summary(processor, arch, request):
    inputs = _engine(processor, arch).processor_inputs([request])
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    return _inputs_summary(processor, text, dict(inputs))


def _verl_path(processor, arch, frames_as, folder):
    from egoforge.verl.dataset import Ego3SDataset

    item = {"type": "video", "video": str(folder), "fps": FPS, "frames_fps": FPS, "min_frames": 4, "max_frames": 16,
            "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS}
    messages = [{"role": "user", "content": [item, {"type": "text", "text": QUESTION}]}]
    patch = processor.image_processor.patch_size
    _, videos, _ = Ego3SDataset._process_multi_modal_info(messages, patch, {})
    tensors, metadata = zip(*videos)
    if frames_as == "images":  # a verl image prompt of the clip's frames, in order
        frames = [Image.fromarray(t.permute(1, 2, 0).numpy()) for t in tensors[0]]
        from egoforge.vlm.request import GenerationRequest, Visual

        return frames, _engine_summary(processor, arch, GenerationRequest(QUESTION, [Visual("image", [f])
                                                                                    for f in frames]))
    # verl's agent loop: the chat template's text, then the processor with the videos and their metadata
    chat = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=list(tensors), video_metadata=list(metadata), do_sample_frames=False,
                       return_tensors="pt")
    return None, _inputs_summary(processor, processor.tokenizer.decode(inputs["input_ids"][0]), dict(inputs))


def _lmms_path(processor, arch, frames_as, folder):
    from egoforge.lmms.inputs import InputSettings, to_visuals
    from egoforge.lmms.media import sample_frame_folder
    from egoforge.vlm.request import GenerationRequest

    frames = sample_frame_folder(folder, FPS, clip="c", sample_fps=FPS, max_frames=16)
    settings = InputSettings(frames_as=frames_as, image_max_pixels=MAX_PIXELS, video_max_pixels=MAX_PIXELS,
                             min_pixels=MIN_PIXELS)
    return _engine_summary(processor, arch, GenerationRequest(QUESTION, to_visuals(frames, settings)))


def _egocross_path(processor, arch, frames_as, files):
    from egoforge.eval.backends import GenerationSettings, VisualRequest, to_generation_request

    settings = GenerationSettings(frames_as=frames_as, max_pixels=MAX_PIXELS, min_pixels=MIN_PIXELS)
    request = to_generation_request(VisualRequest(tuple(str(f) for f in files), QUESTION, FPS), settings)
    return _engine_summary(processor, arch, request)


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: {sorted(a)} != {sorted(b)}"
    assert a["span"] == b["span"], f"{what}: prompt visual spans differ"
    assert a["span_ids"] == b["span_ids"], f"{what}: token ids differ"
    for key in a.keys() - {"span", "span_ids"}:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.parametrize("frames_as", ["video", "images"])
@pytest.mark.parametrize("arch", one_clip.FAMILIES)
def test_four_paths_give_the_model_the_same_clip(tmp_path, processors, arch, frames_as):
    processor = processors[arch]
    folder = _frame_folder(tmp_path, 8)
    files = one_clip.list_frame_files(folder)
    lf = _lf_path(processor, arch, frames_as, files)
    _, verl = _verl_path(processor, arch, frames_as, folder)
    lmms = _lmms_path(processor, arch, frames_as, folder)
    egocross = _egocross_path(processor, arch, frames_as, files)
    _assert_same(lf, egocross, "LLaMA-Factory vs EgoCross")
    _assert_same(lmms, egocross, "lmms-eval vs EgoCross")
    _assert_same(verl, egocross, "verl vs EgoCross")
    if frames_as == "video":
        clip = one_clip.load_clip(folder, one_clip.ClipSettings(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS))
        assert clip.indices == list(range(8))
        # the builder writes the same expanded text the processors wrote
        assert one_clip.video_prompt(clip, one_clip.family_of(arch), MIN_PIXELS, MAX_PIXELS) == egocross["span"]
        if arch == "qwen3_vl":
            assert "<0.2 seconds>" in egocross["span"] and "<3.2 seconds>" in egocross["span"]
        if arch == "qwen2_5_vl":
            assert egocross["second_per_grid_ts"].tolist() == [1.0]  # 2 frames / 2 fps


def test_odd_clips_differ_only_as_documented(tmp_path, processors):
    """A 7-frame folder: the pre-sampled paths (LLaMA-Factory, EgoCross) keep all 7 and repeat the last; the
    sampling paths (verl / Ego3S: qwen-vl-utils' even floor) keep 6 spread over the 7."""
    processor = processors["qwen3_vl"]
    folder = _frame_folder(tmp_path, 7)
    files = one_clip.list_frame_files(folder)
    lf = _lf_path(processor, "qwen3_vl", "video", files)
    egocross = _egocross_path(processor, "qwen3_vl", "video", files)
    _assert_same(lf, egocross, "LLaMA-Factory vs EgoCross")
    # the repeated last frame keeps its own time: the last patch is at 3.0 s, not 3.25 s
    assert egocross["span"].count("seconds>") == 4 and "<3.0 seconds>" in egocross["span"]
    settings = one_clip.ClipSettings(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert one_clip.load_clip(folder, settings).indices == [0, 1, 2, 4, 5, 6]
    assert one_clip.load_clip(files, settings, sample=False).indices == [0, 1, 2, 3, 4, 5, 6, 6]
