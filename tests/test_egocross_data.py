"""Generated data is in the exact EgoCross layouts, balanced, deterministic, and answerable from the frames."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from egoforge.testing.egocross_data import COLORS, QUADRANTS, make_support_set, make_testbed


def test_support_set_layout(egocross_work):
    root = egocross_work / "data" / "egocross"
    files = {p.name for p in root.iterdir()}
    assert {"train.json", "train_animal.json", "train_industry.json", "train_xsports.json", "train_surgery.json",
            "dataset_info.json", "frames"} == files
    rows = json.loads((root / "train.json").read_text())
    assert len(rows) == 12
    for row in rows:
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"].count("<image>") == len(row["images"])
        assert "\nA) " in user["content"] and assistant["content"] in "ABCD"
        domain = row["images"][0].split("/")[1]
        assert all(p.startswith(f"frames/{domain}/") and p.split("/")[-1].startswith("frame_") for p in row["images"])
    per_domain = sum(len(json.loads((root / f"train_{d}.json").read_text())) for d in
                     ("animal", "industry", "xsports", "surgery"))
    assert per_domain == 12


def test_testbed_layout(egocross_work):
    items = json.loads((egocross_work / "testbed" / "egocross_testbed_imgs.json").read_text())
    answers = json.loads((egocross_work / "testbed" / "egocross_testbed_answers.json").read_text())
    fields = {"id", "question_id", "dataset", "primary_category", "question_type", "question_text", "options",
              "original_video_fps", "video_path"}
    assert all(set(i) == fields for i in items)
    assert all(o[:3] in ("A: ", "B: ", "C: ", "D: ") for i in items for o in i["options"])
    assert {a["id"] for a in answers} == {i["id"] for i in items}
    assert any(p.endswith(".png") for i in items for p in i["video_path"])  # CholecTrack20 png clips


def test_answers_are_balanced_and_generation_deterministic(tmp_path):
    make_support_set(tmp_path / "a", per_domain=8, frames=(2, 2), seed=3)
    make_support_set(tmp_path / "b", per_domain=8, frames=(2, 2), seed=3)
    rows = json.loads((tmp_path / "a" / "train.json").read_text())
    assert Counter(r["messages"][1]["content"] for r in rows) == Counter({"A": 8, "B": 8, "C": 8, "D": 8})
    assert (tmp_path / "a" / "train.json").read_text() == (tmp_path / "b" / "train.json").read_text()
    first = rows[0]["images"][0]
    assert (tmp_path / "a" / first).read_bytes() == (tmp_path / "b" / first).read_bytes()


def _held_object(frame: np.ndarray) -> tuple[str, str]:
    """An oracle that reads the held object's colour and quadrant off the pixels."""
    best, where = None, None
    for name, rgb in COLORS.items():
        mask = (np.abs(frame.astype(int) - np.array(rgb)).sum(-1) < 60)
        if mask.sum() > 40 and (best is None or mask.sum() > best[1]):
            ys, xs = np.nonzero(mask)
            best, where = (name, mask.sum()), (xs.mean(), ys.mean())
    assert best is not None
    h, w = frame.shape[:2]
    quadrant = ("top" if where[1] < h / 2 else "bottom") + " " + ("left" if where[0] < w / 2 else "right")
    return best[0], quadrant


@pytest.mark.parametrize("coupled", [False, True])
def test_questions_are_answerable_from_the_frames(tmp_path, coupled):
    testbed, answers = make_testbed(tmp_path, per_domain=8, seed=5, coupled=coupled)
    truth = {a["id"]: a["answer_text"] for a in json.loads(answers.read_text())}
    checked = 0
    for item in json.loads(testbed.read_text()):
        if item["primary_category"] not in ("Identification", "Localization"):
            continue
        frame = np.asarray(Image.open(tmp_path / item["video_path"][0]).convert("RGB"))
        color, quadrant = _held_object(frame)
        expected = truth[item["id"]]
        assert (color if item["primary_category"] == "Identification" else quadrant) == expected, item["id"]
        assert quadrant in QUADRANTS
        checked += 1
    assert checked >= 8
