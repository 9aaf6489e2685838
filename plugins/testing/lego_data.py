"""Generated data in the exact LEGO layouts, with action frames that follow from the source frame and the action.

Each action shows a table seen from above, the camera wearer's hand and one coloured object (cup, box, bottle or
bowl). The target frame is the source frame after the action: "picks up" lifts the object towards the top of the
view, "puts down" lowers it, "pushes" moves it right and "pulls" moves it left, with the hand on the object. So a
frame generator can learn the target from (source frame, action), and the descriptions name what changes.

Written like the download (HF ``bolinlai/LEGO-Dataset``)::

    root/EgoGen/<ego4d.fho|epickitchen>/<split>/<clip>/<action>/<frame>.jpg
    root/EgoGen/<ego4d.fho|epickitchen>/val_gt_for_metric/<clip>/<action>/<target frame>.jpg
    root/EgoGen/<ego4d|epickitchen>_<split>.json  {clip: {action: {image_0, image_1, action, llava_forecast_finetune}}}
    root/curation_from_gpt/<dataset>_for_tuning_forecasting.json   (LLaVA conversations, train split)
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.lego.actions import FRAME_FOLDERS, QUERY, normalize_action

COLORS = {"red": (215, 45, 40), "green": (40, 175, 70), "blue": (45, 85, 225), "yellow": (240, 205, 40)}
OBJECTS = ("cup", "box", "bottle", "bowl")
# verb (third person, base) -> displacement of the object as a fraction of the frame (dx, dy)
VERBS = {
    ("picks up", "pick up"): (0.0, -0.28),
    ("puts down", "put down"): (0.0, 0.28),
    ("pushes", "push"): (0.3, 0.0),
    ("pulls", "pull"): (-0.3, 0.0),
}
MOTION_WORDS = {"pick up": "lifts it up", "put down": "lowers it onto the table", "push": "slides it to the right",
                "pull": "draws it to the left"}
END_WORDS = {"pick up": "higher", "put down": "lower", "push": "further right", "pull": "further left"}
FRAME_SIZE = (96, 64)


@dataclass(frozen=True)
class ActionScene:
    color: str
    obj: str
    verb: str  # base form, a key of MOTION_WORDS
    x: float  # object centre before the action, as fractions of width / height
    y: float
    seed: int

    def displacement(self) -> tuple[float, float]:
        return next(d for (_, base), d in VERBS.items() if base == self.verb)

    def narration(self, dataset: str) -> str:
        third = next(third for third, base in VERBS if base == self.verb)
        if dataset == "ego4d":
            return f"#C C {third} the {self.color} {self.obj}"
        return f"{self.verb} {self.color} {self.obj}"

    def description(self) -> str:
        return (f"The person reaches for the {self.color} {self.obj} with the right hand, grips it firmly and "
                f"{MOTION_WORDS[self.verb]}; the {self.color} {self.obj} ends up {END_WORDS[self.verb]} in view.")


def _draw_object(draw: ImageDraw.ImageDraw, obj: str, cx: float, cy: float, r: float, fill) -> None:
    box = [cx - r, cy - r, cx + r, cy + r]
    if obj == "cup":
        draw.rectangle([cx - r * 0.8, cy - r, cx + r * 0.8, cy + r], fill=fill, outline=(20, 20, 20))
        draw.arc([cx + r * 0.5, cy - r * 0.5, cx + r * 1.3, cy + r * 0.5], -90, 90, fill=(20, 20, 20), width=2)
    elif obj == "box":
        draw.rectangle(box, fill=fill, outline=(20, 20, 20))
    elif obj == "bottle":
        draw.rectangle([cx - r * 0.5, cy - r, cx + r * 0.5, cy + r], fill=fill, outline=(20, 20, 20))
        draw.rectangle([cx - r * 0.25, cy - r * 1.4, cx + r * 0.25, cy - r], fill=(30, 30, 30))
    else:
        draw.ellipse(box, fill=fill, outline=(20, 20, 20))


def render_pair(scene: ActionScene, size: tuple[int, int] = FRAME_SIZE) -> tuple[Image.Image, Image.Image]:
    """(source frame, target action frame) of ``scene``: deterministic for its seed."""
    rng = random.Random(scene.seed)
    w, h = size
    wood = (rng.randint(150, 175), rng.randint(110, 130), rng.randint(70, 90))
    background = Image.new("RGB", size, wood)
    draw = ImageDraw.Draw(background)
    for y in range(0, h, 6):  # wood grain
        draw.line([0, y + rng.uniform(-1, 1), w, y + rng.uniform(-1, 1)], fill=tuple(c - 18 for c in wood), width=1)
    for _ in range(2):  # clutter that stays put
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        draw.rectangle([x, y, x + 6, y + 4], fill=(235, 235, 230))
    dx, dy = scene.displacement()
    r = min(w, h) * 0.13
    frames = []
    for t, (ox, oy) in enumerate(((scene.x, scene.y), (scene.x + dx, scene.y + dy))):
        img = background.copy()
        d = ImageDraw.Draw(img)
        cx, cy = ox * w, oy * h
        _draw_object(d, scene.obj, cx, cy, r, COLORS[scene.color])
        # The hand approaches from the bottom right in the source frame and holds the object in the target frame.
        hx, hy = (cx + r * 1.8, cy + r * 2.0) if t == 0 else (cx + r * 0.7, cy + r * 0.6)
        d.line([hx, hy, w * 0.8, h + 4], fill=(225, 180, 150), width=max(3, int(r * 0.9)))
        d.ellipse([hx - r * 0.6, hy - r * 0.5, hx + r * 0.6, hy + r * 0.5], fill=(225, 180, 150))
        frames.append(img.filter(ImageFilter.SMOOTH))
    return frames[0], frames[1]


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=93)
    return buf.getvalue()


def random_scene(rng: random.Random) -> ActionScene:
    verb = rng.choice([base for _, base in VERBS])
    dx, dy = next(d for (_, base), d in VERBS.items() if base == verb)
    # Keep both positions inside the frame.
    x = rng.uniform(0.3, 0.7) - dx / 2
    y = rng.uniform(0.4, 0.6) - dy / 2
    return ActionScene(rng.choice(tuple(COLORS)), rng.choice(OBJECTS), verb, x, y, rng.randrange(2**31))


@dataclass(frozen=True)
class LegoLayout:
    root: Path
    dataset: str

    @property
    def egogen(self) -> Path:
        return self.root / "EgoGen"

    def frames_dir(self, split: str) -> Path:
        return self.egogen / FRAME_FOLDERS[self.dataset] / split

    def json(self, split: str) -> Path:
        return self.egogen / f"{self.dataset}_{split}.json"

    @property
    def metadata(self) -> Path:
        return self.root / f"{self.dataset}_metadata.json"

    @property
    def curation(self) -> Path:
        return self.root / "curation_from_gpt" / f"{self.dataset}_for_tuning_forecasting.json"

    @property
    def gt_dir(self) -> Path:
        return self.frames_dir("val_gt_for_metric")


def make_lego_dataset(root: str | Path, dataset: str = "ego4d", clips: dict[str, int] | None = None,
                      actions_per_clip: int = 2, size: tuple[int, int] = FRAME_SIZE, seed: int = 0) -> LegoLayout:
    """Write a LEGO-format dataset for ``dataset`` (``ego4d`` or ``epickitchen``) under ``root``."""
    clips = clips or {"train": 6, "val": 2}
    layout = LegoLayout(Path(root), dataset)
    rng = random.Random(f"{dataset}-{seed}")
    curation, metadata = [], {}
    for split, n_clips in clips.items():
        nested: dict[str, dict] = {}
        for c in range(n_clips):
            clip_id = f"{dataset}-{split}-clip{c:03d}"
            nested[clip_id] = {}
            # the download's <dataset>_metadata.json: the source video's size (frames are stored at that aspect)
            metadata[clip_id] = {"height": size[1] * 10, "width": size[0] * 10, "fps": 30.0}
            for a in range(actions_per_clip):
                scene = random_scene(rng)
                source, target = render_pair(scene, size)
                frame0, frame1 = 30 * a + 1, 30 * a + 16
                image_0 = f"{clip_id}/{a}/{frame0:06d}.jpg"
                image_1 = f"{clip_id}/{a}/{frame1:06d}.jpg"
                atomic_write_bytes(layout.frames_dir(split) / image_0, _jpeg(source))
                atomic_write_bytes(layout.frames_dir(split) / image_1, _jpeg(target))
                if split == "val":  # the metric folder holds only the ground-truth action frames
                    atomic_write_bytes(layout.gt_dir / image_1, _jpeg(target))
                narration = scene.narration(dataset)
                nested[clip_id][str(a)] = {
                    "image_0": image_0,
                    "image_1": image_1,
                    "action": narration,
                    "llava_forecast_finetune": scene.description(),
                }
                if split == "train":
                    question = QUERY.format(action=normalize_action(narration, dataset))
                    curation.append({"id": f"{clip_id}_{a}", "image": image_0, "conversations": [
                        {"from": "human", "value": f"<image>\n{question}"},
                        {"from": "gpt", "value": scene.description()},
                    ]})
        atomic_write_json(layout.json(split), nested)
    if curation:
        atomic_write_json(layout.curation, curation)
    atomic_write_json(layout.metadata, metadata)
    return layout


# --- a tiny LLaVA-1.5-style VLLM (the paper's stage-A architecture) --------------------------------------------

LLAVA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                "helpful, detailed, and polite answers to the user's questions.")
# Vicuna v1 format, what LLaMA-Factory's `llava` template writes: "<system>USER: <image>\n... ASSISTANT:"
LLAVA_CHAT_TEMPLATE = (
    '{{ "' + LLAVA_SYSTEM + '" }}'
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>\n{% elif 'text' in p %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}"
    " ASSISTANT:{% elif m['role'] == 'assistant' %}{{ m['content'] }}<|im_end|>{% endif %}{% endfor %}"
)


def build_tiny_llava(out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny random ``LlavaForConditionalGeneration`` (CLIP vision tower -> MLP projector -> LLaMA) with its
    processor, built offline: 32-px frames in 8-px patches give 16 visual tokens of the LM's width (64), as
    LLaVA-13B's 224-px ViT-L/14 gives 256 tokens of 5120. The tokenizer is egoforge's tiny byte-level BPE with
    ``<image>`` added."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from egoforge.data.atomic import atomic_dir
    from egoforge.testing.tiny_models import build_tokenizer

    tokenizer = build_tokenizer(1024, "qwen3_vl")
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                                bos_token_id=pad, eos_token_id=eos, pad_token_id=pad),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default")
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=False)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default", image_token="<image>",
        num_additional_image_tokens=1, chat_template=LLAVA_CHAT_TEMPLATE)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return out_dir
