"""Reading every dataset format into report samples: questions, options, answers, frames with timestamps, and
broken rows turned into issues that name file, row and field."""

from __future__ import annotations

import json

import pytest
from inspect_hostile import HOSTILE, HOSTILE_OPTION

from egoforge.data.validate import Issue
from egoforge.inspect.formats import load_dataset
from egoforge.inspect.samples import Sample, answer_letter, domain_from_paths, judge, split_options


def test_split_options_keeps_question_and_letters():
    question, options = split_options("How many squares?\nOptions:\nA) 1\n(B) 2\nC. 3\nD: 4")
    assert question == "How many squares?"
    assert options == [("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")]
    # A sentence starting with "I." is not option I: options run A, B, C, ...
    assert split_options("I. e. the left hand\nA) yes\nB) no") == ("I. e. the left hand", [("A", "yes"),
                                                                                          ("B", "no")])


@pytest.mark.parametrize("text, letter", [("B", "B"), ("(C)", "C"), ("D.", "D"), (" A ", "A"), ("red", None),
                                          ("Answer B", None)])
def test_answer_letter(text, letter):
    assert answer_letter(text) == letter


def test_domain_from_paths():
    assert domain_from_paths(["frames/Surgery/CholecTrack20_000/frame_001.jpg"]) == "Surgery"
    assert domain_from_paths(["testbed/EgoPet/x/frame_001.jpg"]) == "Animal"
    assert domain_from_paths(["somewhere/else.jpg"]) == ""


@pytest.mark.parametrize("record, verdict, why", [
    (None, "none", "no prediction"),
    ({"prediction": "B"}, "correct", ""),
    ({"prediction": "b"}, "correct", ""),  # the official match is case-insensitive
    ({"prediction": "A"}, "wrong", "predicted A (red) but the answer is B (green)"),
    ({"prediction": "", "parse_status": "unparsed"}, "wrong", "could not be parsed"),
])
def test_judge(record, verdict, why):
    sample = Sample(row=0, id="x", options=[("A", "red"), ("B", "green")], answer="B", prediction=record)
    judge(sample)
    assert sample.verdict == verdict and why in sample.why


def test_judge_free_text_answer_and_no_answer():
    sample = Sample(row=0, id="x", answer="Green", prediction={"prediction": " green "})
    judge(sample)
    assert sample.verdict == "correct"
    sample = Sample(row=0, id="x", answer="", prediction={"prediction": "A"})
    judge(sample)
    assert sample.verdict == "unscored"


def test_testbed_with_answers(inspect_testbed):
    fmt, samples = load_dataset(inspect_testbed["testbed"], answers=inspect_testbed["answer_map"])
    assert fmt == "egocross-testbed" and len(samples) == len(inspect_testbed["items"]) == 12
    first, item = samples[0], inspect_testbed["items"][0]
    assert first.question == HOSTILE  # kept verbatim: escaping is the page's job
    assert first.options[0] == ("A", HOSTILE_OPTION)
    assert first.answer == inspect_testbed["answer_map"][item["id"]]
    assert {s.domain for s in samples} == {"Surgery", "Industry", "XSports", "Animal"}
    for sample, item in zip(samples, inspect_testbed["items"]):
        assert sample.id == item["id"] and sample.category == item["primary_category"]
        fps = 1.0 if item["dataset"] == "EgoSurgery" or item["video_path"][0].endswith(".png") else 0.5
        assert [m.time for m in sample.media] == [j / fps for j in range(len(item["video_path"]))]
        assert [m.path for m in sample.media] == item["video_path"]


def test_testbed_bad_rows_become_issues(tmp_path, inspect_testbed):
    items = json.loads(inspect_testbed["testbed"].read_text())[:3]
    items[0]["options"][1] = 42
    items[1]["video_path"] = []
    items.append(["not", "an", "item"])
    path = tmp_path / "bad_testbed.json"
    path.write_text(json.dumps(items))
    _, samples = load_dataset(path, answers={})
    assert Issue(str(path), 0, "options[1]", "expected 'A: ...', got 42") in samples[0].issues
    assert any(i.field == "video_path" and i.row == 1 for i in samples[1].issues)
    assert any(i.field == "id" and "no answer" in i.message for i in samples[2].issues)
    assert samples[3].issues[0].row == 3 and samples[3].raw == '["not", "an", "item"]'


def test_sharegpt_images(inspect_sharegpt):
    fmt, samples = load_dataset(inspect_sharegpt["images"], fps=0.5)
    rows = inspect_sharegpt["rows"]
    assert fmt == "sharegpt" and len(samples) == len(rows)
    assert samples[0].question.startswith(HOSTILE)
    assert len(samples[1].options) == 4 and samples[1].answer in "ABCD"
    assert [m.time for m in samples[1].media] == [0.0, 2.0, 4.0][: len(rows[1]["images"])]
    assert samples[1].domain in {"Surgery", "Industry", "XSports", "Animal"}  # from frames/<Domain>/...
    assert samples[8].raw == '"not a sample"' and samples[8].issues[0].message == "sample is not a JSON object"
    assert samples[9].answer == "A" and samples[9].question == ""


def test_sharegpt_frame_list_videos_and_mp4(inspect_sharegpt):
    _, samples = load_dataset(inspect_sharegpt["videos"], fps=2.0)
    frames = inspect_sharegpt["rows"][0]["images"]
    assert [m.path for m in samples[0].media] == frames
    assert [m.field for m in samples[0].media] == [f"videos[0][{j}]" for j in range(len(frames))]
    assert [m.time for m in samples[0].media] == [j / 2.0 for j in range(len(frames))]
    clip = samples[-1]
    assert clip.id == "mp4-clip" and clip.media[0].kind == "video" and clip.options == [("A", "brighter"),
                                                                                       ("B", "darker")]


def test_verl_parquet(inspect_parquet, inspect_testbed):
    fmt, samples = load_dataset(inspect_parquet["path"])
    items = inspect_testbed["items"]
    assert fmt == "verl-parquet" and len(samples) == 6
    for sample, item in zip(samples, items):
        assert sample.id == item["id"]
        assert sample.answer == inspect_testbed["answer_map"][item["id"]]
        assert sample.category == item["primary_category"] and sample.domain in {"Surgery", "Industry"}
        assert [o[0] for o in sample.options] == ["A", "B", "C", "D"]
    assert samples[0].question == HOSTILE.strip()  # the prompt is trimmed, the hostile part kept
    video = samples[3].media  # {"video": frames, "sample_fps": 1.0}
    assert [m.time for m in video] == [float(j) for j in range(len(items[3]["video_path"]))]
    assert samples[1].media[0].kind == "image" and samples[1].media[0].path == items[1]["video_path"][0]
    assert samples[2].media[0].kind == "bytes" and samples[2].media[0].data.startswith(b"\x89PNG")


def test_verl_parquet_bad_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"prompt": "just a string", "reward_model": {"ground_truth": "A"}, "images": ["x.jpg"]},
        {"prompt": None, "reward_model": None, "images": None},
    ]), path)
    _, samples = load_dataset(path)
    assert Issue(str(path), 0, "prompt", "must be a chat list of {role, content}") in samples[0].issues
    assert any(i.field == "reward_model.ground_truth" and i.row == 1 for i in samples[1].issues)


def test_unreadable_files_name_themselves(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_dataset(bad)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 nope")
    with pytest.raises(ValueError, match="broken.parquet: not a readable parquet file"):
        load_dataset(broken)
    with pytest.raises(ValueError, match="unknown format"):
        load_dataset(bad, fmt="csv")


def test_fps_zero_means_no_timestamps(inspect_sharegpt):
    _, samples = load_dataset(inspect_sharegpt["images"], fps=0)
    assert samples[1].media and all(m.time is None for m in samples[1].media)
