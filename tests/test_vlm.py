"""egoforge.vlm directly: the request type, the transformers engine on tiny random Qwen2-VL / Qwen2.5-VL / Qwen3-VL
(greedy equals a hand-written ``generate`` call, n samples, seeds, stops), LoRA folders, loud errors, the
OpenAI-compatible client against a local stub server, and the one-way import rule."""

from __future__ import annotations

import ast
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from egoforge.vlm import GenerationRequest, Sampling, Visual, make_engine
from egoforge.vlm.openai_client import ChatClient, ChatError
from egoforge.vlm.request import even_clip, shared_sampling, truncate_at_stops, video_metadata

ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def _frames(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8)) for _ in range(n)]


def _requests(sampling: Sampling) -> list[GenerationRequest]:
    return [GenerationRequest("What happens?", [Visual.clip(_frames(4), fps=2.0)], sampling),
            GenerationRequest("Describe it.", [Visual.clip(_frames(4, seed=1), fps=0.5)], sampling)]


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    cache = {}

    def engine(arch: str):
        if arch not in cache:
            cache[arch] = make_engine("transformers", str(tiny_model_dir(arch)), device="cpu")
        return cache[arch]

    return engine


# --- the request type (pure) ----------------------------------------------------------------------------------------

def test_clip_timing_and_even_frame_count():
    clip = Visual("video", _frames(3), 6.0, [0, 4, 8])
    evened = even_clip(clip)
    # the repeated frame keeps its index (its own time), as the Qwen processors and LLaMA-Factory pad
    assert evened.indices == [0, 4, 8, 8] and evened.frames[-1] is clip.frames[-1]
    assert even_clip(Visual.clip(_frames(2), 1.0)).indices == [0, 1]
    assert video_metadata(evened) == {"fps": 6.0, "frames_indices": [0, 4, 8, 8], "total_num_frames": 9,
                                      "duration": 9 / 6.0}


def test_bad_requests_are_errors():
    with pytest.raises(ValueError, match="'image' or 'video', not 'audio'"):
        Visual("audio", [])
    with pytest.raises(ValueError, match="copies of one another"):
        Sampling(n=3)
    with pytest.raises(ValueError, match="one decoding"):
        shared_sampling([GenerationRequest("a"), GenerationRequest("b", sampling=Sampling(max_new_tokens=3))])
    assert truncate_at_stops("A. red### more\n\nx", ("\n\n", "###")) == "A. red"


# --- transformers engine on the three architectures -----------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_equals_a_hand_written_generate_call(arch, engines):
    """Oracle: the processor called by hand the way a Qwen-VL model card does, then greedy ``generate``."""
    import torch

    engine = engines(arch)
    requests = _requests(Sampling(max_new_tokens=6))
    replies = engine.generate(requests)
    assert [len(r) for r in replies] == [1, 1]
    assert engine.generate(requests) == replies  # greedy is deterministic

    processor, model = engine.processor, engine.model
    texts = [processor.apply_chat_template([{"role": "user", "content": [
        {"type": "video"}, {"type": "text", "text": r.prompt}]}], add_generation_prompt=True) for r in requests]
    metadata = [{"fps": fps, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3]} for fps in (2.0, 0.5)]
    # Qwen2-VL has no use for the timing (no timestamps, no absolute-time M-RoPE): called without it
    timing = {} if arch == "qwen2_vl" else {"video_metadata": metadata, "do_sample_frames": False}
    inputs = processor(text=texts, videos=[r.visuals[0].frames for r in requests], padding=True, return_tensors="pt",
                       **timing)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    expected = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True,
                                      clean_up_tokenization_spaces=False)
    assert [r[0] for r in replies] == expected


def test_n_samples_are_seeded_and_distinct(engines):
    engine = engines("qwen2_5_vl")
    sampling = Sampling(max_new_tokens=6, temperature=1.0, n=3, seed=11)
    first = engine.generate(_requests(sampling))
    assert [len(r) for r in first] == [3, 3]
    assert engine.generate(_requests(sampling)) == first  # same seed, same samples
    assert len(set(first[0])) > 1  # samples, not greedy copies
    other = engine.generate(_requests(Sampling(max_new_tokens=6, temperature=1.0, n=3, seed=12)))
    assert other != first


def test_images_and_text_only_requests(engines):
    engine = engines("qwen3_vl")
    images = GenerationRequest("Which?", [Visual("image", [f]) for f in _frames(2)], Sampling(max_new_tokens=3))
    inputs = engine.processor_inputs([images])
    assert "pixel_values" in inputs and "pixel_values_videos" not in inputs
    assert len(engine.generate([images])[0]) == 1
    text_only = engine.generate([GenerationRequest("Hello", sampling=Sampling(max_new_tokens=3))])
    assert len(text_only) == 1 and isinstance(text_only[0][0], str)


def test_qwen2_5_clip_gets_its_true_rate(engines):
    inputs = engines("qwen2_5_vl").processor_inputs(_requests(Sampling()))
    assert inputs["second_per_grid_ts"].tolist() == [1.0, 4.0]  # temporal patch 2 / fps


# --- loading ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lora_folder(tmp_path_factory, tiny_model_dir):
    """A tiny PEFT LoRA adapter with non-zero weights, saved with its processor like a LLaMA-Factory output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor

    base = tiny_model_dir("qwen2_vl")
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft_model.save_pretrained(folder)
    AutoProcessor.from_pretrained(base).save_pretrained(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    return folder


def test_lora_folder_is_merged_onto_its_base(lora_folder, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from egoforge.vlm.transformers_engine import TransformersEngine

    engine = TransformersEngine(lora_folder, device="cpu")
    assert not isinstance(engine.model, PeftModel)  # merged: plain generation
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir("qwen2_vl"), dtype=torch.float32)
    merged = PeftModel.from_pretrained(
        AutoModelForImageTextToText.from_pretrained(tiny_model_dir("qwen2_vl"), dtype=torch.float32),
        lora_folder).merge_and_unload()
    name = next(n for n, _ in merged.named_parameters() if "q_proj.weight" in n)
    weights = dict(engine.model.named_parameters())[name]
    assert torch.equal(weights, dict(merged.named_parameters())[name])
    assert not torch.equal(weights, dict(base.named_parameters())[name])  # the adapter really changed it
    assert len(engine.generate([GenerationRequest("Hi", sampling=Sampling(max_new_tokens=3))])[0]) == 1


def test_lora_folder_with_a_missing_base_names_it(lora_folder, tmp_path):
    import shutil

    from egoforge.data.models import ModelNotFoundError
    from egoforge.vlm.loading import load_model

    folder = tmp_path / "adapter"
    shutil.copytree(lora_folder, folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match=f"the base model of the LoRA adapter {folder}"):
        load_model(folder, None)


def test_unknown_dtype_and_backend_are_errors():
    from egoforge.vlm.loading import torch_dtype

    with pytest.raises(ValueError, match="dtype must be auto, float32, bfloat16 or float16, not 'fp8'"):
        torch_dtype("fp8", "cpu")
    assert str(torch_dtype("auto", "cpu")) == "torch.float32" and str(torch_dtype("auto", "cuda")) == "torch.bfloat16"
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        make_engine("tgi", "x")


# --- the OpenAI-compatible client ---------------------------------------------------------------------------------

class _Stub(BaseHTTPRequestHandler):
    replies: list[tuple[int, str]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        status, content = type(self).replies.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"choices": [{"message": {"content": content}}]}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Stub.replies, _Stub.seen = [], []
    yield f"http://127.0.0.1:{server.server_port}/v1", _Stub
    server.shutdown()
    server.server_close()


def test_client_sends_the_expected_json(stub):
    url, handler = stub
    handler.replies = [(200, "a reply")]
    client = ChatClient(url, "judge-x", api_key="k1", extra_body={"top_k": 1})
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert client.complete(messages, temperature=0, max_tokens=7) == "a reply"
    (request,) = handler.seen
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k1"
    assert request["body"] == {"model": "judge-x", "messages": messages, "temperature": 0, "max_tokens": 7,
                               "top_k": 1}


def test_client_retries_server_errors_and_stops_on_final_ones(stub):
    url, handler = stub
    handler.replies = [(500, "busy"), (200, "ok")]
    assert ChatClient(url, "m", retries=2, backoff=0).complete([]) == "ok"
    handler.replies, handler.seen = [(404, "no such model")] * 3, []
    with pytest.raises(ChatError, match="failed after 1 tries: HTTP 404.*no such model") as error:
        ChatClient(url, "m", retries=3, backoff=0).complete([])
    assert error.value.tries == 1 and len(handler.seen) == 1


# --- layering -----------------------------------------------------------------------------------------------------

def test_vlm_imports_no_pipeline():
    """egoforge.vlm sits under the pipelines: it may import egoforge.data and itself, nothing else of egoforge."""
    for source in sorted((PLUGINS / "vlm").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("egoforge."):
                    assert name.split(".")[1] in ("vlm", "data"), f"{source.name} imports {name}"
