"""Generated Ego3S training data in the Video-R1 json format, and a tiny random CLIP, for tests and benchmarks.

Each sample is an egocentric clip from ``egocross_data.render_clip`` (the camera wearer's hand holding a coloured
object, distractor squares, camera shake) written as an mp4 (or, for some samples, a folder of frames or a single
image), plus the interaction region: ``roi_box`` (relative [x0, y0, x1, y1] around the held object and hand) and
``roi_path`` (that region cropped from the middle frame). Questions cover the five Video-R1 problem types and are
answerable from the frames; the held-object questions become unanswerable once the interaction region is masked,
which is what CSM's fine filter looks for.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

from egoforge.data.atomic import atomic_dir, atomic_write_bytes, atomic_write_json
from egoforge.data.video import write_video
from egoforge.testing.egocross_data import COLORS, DIRECTIONS, QUADRANTS, Scene, render_clip

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")
LABEL_WORDS = ("fragile", "open", "stop", "push", "hot", "left")
VIDEO_FPS = 4  # generated clips run at 4 fps; conversion samples them at the paper's 2 fps


def roi_box(scene: Scene, size: tuple[int, int]) -> list[float]:
    """Relative box around the held object's whole path and the hand below it."""
    w, h = size
    cx = w * (0.27 if "left" in scene.quadrant else 0.73)
    cy = h * (0.3 if "top" in scene.quadrant else 0.7)
    x0, y0, x1, y1 = max(0.0, cx - 24), max(0.0, cy - 17), min(w, cx + 24), min(h, cy + 22)
    return [round(x0 / w, 4), round(y0 / h, 4), round(x1 / w, 4), round(y1 / h, 4)]


def _draw_label(frames: list[Image.Image], word: str) -> list[Image.Image]:
    """An OCR target: the word on a white card at the top of the view (PIL's built-in bitmap font)."""
    out = []
    for frame in frames:
        frame = frame.copy()
        draw = ImageDraw.Draw(frame)
        draw.rectangle([30, 1, 66, 12], fill=(250, 250, 250))
        draw.text((32, 1), word, fill=(0, 0, 0))
        out.append(frame)
    return out


def write_mp4(frames: list[Image.Image], path: Path, fps: int = VIDEO_FPS) -> Path:
    """Encode frames as an H.264 mp4, atomically."""
    return write_video(path, frames, fps, options={"crf": "18"})


def _jpeg(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _question(problem_type: str, scene: Scene, label: str, seconds: float, rng: random.Random) -> dict:
    colors = list(COLORS)
    if problem_type == "multiple choice":
        options = colors[:]
        rng.shuffle(options)
        letter = "ABCD"[options.index(scene.color)]
        return {"problem": "What is the color of the object held by the camera wearer?",
                "options": [f"{lt}. {opt}" for lt, opt in zip("ABCD", options)], "answer": letter}
    if problem_type == "numerical":
        return {"problem": "How many squares are visible in the scene?", "options": [], "answer": str(scene.squares)}
    if problem_type == "OCR":
        return {"problem": "What word is written on the white card?", "options": [], "answer": label}
    if problem_type == "free-form":
        return {"problem": "Describe the object the camera wearer is holding and where it is.", "options": [],
                "answer": f"The camera wearer holds a {scene.color} ball in the {scene.quadrant} of the view."}
    return {"problem": "How many seconds does the clip last?", "options": [], "answer": f"{seconds:.1f}"}


def make_video_r1_dataset(root: str | Path, n: int = 12, seed: int = 0, frames: tuple[int, int] = (8, 16),
                          file_name: str = "train.json", first_id: int = 1,
                          problem_types: tuple[str, ...] = PROBLEM_TYPES) -> Path:
    """Write ``n`` Video-R1-format samples under ``root`` and return the json path.

    Layout: ``videos/clip_XXXX.mp4`` (or ``frames/clip_XXXX/frame_XXX.jpg``, or ``images/img_XXXX.jpg``),
    ``roi/roi_XXXX.jpg``; media paths in the json are relative to ``root`` like the Video-R1 release. Problem
    types cycle through ``problem_types`` (all five by default: every type appears once ``n >= 5``). Sample 3
    (and every 7th after it) is a folder of frames and sample 5 (and every 7th after it) a single image, so
    ``n >= 6`` covers every media kind. ``problem_id`` counts from ``first_id`` (give a pool another range).
    """
    root = Path(root)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        problem_type = problem_types[i % len(problem_types)]
        scene = Scene(domain=rng.choice(("Industry", "XSports", "Animal")), color=rng.choice(tuple(COLORS)),
                      quadrant=rng.choice(QUADRANTS), direction=rng.choice(DIRECTIONS), squares=rng.randint(1, 4),
                      n_frames=rng.randint(*frames), seed=rng.randrange(2**31))
        kind = {3: "folder", 5: "image"}.get(i % 7, "mp4")
        data_type = "image" if kind == "image" and problem_type != "regression" else "video"
        if data_type == "image":
            scene = replace(scene, n_frames=1)
        label = rng.choice(LABEL_WORDS)
        clip = _draw_label(render_clip(scene), label)
        size = clip[0].size
        seconds = len(clip) / VIDEO_FPS
        box = roi_box(scene, size)
        middle = clip[len(clip) // 2]
        crop = middle.crop((int(box[0] * size[0]), int(box[1] * size[1]), int(box[2] * size[0]),
                            int(box[3] * size[1])))
        stem = f"{first_id + i:04d}"
        roi_rel = f"roi/roi_{stem}.jpg"
        atomic_write_bytes(root / roi_rel, _jpeg(crop))
        if data_type == "image":
            path = f"images/img_{stem}.jpg"
            atomic_write_bytes(root / path, _jpeg(clip[0]))
        elif kind == "folder":
            path = f"frames/clip_{stem}"
            with atomic_dir(root / path) as tmp:
                for t, frame in enumerate(clip):
                    (tmp / f"frame_{t + 1:03d}.jpg").write_bytes(_jpeg(frame))
        else:
            path = f"videos/clip_{stem}.mp4"
            write_mp4(clip, root / path)
        q = _question(problem_type, scene, label, seconds, rng)
        rows.append({
            "problem_id": first_id + i,
            "problem": q["problem"],
            "data_type": data_type,
            "problem_type": problem_type,
            "options": q["options"],
            "process": "",
            "solution": f"<answer>{q['answer']}</answer>",
            "path": path,
            "data_source": "egoforge-generated",
            "roi_path": roi_rel,
            "roi_box": box,
        })
    return atomic_write_json(root / file_name, rows)


def build_tiny_clip(out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random transformers CLIPModel + CLIPProcessor (character-level BPE tokenizer), saved as safetensors."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    # projection_dim in the sub-configs too, as in the released openai/clip-vit-* config.json: a folder loaded as
    # CLIPVisionModelWithProjection (LEGO's CLIP metric) reads the vision config's value
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, projection_dim=16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                  patch_size=8, projection_dim=16)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return out_dir


def warm_start_format(model_dir: str | Path, out_dir: str | Path, samples: list[dict], steps: int = 40,
                      lr: float = 3e-3, seed: int = 0) -> Path:
    """A few steps of plain causal-LM fine-tuning on text-only prompts -> Ego3S-formatted answers.

    The paper's IRL starts from a CoT-SFT checkpoint; a tiny random model likewise needs to have seen the
    ``<think>/<answer>/<object>`` format once before GRPO rewards vary within a group. Writes a checkpoint
    (model + processor) to ``out_dir``.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from egoforge.ego3s.prompts import build_prompt

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = processor.tokenizer
    texts = []
    for s in samples:
        answer = s["solution"].replace("<answer>", "").replace("</answer>", "")
        prompt = [{"role": "user", "content": build_prompt(s["problem"], s["problem_type"], s.get("options"))}]
        reply = f"<think>I see it</think><answer>{answer}</answer><object>ball</object>"
        chat = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        texts.append((chat, reply + tokenizer.eos_token))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        chat, reply = texts[step % len(texts)]
        prompt_ids = tokenizer(chat, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        input_ids = torch.tensor([prompt_ids + reply_ids])
        labels = torch.tensor([[-100] * len(prompt_ids) + reply_ids])
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return out_dir
