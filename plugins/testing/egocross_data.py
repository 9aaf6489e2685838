"""Generated egocentric-looking clips and QA in the real EgoCross layouts, for tests and the offline demo.

Every clip is a short first-person scene: a domain-specific background (tissue for surgery, a workbench for
industry, a tilted horizon for extreme sports, grass for pet cameras), the camera wearer's hand (or paw, or
instrument tip) at the bottom of the view holding a coloured object, a few distractor shapes, and camera shake.
Each question is answerable from the frames alone: the held object's colour (Identification), how many squares
are visible (Counting), which quadrant the held object is in (Localization) and where it is moving
(Prediction). Answers are balanced over the four letters, so chance is 25%.

``coupled=True`` ties all of a clip's attributes to one latent state (the k-th colour goes with the k-th quadrant,
direction and count), so every question of a clip has the same answer letter. Every question stays answerable from
the frames, and a tiny random model fine-tuned for a minute can learn it; with independent attributes it would
need to route on the question, which takes far longer. The demo uses coupled data; tests use both.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.data.egocross import DOMAIN_SOURCES, DOMAINS, SUPPORT_SET_DOMAIN_FILES

COLORS = {"red": (220, 40, 40), "green": (40, 190, 70), "blue": (40, 90, 235), "yellow": (245, 215, 40)}
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")
DIRECTIONS = ("left", "right", "up", "down")
COUNTS = ("1", "2", "3", "4")


@dataclass(frozen=True)
class QuestionKind:
    primary_category: str
    question_type: str
    text: str
    options: tuple[str, ...]


QUESTION_KINDS = {
    "Identification": QuestionKind(
        "Identification",
        "dominant held-object identification",
        "What is the color of the object held by the camera wearer?",
        tuple(COLORS),
    ),
    "Counting": QuestionKind(
        "Counting", "object counting", "How many squares are visible in the scene?", COUNTS
    ),
    "Localization": QuestionKind(
        "Localization",
        "object spatial localization",
        "Where is the held object located in the view?",
        QUADRANTS,
    ),
    "Prediction": QuestionKind(
        "Prediction",
        "next direction prediction",
        "In which direction will the held object move next?",
        DIRECTIONS,
    ),
}

# Which question categories each domain asks, mirroring the real testbed's category mix per domain.
DOMAIN_CATEGORIES = {
    "Animal": ("Identification", "Localization"),
    "Industry": ("Identification", "Counting", "Localization", "Prediction"),
    "XSports": ("Identification", "Localization", "Prediction"),
    "Surgery": ("Identification", "Counting", "Localization", "Prediction"),
}

FRAME_SIZE = (96, 64)  # width, height: non-square like real egocentric footage, 6 tokens per frame for Qwen3-VL


@dataclass(frozen=True)
class Scene:
    """Everything a clip shows; each question reads one attribute."""

    domain: str
    color: str
    quadrant: str
    direction: str
    squares: int
    n_frames: int
    seed: int

    def answer(self, category: str) -> str:
        return {
            "Identification": self.color,
            "Counting": str(self.squares),
            "Localization": self.quadrant,
            "Prediction": self.direction,
        }[category]


def _background(domain: str, rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    if domain == "Surgery":  # pink tissue with darker vessels, vignetted like an endoscope
        base = (rng.randint(170, 200), rng.randint(90, 110), rng.randint(100, 120))
        draw.rectangle([0, 0, w, h], fill=base)
        for _ in range(6):
            x0, y0 = rng.randint(0, w), rng.randint(0, h)
            draw.line([x0, y0, x0 + rng.randint(-40, 40), y0 + rng.randint(-30, 30)], fill=(120, 30, 40), width=2)
        draw.ellipse([-w // 3, -h // 3, w + w // 3, h + h // 3], outline=(20, 10, 10), width=h // 5)
    elif domain == "Industry":  # grey workbench with a grid
        base = rng.randint(110, 140)
        draw.rectangle([0, 0, w, h], fill=(base, base, base + 8))
        for x in range(0, w, 12):
            draw.line([x, 0, x, h], fill=(base - 30,) * 3, width=1)
        for y in range(0, h, 12):
            draw.line([0, y, w, y], fill=(base - 30,) * 3, width=1)
    elif domain == "XSports":  # sky over ground with a tilted horizon (FPV)
        tilt = rng.uniform(-0.35, 0.35)
        mid = h * rng.uniform(0.35, 0.55)
        draw.rectangle([0, 0, w, h], fill=(150, 200, 240))
        left, right = mid - tilt * w / 2, mid + tilt * w / 2
        draw.polygon([(0, left), (w, right), (w, h), (0, h)], fill=(120, 100, 70))
    else:  # Animal: grass seen from a low pet-mounted camera
        draw.rectangle([0, 0, w, h], fill=(90, 140, 60))
        for _ in range(40):
            x, y = rng.randint(0, w), rng.randint(0, h)
            draw.line([x, y, x + rng.randint(-2, 2), y - rng.randint(3, 7)], fill=(60, 110, 40), width=1)
    return img


def _quadrant_center(quadrant: str, size: tuple[int, int]) -> tuple[float, float]:
    w, h = size
    x = w * (0.27 if "left" in quadrant else 0.73)
    y = h * (0.3 if "top" in quadrant else 0.7)
    return x, y


_STEP = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def render_clip(scene: Scene, size: tuple[int, int] = FRAME_SIZE) -> list[Image.Image]:
    """Render the frames of ``scene``: deterministic for a given seed."""
    rng = random.Random(scene.seed)
    w, h = size
    background = _background(scene.domain, rng, size)
    squares = []
    occupied = _quadrant_center(scene.quadrant, size)
    while len(squares) < scene.squares:
        x, y = rng.uniform(6, w - 14), rng.uniform(6, h - 14)
        if math.dist((x, y), occupied) > 16 and all(math.dist((x, y), s[:2]) > 12 for s in squares):
            squares.append((x, y, rng.choice([(250, 250, 250), (30, 30, 30)])))
    cx, cy = occupied
    dx, dy = _STEP[scene.direction]
    frames = []
    for t in range(scene.n_frames):
        img = background.copy()
        draw = ImageDraw.Draw(img)
        shake_x, shake_y = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)
        for sx, sy, fill in squares:
            draw.rectangle([sx + shake_x, sy + shake_y, sx + 8 + shake_x, sy + 8 + shake_y], fill=fill)
        # Move within the quadrant so the Localization answer holds on every frame.
        progress = (t / max(1, scene.n_frames - 1)) - 0.5
        ox, oy = cx + dx * progress * 14 + shake_x, cy + dy * progress * 8 + shake_y
        hand = (225, 180, 150) if scene.domain != "Animal" else (120, 80, 50)
        if scene.domain == "Surgery":
            hand = (170, 170, 180)  # instrument tip
        hx = ox + (8 if ox < w / 2 else -8)
        draw.ellipse([hx - 9, oy + 6, hx + 9, oy + 19], fill=hand)
        draw.line([hx, oy + 17, hx + (-12 if ox < w / 2 else 12), h], fill=hand, width=7)
        r = 11  # large enough to fill most of a 32x32 merged patch: a tiny random model must be able to see it
        draw.ellipse([ox - r, oy - r, ox + r, oy + r], fill=COLORS[scene.color], outline=(15, 15, 15))
        frames.append(img.filter(ImageFilter.SMOOTH) if t % 2 else img)
    return frames


def _encode(img: Image.Image, suffix: str) -> bytes:
    import io

    buf = io.BytesIO()
    if suffix == ".png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _plan(domain: str, n: int, rng: random.Random) -> list[tuple[str, int]]:
    """Balanced (category, answer index) pairs for ``n`` questions of ``domain``."""
    cats = DOMAIN_CATEGORIES[domain]
    # Letters cycle A-D; the category shifts by one each round so no category is tied to a letter.
    plan = [(cats[(i + i // 4) % len(cats)], i % 4) for i in range(n)]
    rng.shuffle(plan)
    return plan


def _scene_for(
    domain: str, category: str, answer_idx: int, rng: random.Random, frames: tuple[int, int], coupled: bool = False
) -> Scene:
    if coupled:
        state = answer_idx
        return Scene(domain=domain, color=tuple(COLORS)[state], quadrant=QUADRANTS[state],
                     direction=DIRECTIONS[state], squares=state + 1, n_frames=rng.randint(*frames),
                     seed=rng.randrange(2**31))
    attrs = {
        "color": rng.choice(tuple(COLORS)),
        "quadrant": rng.choice(QUADRANTS),
        "direction": rng.choice(DIRECTIONS),
        "squares": rng.randint(1, 4),
    }
    value = QUESTION_KINDS[category].options[answer_idx]
    key = {"Identification": "color", "Counting": "squares", "Localization": "quadrant", "Prediction": "direction"}
    attrs[key[category]] = int(value) if category == "Counting" else value
    n_frames = rng.randint(*frames)
    return Scene(domain=domain, n_frames=n_frames, seed=rng.randrange(2**31), **attrs)


def _options(kind: QuestionKind, answer: str, rng: random.Random, shuffle: bool) -> tuple[list[str], str]:
    opts = list(kind.options)
    if shuffle:
        rng.shuffle(opts)
    return opts, "ABCD"[opts.index(answer)]


def support_set_user_text(question: str, options: list[str], n_frames: int) -> str:
    """The user turn of an EgoCross support-set sample: one ``<image>`` per frame, the question, ``A) ..`` lines."""
    lines = "\n".join(f"{letter}) {opt}" for letter, opt in zip("ABCD", options))
    return "<image>" * n_frames + f"{question}\n{lines}"


def make_support_set(
    root: str | Path,
    per_domain: int = 20,
    frames: tuple[int, int] = (4, 8),
    seed: int = 0,
    shuffle_options: bool = False,
    coupled: bool = False,
) -> Path:
    """Write a support set in the layout of ModelScope ``YuLi2024/EgoCross_support_set``.

    ``train.json`` (all domains), ``train_{animal,industry,xsports,surgery}.json``, ``dataset_info.json`` (entry
    ``egocross`` -> ``train.json``) and ``frames/<Domain>/<Video>/frame_XXX.jpg``; image paths are relative to
    ``root`` as in the download.
    """
    root = Path(root)
    rng = random.Random(seed)
    all_rows = []
    for domain in DOMAINS:
        rows = []
        for i, (category, answer_idx) in enumerate(_plan(domain, per_domain, rng)):
            scene = _scene_for(domain, category, answer_idx, rng, frames, coupled)
            kind = QUESTION_KINDS[category]
            options, letter = _options(kind, scene.answer(category), rng, shuffle_options)
            video = f"{DOMAIN_SOURCES[domain][0]}_{i:03d}"
            paths = []
            for t, img in enumerate(render_clip(scene)):
                rel = f"frames/{domain}/{video}/frame_{t + 1:03d}.jpg"
                atomic_write_bytes(root / rel, _encode(img, ".jpg"))
                paths.append(rel)
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": support_set_user_text(kind.text, options, len(paths))},
                        {"role": "assistant", "content": letter},
                    ],
                    "images": paths,
                }
            )
        atomic_write_json(root / SUPPORT_SET_DOMAIN_FILES[domain], rows)
        all_rows.extend(rows)
    atomic_write_json(root / "train.json", all_rows)
    atomic_write_json(
        root / "dataset_info.json",
        {
            "egocross": {
                "file_name": "train.json",
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant"},
            }
        },
    )
    return root


def make_testbed(
    root: str | Path,
    per_domain: int = 12,
    frames: tuple[int, int] = (4, 8),
    seed: int = 1,
    shuffle_options: bool = False,
    coupled: bool = False,
    real_shape: bool = False,
) -> tuple[Path, Path]:
    """Write an EgoCross-testbed-format benchmark: ``egocross_testbed_imgs.json`` + ``egocross_testbed_answers.json``.

    Items carry id, question_id, dataset, primary_category, question_type, question_text, options ``"A: .."``,
    original_video_fps and video_path (frame list relative to ``root``). Surgery alternates CholecTrack20 (some
    clips as .png at 1 fps, like the real testbed) and EgoSurgery. Returns (testbed path, answers path).

    ``real_shape`` writes the published file's shape instead: integer ids, no ``question_id`` in the testbed,
    absolute ``/egocross_testbed/<dataset>/generated/<video>/frames/<q>/frame_00000.jpg`` paths (the frames under
    ``root/egocross_testbed``), float ``original_video_fps`` (25.0 for surgery, 30.0 otherwise), answers with a
    string ``question_id``, and the Codabench ``submission_template.json`` (``{id, question_id, dataset,
    answer: ""}``).
    """
    root = Path(root)
    rng = random.Random(seed)
    items, answers = [], []
    qid = 0
    for domain in DOMAINS:
        for i, (category, answer_idx) in enumerate(_plan(domain, per_domain, rng)):
            sources = DOMAIN_SOURCES[domain]
            dataset = sources[i % len(sources)]
            suffix = ".png" if dataset == "CholecTrack20" and i % 4 == 0 else ".jpg"
            scene = _scene_for(domain, category, answer_idx, rng, frames, coupled)
            kind = QUESTION_KINDS[category]
            options, letter = _options(kind, scene.answer(category), rng, shuffle_options)
            video = f"{dataset}_{i:03d}"
            qid += 1
            slug = kind.question_type.replace(" ", "-")
            paths = []
            for t, img in enumerate(render_clip(scene)):
                if real_shape:
                    rel = f"egocross_testbed/{dataset}/generated/VID{i:03d}/frames/q{qid}/frame_{t:05d}{suffix}"
                else:
                    rel = f"testbed/{dataset}/{video}/frame_{t + 1:03d}{suffix}"
                atomic_write_bytes(root / rel, _encode(img, suffix))
                paths.append("/" + rel if real_shape else rel)
            item_id = qid if real_shape else f"{dataset}_{qid:04d}"
            question_id = f"{dataset}_VID{i:03d}_q{qid}_{slug}" if real_shape else qid
            item = {
                "id": item_id,
                "question_id": question_id,
                "dataset": dataset,
                "primary_category": kind.primary_category,
                "question_type": kind.question_type,
                "question_text": kind.text,
                "options": [f"{lt}: {opt}" for lt, opt in zip("ABCD", options)],
                "original_video_fps": (25.0 if domain == "Surgery" else 30.0) if real_shape
                else (30.0 if dataset != "EgoPet" else 29.97),
                "video_path": paths,
            }
            items.append({k: v for k, v in item.items() if k != "question_id"} if real_shape else item)
            answers.append(
                {
                    "id": item_id,
                    "question_id": question_id,
                    "dataset": dataset,
                    "correct_option_letter": letter,
                    "answer_text": scene.answer(category),
                    "detailed_answer": f"The frames show that the answer is {scene.answer(category)}.",
                }
            )
    testbed = atomic_write_json(root / "egocross_testbed_imgs.json", items)
    answers_path = atomic_write_json(root / "egocross_testbed_answers.json", answers)
    if real_shape:
        template = [{"id": a["id"], "question_id": a["question_id"], "dataset": a["dataset"], "answer": ""}
                    for a in answers]
        atomic_write_json(root / "submission_template.json", template)
    return testbed, answers_path


def corpus_sentences() -> Iterator[str]:
    """Sentences that cover the generated QA and the CloseQA prompt, for training the tiny tokenizer."""
    from egoforge.eval.egocross_protocol import build_closeqa_prompt

    for kind in QUESTION_KINDS.values():
        yield support_set_user_text(kind.text, list(kind.options), 0)
        yield build_closeqa_prompt(kind.text, [f"{lt}: {o}" for lt, o in zip("ABCD", kind.options)], 30.0, 0.5)
        for letter in "ABCD":
            yield json.dumps({"prediction": letter, "reason": f"The frames show {kind.options[0]}."})
    for domain, sources in DOMAIN_SOURCES.items():
        yield f"{domain} " + " ".join(sources)
    yield "<think>\n\n</think>\n\n"
