"""Small copies of the suite's benchmarks in their real local layouts, for tests and offline demos.

Each generator writes what a user would have after downloading the benchmark (annotation files in the official
format, videos or frame folders, parquet files as the HF snapshots hold them), with egocentric clips rendered
by :mod:`egoforge.testing.egocross_data`. Every question is answerable from its frames: the colour of the object the
camera wearer holds, so a scorer can be checked against a known oracle. Layouts are documented in the benchmark modules
of :mod:`egoforge.lmms.tasks`.
"""

from __future__ import annotations

import io
import random
from fractions import Fraction
from pathlib import Path

from PIL import Image

from egoforge.data.atomic import atomic_write_bytes, atomic_write_json
from egoforge.data.video import write_video
from egoforge.testing.egocross_data import COLORS, DIRECTIONS, QUADRANTS, Scene, make_testbed, render_clip

COLOR_NAMES = tuple(COLORS)
HELD_QUESTION = "What color is the object I am holding?"


def _scene(rng: random.Random, color: str, n_frames: int, domain: str = "Industry") -> Scene:
    return Scene(domain=domain, color=color, quadrant=rng.choice(QUADRANTS), direction=rng.choice(DIRECTIONS),
                 squares=rng.randint(1, 3), n_frames=n_frames, seed=rng.randrange(2**31))


def encode_image(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_mp4(path: str | Path, frames: list[Image.Image], fps: float) -> Path:
    """Encode frames as an MPEG-4 video, written atomically."""
    return write_video(path, frames, Fraction(fps).limit_denominator(1000), codec="mpeg4")


def _write_parquet(path: Path, rows: list[dict], features) -> Path:
    import datasets

    buf = io.BytesIO()
    datasets.Dataset.from_list(rows, features=features).to_parquet(buf)
    return atomic_write_bytes(path, buf.getvalue())


def _colors(rng: random.Random, n: int) -> list[str]:
    """``n`` answer colours cycling through all four (balanced answers), in a shuffled order."""
    colors = [COLOR_NAMES[i % len(COLOR_NAMES)] for i in range(n)]
    rng.shuffle(colors)
    return colors


def make_qaego4d(root: str | Path, n: int = 4, frames: int = 8, fps: float = 2.0, seed: int = 0) -> Path:
    """``annotations.QaEgo4D_test_close.json`` + ``clips/<video_id>.mp4`` (GroundVQA's close-set format)."""
    root, rng = Path(root), random.Random(seed)
    rows = []
    for i, color in enumerate(_colors(rng, n)):
        video_id = f"{seed:04x}{i:04x}-0000-4000-8000-{rng.randrange(16**12):012x}"
        write_mp4(root / "clips" / f"{video_id}.mp4", render_clip(_scene(rng, color, frames)), fps)
        rows.append({"video_id": video_id, "sample_id": f"{video_id}_{i}", "question": HELD_QUESTION,
                     "answer": color, "wrong_answers": [c for c in COLOR_NAMES if c != color],
                     "moment_start_frame": 0.0, "moment_end_frame": frames / fps * 30})
    atomic_write_json(root / "annotations.QaEgo4D_test_close.json", rows)
    return root


def make_egotextvqa(root: str | Path, per_split: int = 2, frames: int = 12, seed: int = 0) -> Path:
    """Both splits: outdoor as 6 fps frame folders (``video2frame.py`` layout), indoor as 6 fps mp4 files."""
    root, rng = Path(root), random.Random(seed)
    for split in ("outdoor", "indoor"):
        data = []
        for i, color in enumerate(_colors(rng, per_split)):
            video_id = 100 + i if split == "outdoor" else f"{rng.randrange(16**8):08x}-0000-4000-8000-{i:012d}"
            clip = render_clip(_scene(rng, color, frames))
            if split == "outdoor":
                for t, img in enumerate(clip):
                    atomic_write_bytes(root / split / str(video_id) / f"frame_{t + 1:05d}.jpg", encode_image(img))
            else:
                write_mp4(root / split / f"{video_id}.mp4", clip, 6.0)
            data.append({"video_id": video_id, "question_id": float(i + 1), "question": HELD_QUESTION,
                         "question_type": "description" if split == "outdoor" else "hands-on",
                         "correct_answer": color, "timestamp": round((frames - 1) / 6.0 * 0.8, 1)})
        atomic_write_json(root / f"egotextvqa_{split}" / "total.json",
                          [{"dataset": "egotextqa", "split": split, "task_setting": "open-ended", "data": data}])
    return root


def make_egoschema(root: str | Path, n: int = 3, frames: int = 8, fps: float = 2.0, seed: int = 0) -> Path:
    """``Subset/test-00000-of-00001.parquet`` (lmms-lab/egoschema columns) + ``videos/<video_idx>.mp4``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, rng = Path(root), random.Random(seed)
    rows = []
    choices = [*COLOR_NAMES, "black"]
    for i, color in enumerate(_colors(rng, n)):
        video_idx = f"{seed:04x}{i:04x}-1111-4000-8000-{rng.randrange(16**12):012x}"
        write_mp4(root / "videos" / f"{video_idx}.mp4", render_clip(_scene(rng, color, frames)), fps)
        options = [c for c in choices if c != color]
        rng.shuffle(options)
        options.insert(i % 5, color)  # answers spread over the letters
        rows.append({"question_idx": str(i), "question": f"{HELD_QUESTION} Pick the colour c holds.",
                     "video_idx": video_idx, "option": [f"{'ABCDE'[k]}. {o}" for k, o in enumerate(options)],
                     "answer": str(options.index(color))})
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    atomic_write_bytes(root / "Subset" / "test-00000-of-00001.parquet", buf.getvalue())
    return root


def egoplan2_features():
    """The column types of ``nv-njb/egoplan-bench2`` (as lmms-eval's stock task declares them)."""
    import datasets

    text = datasets.Value("string")
    return datasets.Features({
        "sample_id": text, "domain": text, "task_goal": text, "task_start_frame": datasets.Value("int64"),
        "current_observation_frame": datasets.Value("int64"), "formatted_question": text, "choice_a": text,
        "choice_b": text, "choice_c": text, "choice_d": text, "ground_truth": text, "video_file": text,
        "keyframes": datasets.Sequence(datasets.Image(decode=True)),
    })


def make_egoplan2(root: str | Path, n: int = 3, keyframes: int = 3, parquet: bool = True, seed: int = 0) -> Path:
    """EgoPlan-Bench2 rows: embedded keyframes in parquet (HF snapshot) or ``egoplan2.json`` + image files."""
    root, rng = Path(root), random.Random(seed)
    rows = []
    for i, color in enumerate(_colors(rng, n)):
        frames = render_clip(_scene(rng, color, keyframes, domain="XSports"))
        options = list(COLOR_NAMES)
        rng.shuffle(options)
        letter = "ABCD"[options.index(color)]
        actions = [f"put down the {c} object" for c in options]
        question = ("Considering the progress shown in the video and my current observation in the last frame, "
                    "what action should I take next in order to tidy up?\n"
                    + "\n".join(f"{lt}. {a}" for lt, a in zip("ABCD", actions)))
        if parquet:
            images = [{"bytes": encode_image(f), "path": None} for f in frames]
        else:
            images = []
            for t, frame in enumerate(frames):
                rel = f"keyframes/{i:03d}/{t:02d}.jpg"
                atomic_write_bytes(root / rel, encode_image(frame))
                images.append(rel)
        rows.append({"sample_id": f"{i:05d}", "domain": "Daily life", "task_goal": "tidy up",
                     "task_start_frame": 0, "current_observation_frame": keyframes * 10,
                     "formatted_question": question,
                     "choice_a": actions[0], "choice_b": actions[1], "choice_c": actions[2], "choice_d": actions[3],
                     "ground_truth": letter, "video_file": f"videos/{i:05d}.mp4", "keyframes": images})
    if parquet:
        _write_parquet(root / "data" / "test-00000-of-00001.parquet", rows, egoplan2_features())
    else:
        atomic_write_json(root / "egoplan2.json", rows)
    return root


def make_egothink(root: str | Path, capabilities: tuple[str, ...] = ("Activity", "Object_existence"),
                  per_capability: int = 2, parquet: bool = True, seed: int = 0) -> Path:
    """EgoThink capabilities: ``<Capability>/test-00000-of-00001.parquet`` or ``<Capability>.json`` + images."""
    import datasets

    root, rng = Path(root), random.Random(seed)
    features = datasets.Features({"id": datasets.Value("int64"), "image": datasets.Image(),
                                  "question": datasets.Value("string"), "answer": datasets.Value("string")})
    for c, capability in enumerate(capabilities):
        rows = []
        for i, color in enumerate(_colors(rng, per_capability)):
            frame = render_clip(_scene(rng, color, 1, domain="Animal"))[0]
            if parquet:
                image: object = {"bytes": encode_image(frame, "PNG"), "path": None}
            else:
                image = f"images/{capability}/{i:03d}.png"
                atomic_write_bytes(root / image, encode_image(frame, "PNG"))
            rows.append({"id": c * 100 + i, "image": image, "question": HELD_QUESTION.lower(), "answer": color})
        if parquet:
            _write_parquet(root / capability / "test-00000-of-00001.parquet", rows, features)
        else:
            atomic_write_json(root / f"{capability}.json", rows)
    return root


def make_egocross(root: str | Path, per_domain: int = 1, seed: int = 1) -> Path:
    """The EgoCross testbed layout (``egocross_testbed_imgs.json`` + answers + frames), options shuffled."""
    make_testbed(root, per_domain=per_domain, frames=(2, 3), seed=seed, shuffle_options=True)
    return Path(root)


BUILDERS = {"egoschema": make_egoschema, "egoplan2": make_egoplan2, "egothink": make_egothink,
            "qaego4d": make_qaego4d, "egotextvqa": make_egotextvqa, "egocross": make_egocross}


def make_benchmarks(root: str | Path, names: tuple[str, ...] = tuple(BUILDERS)) -> dict[str, Path]:
    """Every benchmark under ``root/<name>`` (the layout ``egoforge evaluate suite --data-root`` expects)."""
    root = Path(root)
    return {name: BUILDERS[name](root / name) for name in names}

