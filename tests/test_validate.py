"""`egoforge validate`: every bad-input case names file, row and field; the source is never modified."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from egoforge.data.validate import validate_file
from egoforge.tools.cli import main as cli


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture()
def support(tmp_path, egocross_work) -> Path:
    root = tmp_path / "egocross"
    shutil.copytree(egocross_work / "data" / "egocross", root)
    return root


def _rows(root: Path) -> list:
    return json.loads((root / "train.json").read_text())


def _write(root: Path, rows: list) -> Path:
    path = root / "bad.json"
    path.write_text(json.dumps(rows))
    return path


def test_generated_support_set_and_testbed_are_clean(egocross_work):
    assert validate_file(egocross_work / "data" / "egocross" / "train.json") == []
    testbed = egocross_work / "testbed"
    answers = testbed / "egocross_testbed_answers.json"
    assert validate_file(testbed / "egocross_testbed_imgs.json", answers=answers) == []


def _mutate_tag_count(rows):
    rows[0]["messages"][0]["content"] = "<image>" + rows[0]["messages"][0]["content"]


def _mutate_missing_file(rows):
    rows[1]["images"][0] = "frames/Surgery/nowhere/frame_001.jpg"


def _mutate_escape(rows):
    rows[2]["images"][0] = "../../etc/passwd"


def _mutate_absolute_outside(rows):
    rows[2]["images"][0] = "/etc/hostname"


def _mutate_roles(rows):
    rows[3]["messages"] = [rows[3]["messages"][1], rows[3]["messages"][0]]


def _mutate_answer(rows):
    rows[4]["messages"][1]["content"] = "F"


def _mutate_not_object(rows):
    rows[5] = ["not", "a", "sample"]


def _mutate_content_type(rows):
    rows[0]["messages"][0]["content"] = 42


@pytest.mark.parametrize(
    "mutate, row, field, reason",
    [
        (_mutate_tag_count, 0, "images", "<image> tags but"),
        (_mutate_missing_file, 1, "images[0]", "file not found"),
        (_mutate_escape, 2, "images[0]", "escapes the data root"),
        (_mutate_absolute_outside, 2, "images[0]", "escapes the data root"),
        (_mutate_absolute_outside, 2, "images[0]", "image does not decode: /etc/hostname"),
        (_mutate_roles, 3, "messages[*].role", "roles must alternate"),
        (_mutate_answer, 4, "messages[-1].content", "answer 'F' is not among the options ABCD"),
        (_mutate_not_object, 5, None, "not a JSON object"),
        (_mutate_content_type, 0, "messages[0].content", "must be a string"),
    ],
)
def test_bad_rows_are_reported_with_file_row_and_field(support, mutate, row, field, reason):
    rows = _rows(support)
    mutate(rows)
    path = _write(support, rows)
    # An absolute path outside --media-dir is an escape; without --media-dir it is used as it is (and checked).
    issues = validate_file(path, media_dir=None if "decode" in reason else support)
    match = [i for i in issues if i.row == row and i.field == field and reason in i.message]
    assert match, [str(i) for i in issues]
    assert str(path) in str(match[0])


def test_undecodable_image_is_reported(support):
    rows = _rows(support)
    frame = support / rows[0]["images"][0]
    frame.write_bytes(b"not a jpeg")
    issues = validate_file(support / "train.json")
    assert any(i.row == 0 and "does not decode" in i.message for i in issues)
    # --no-decode only checks existence
    assert not [i for i in validate_file(support / "train.json", decode=False) if "decode" in i.message]


def test_sharegpt_conversations_variant_and_videos(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rows = [{"conversations": [{"from": "human", "value": "<video>Q\nA) x\nB) y"}, {"from": "gpt", "value": "B"}],
             "videos": [["a.png", "a.png"]]}]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert validate_file(path) == []


def test_testbed_problems(egocross_work, tmp_path):
    testbed = egocross_work / "testbed"
    items = json.loads((testbed / "egocross_testbed_imgs.json").read_text())
    items[0]["options"][1] = "bad option"
    items[1]["dataset"] = "Ego4D"
    items[2]["video_path"] = []
    items[3]["id"] = items[4]["id"]
    bad = testbed / "bad_testbed.json"
    bad.write_text(json.dumps(items))
    answers = json.loads((testbed / "egocross_testbed_answers.json").read_text())
    answers[5]["correct_option_letter"] = "E"
    bad_answers = tmp_path / "answers.json"
    bad_answers.write_text(json.dumps(answers))
    issues = validate_file(bad, answers=bad_answers)
    found = {(i.row, i.field) for i in issues}
    assert {(0, "options[1]"), (1, "dataset"), (2, "video_path"), (4, "id"), (5, "correct_option_letter")} <= found


def test_cli_exit_codes_and_source_untouched(support, tmp_path, capsys):
    before = _tree_digest(support)
    assert cli(["validate", str(support / "train.json"), "--quiet"]) == 0
    rows = _rows(support)
    _mutate_answer(rows)
    bad = _write(support, rows)
    before = _tree_digest(support)
    report = tmp_path / "issues.json"
    assert cli(["validate", str(bad), "--quiet", "--json", str(report)]) == 1
    assert _tree_digest(support) == before
    out = capsys.readouterr().out
    assert f"{bad}, row 4, field 'messages[-1].content'" in out
    assert json.loads(report.read_text())[0]["row"] == 4


def test_unreadable_file_is_one_clear_issue(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{oops")
    (issue,) = validate_file(path)
    assert "not valid JSON" in issue.message and issue.file == str(path)
