"""EgoCross on files shaped like the published test set: absolute /egocross_testbed/... paths under --media-dir,
the official fps rule, the SFT repository's protocol, the Codabench submission (fixtures from ``real_testbed``)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from egoforge.data.egocross import clip_rates, load_testbed
from egoforge.data.paths import MediaRoot, UnsafePathError
from egoforge.data.validate import validate_file
from egoforge.eval.egocross_protocol import build_prompt, build_sft_prompt
from egoforge.eval.egocross_run import build_request
from egoforge.eval.egocross_submit import SubmissionError, fill_template, load_template
from egoforge.tools.cli import main as cli

TESTBED = "egocross_testbed_imgs.json"
ANSWERS = "egocross_testbed_answers.json"
TEMPLATE = "submission_template.json"


def _first_frame(real_testbed: Path) -> str:
    return load_testbed(real_testbed / TESTBED)[0]["video_path"][0]


# --- the fixture has the published shape ------------------------------------------------------------------------

def test_fixture_has_the_published_shape(real_testbed):
    items = json.loads((real_testbed / TESTBED).read_text())
    assert all(isinstance(it["id"], int) and "question_id" not in it for it in items)
    assert all(p.startswith("/egocross_testbed/") for it in items for p in it["video_path"])
    assert {(it["dataset"], Path(it["video_path"][0]).suffix) for it in items} >= {
        ("CholecTrack20", ".png"), ("CholecTrack20", ".jpg"), ("EgoSurgery", ".jpg")}
    template = json.loads((real_testbed / TEMPLATE).read_text())
    assert [r["id"] for r in template] == [it["id"] for it in items]
    assert all(isinstance(r["question_id"], str) and r["answer"] == "" for r in template)


# --- paths ---------------------------------------------------------------------------------------------------------

def test_testbed_paths_resolve_under_a_media_dir_that_holds_or_is_the_testbed_folder(real_testbed):
    frame = _first_frame(real_testbed)
    expected = (real_testbed / frame.lstrip("/")).resolve()
    assert MediaRoot(real_testbed, explicit=True).resolve(frame) == expected
    assert MediaRoot(real_testbed / "egocross_testbed", explicit=True).resolve(frame) == expected


@pytest.mark.parametrize("path", [
    "/egocross_testbed/../../etc/passwd",
    "/egocross_testbed/CholecTrack20/../../../etc/passwd",
    "../outside.jpg",
    "/etc/passwd",
])
def test_escapes_are_refused_with_a_media_dir(real_testbed, path):
    with pytest.raises(UnsafePathError):
        MediaRoot(real_testbed, explicit=True).resolve(path)


def test_absolute_dotdot_is_refused_even_without_a_media_dir(real_testbed):
    with pytest.raises(UnsafePathError, match="contains '..'"):
        MediaRoot.for_file(real_testbed / TESTBED).resolve("/egocross_testbed/../etc/passwd")


def test_symlink_out_of_the_testbed_folder_is_refused(real_testbed, tmp_path):
    media = tmp_path / "media"
    (media / "egocross_testbed").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "secret.jpg", media / "egocross_testbed" / "link.jpg")
    with pytest.raises(UnsafePathError, match="escapes"):
        MediaRoot(media, explicit=True).resolve("/egocross_testbed/link.jpg")


def test_without_a_media_dir_absolute_paths_are_used_as_they_are(tmp_path):
    root = MediaRoot.for_file(tmp_path / "t.json")
    assert root.resolve("/egocross_testbed/a/b.jpg") == Path("/egocross_testbed/a/b.jpg")
    assert root.resolve("/tmp/x.jpg") == Path("/tmp/x.jpg")
    assert root.resolve("rel/x.jpg") == (tmp_path / "rel" / "x.jpg").resolve()


def test_validate_real_testbed_with_either_media_dir(real_testbed):
    testbed, answers = real_testbed / TESTBED, real_testbed / ANSWERS
    assert validate_file(testbed, media_dir=real_testbed, answers=answers) == []
    assert validate_file(testbed, media_dir=real_testbed / "egocross_testbed", answers=answers) == []


def test_validate_without_media_dir_says_which_to_pass(real_testbed, capsys):
    issues = validate_file(real_testbed / TESTBED, decode=False)
    n_frames = sum(len(it["video_path"]) for it in load_testbed(real_testbed / TESTBED))
    assert len(issues) == n_frames
    first = issues[0]
    assert (first.row, first.field) == (0, "video_path[0]")
    assert f"--media-dir {real_testbed}" in first.message and "/egocross_testbed/" in first.message
    assert cli(["validate", str(real_testbed / TESTBED), "--quiet", "--no-decode"]) == 1
    assert cli(["validate", str(real_testbed / TESTBED), "--quiet", "--media-dir", str(real_testbed)]) == 0


def test_validate_names_file_row_and_field_for_a_traversal(real_testbed, tmp_path):
    items = json.loads((real_testbed / TESTBED).read_text())
    items[2]["video_path"][1] = "/egocross_testbed/../../etc/passwd"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(items))
    issues = validate_file(bad, media_dir=real_testbed, decode=False)
    assert [(i.file, i.row, i.field) for i in issues] == [(str(bad), 2, "video_path[1]")]
    assert "'..'" in issues[0].message


def test_prepare_mirrors_the_testbed_so_the_cache_is_a_media_dir(real_testbed, tmp_path):
    cache = tmp_path / "cache"
    assert cli(["prepare", str(real_testbed / TESTBED), "--out", str(cache), "--media-dir", str(real_testbed),
                "--max-pixels", "1024", "--quiet"]) == 0
    assert (cache / "egocross_testbed").is_dir()
    assert validate_file(real_testbed / TESTBED, media_dir=cache) == []
    # Without --media-dir the frames are not there: a clear error, not a crash.
    assert cli(["prepare", str(real_testbed / TESTBED), "--out", str(tmp_path / "c2"), "--max-pixels", "1024",
                "--quiet"]) == 2


# --- the official fps rule --------------------------------------------------------------------------------------

def official_rates(dataset: str, frames: list[str], fps: float) -> tuple[float, float]:
    """Oracle written from eval_os_closedset.py: the prompt's rate and the rate the video is fed at."""
    suffix = os.path.splitext(frames[0])[1].lower()
    default = fps if fps > 0 else 0.5
    prompt = 1.0 if dataset == "CholecTrack20" and suffix == ".png" else default
    return prompt, fps


CASES = [(ds, suffix, fps) for ds in ("CholecTrack20", "EgoSurgery", "ENIGMA", "ExtrameSportFPV", "EgoPet")
         for suffix in (".jpg", ".png", ".PNG", ".jpeg") for fps in (0.5, 1.0, 2.0)]


@pytest.mark.parametrize("dataset, suffix, fps", CASES)
def test_official_fps_rule_per_dataset_and_suffix(dataset, suffix, fps):
    frames = [f"/egocross_testbed/{dataset}/x/frame_00000{suffix}", "/egocross_testbed/x/frame_00001.jpg"]
    rates = clip_rates(dataset, frames, fps)
    assert (rates.prompt_fps, rates.video_fps) == official_rates(dataset, frames, fps)


@pytest.mark.parametrize("dataset, suffix, true_rate", [
    ("EgoSurgery", ".jpg", 1.0), ("CholecTrack20", ".png", 1.0), ("CholecTrack20", ".jpg", 0.5),
    ("ENIGMA", ".png", 0.5), ("ExtrameSportFPV", ".jpg", 0.5), ("EgoPet", ".jpg", 0.5)])
def test_true_fps_is_the_per_domain_rate_everywhere(dataset, suffix, true_rate):
    rates = clip_rates(dataset, [f"f{suffix}"], 0.5, true_fps=True)
    assert rates.prompt_fps == rates.video_fps == true_rate


def test_request_prompt_and_video_rate_follow_the_rule(real_testbed):
    media = MediaRoot(real_testbed, explicit=True)
    items = load_testbed(real_testbed / TESTBED)
    surgery = next(it for it in items if it["dataset"] == "EgoSurgery")
    png = next(it for it in items if it["video_path"][0].endswith(".png"))
    official = build_request(surgery, media)
    assert "sampling at 0.5 fps." in official.prompt and official.fps == 0.5
    assert "The original FPS of the video is 25.0." in official.prompt
    deviating = build_request(surgery, media, true_fps=True)
    assert "sampling at 1.0 fps." in deviating.prompt and deviating.fps == 1.0
    official_png = build_request(png, media)
    assert "sampling at 1.0 fps." in official_png.prompt and official_png.fps == 0.5
    assert all(Path(f).is_file() for f in official.frames)


# --- the SFT repository's protocol ------------------------------------------------------------------------------

# The user text of the SFT repository's README inference example (LiYu0524/EgoCross_SFT_qwen3vl4b), verbatim.
SFT_README_QUESTION = """What is the person doing in this video?
A) Cooking food
B) Washing dishes
C) Setting the table
D) Cleaning the counter"""


def test_sft_prompt_matches_the_sft_repository_text():
    options = ["A: Cooking food", "B: Washing dishes", "C: Setting the table", "D: Cleaning the counter"]
    assert build_sft_prompt("What is the person doing in this video?", options) == SFT_README_QUESTION


def test_sft_prompt_matches_the_support_set_user_turn():
    from egoforge.testing.egocross_data import support_set_user_text

    question, options = "How many squares are visible?", ["1", "2", "3", "4"]
    testbed_options = [f"{letter}: {text}" for letter, text in zip("ABCD", options)]
    assert "<image>" * 3 + build_sft_prompt(question, testbed_options) == support_set_user_text(question, options, 3)


def test_sft_prompt_refuses_an_option_it_cannot_split():
    with pytest.raises(ValueError, match="'Cooking food'"):
        build_sft_prompt("Q?", ["Cooking food"])


def test_sft_protocol_request_has_no_fps_or_json(real_testbed):
    item = load_testbed(real_testbed / TESTBED)[0]
    prompt = build_prompt("sft", item, 0.5)
    assert prompt.startswith(item["question_text"] + "\nA) ") and "fps" not in prompt and "JSON" not in prompt


# --- Codabench submission ---------------------------------------------------------------------------------------

def _predictions(real_testbed: Path, letter_of=lambda i: "ABCD"[i % 4]) -> dict[str, dict]:
    items = load_testbed(real_testbed / TESTBED)
    return {str(it["id"]): {"id": it["id"], "dataset": it["dataset"], "prediction": letter_of(i)}
            for i, it in enumerate(items)}


def test_submission_follows_the_template(real_testbed):
    template = load_template(real_testbed / TEMPLATE)
    preds = _predictions(real_testbed)
    preds["3"]["prediction"] = "b"
    preds["4"]["prediction"] = "B: 3"  # the official scorer counts this wrong: never turned into a letter
    preds["5"]["prediction"] = ""
    result = fill_template(list(reversed(template)), preds)
    assert [r["id"] for r in result.rows] == [r["id"] for r in reversed(template)]
    assert all(list(r) == ["id", "question_id", "dataset", "answer"] for r in result.rows)
    by_id = {r["id"]: r for r in result.rows}
    assert by_id[3]["answer"] == "B" and by_id[4]["answer"] == "" and by_id[5]["answer"] == ""
    assert by_id[1]["question_id"] == template[0]["question_id"]
    assert sorted(result.unparsed) == ["4", "5"]


def test_submission_refuses_a_template_of_another_testbed(real_testbed):
    template = load_template(real_testbed / TEMPLATE)
    preds = _predictions(real_testbed)
    with pytest.raises(SubmissionError, match=r"ids the template does not list: 1, 2"):
        fill_template(template[2:], preds)
    shifted = [dict(r, dataset="EgoPet") if r["id"] == 1 else r for r in template]
    with pytest.raises(SubmissionError, match=r"1 \('CholecTrack20' vs 'EgoPet'\)"):
        fill_template(shifted, preds)
    del preds["7"]
    with pytest.raises(SubmissionError, match="1 template ids have no prediction: 7"):
        fill_template(template, preds)
    assert fill_template(template, preds, allow_missing=True).rows[6]["answer"] == ""


def test_template_with_integer_question_id_is_refused(real_testbed, tmp_path):
    template = json.loads((real_testbed / TEMPLATE).read_text())
    template[1]["question_id"] = 2
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps(template))
    with pytest.raises(ValueError, match=r"t.json, row 1, field 'question_id'"):
        load_template(bad)


def test_submit_cli(real_testbed, tmp_path, capsys):
    preds_file = tmp_path / "predictions.jsonl"
    preds_file.write_text("".join(json.dumps(r) + "\n" for r in _predictions(real_testbed).values()))
    out = tmp_path / "submission.json"
    assert cli(["evaluate", "egocross", "submit", "--predictions", str(preds_file), "--template",
                str(real_testbed / TEMPLATE), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    template = json.loads((real_testbed / TEMPLATE).read_text())
    assert [(r["id"], r["question_id"], r["dataset"]) for r in rows] == [
        (r["id"], r["question_id"], r["dataset"]) for r in template]
    assert {r["answer"] for r in rows} == set("ABCD")
    other = tmp_path / "other.json"
    shutil.copy(real_testbed / TEMPLATE, other)
    other.write_text(json.dumps(template[1:]))
    assert cli(["evaluate", "egocross", "submit", "--predictions", str(preds_file), "--template", str(other),
                "--out", str(tmp_path / "s2.json")]) == 2
    assert "ids the template does not list: 1" in capsys.readouterr().err
    assert not (tmp_path / "s2.json").exists()


def test_scorer_submission_does_not_invent_question_id(real_testbed, tmp_path):
    from egoforge.eval.egocross_run import score_and_report

    preds_file = tmp_path / "predictions.jsonl"
    preds_file.write_text("".join(json.dumps(r) + "\n" for r in _predictions(real_testbed).values()))
    score_and_report(real_testbed / TESTBED, real_testbed / ANSWERS, preds_file, tmp_path / "out")
    rows = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert rows[0] == {"id": 1, "dataset": "CholecTrack20", "answer": "A"}
    md = (tmp_path / "out" / "results.md").read_text()
    assert "Protocol of each row" in md and "this run: official CloseQA" in md
    assert "Full SFT 2 ep: published by the EgoCross SFT repository" in md


# --- the suite's task, inspect and evaluate on the published shape ------------------------------------------------

def test_suite_task_reads_the_real_testbed(real_testbed, tmp_path):
    from egoforge.lmms.taskgen import TaskOptions
    from egoforge.lmms.tasks import egocross

    plan = egocross.prepare(real_testbed, tmp_path, TaskOptions())
    docs = [json.loads(line) for line in (tmp_path / "egocross" / "docs.jsonl").read_text().splitlines()]
    assert plan.tasks[0].n_docs == len(docs) == len(load_testbed(real_testbed / TESTBED))
    assert all(Path(f).is_file() and str(real_testbed) in f for d in docs for f in d["frames"])
    assert all(d["question_id"] is None for d in docs)
    surgery = next(d for d in docs if d["dataset"] == "EgoSurgery")
    assert "sampling at 0.5 fps." in egocross.doc_to_text(surgery)
    egocross.prepare(real_testbed, tmp_path / "true", TaskOptions(true_fps=True))
    docs = [json.loads(line) for line in (tmp_path / "true" / "egocross" / "docs.jsonl").read_text().splitlines()]
    surgery = next(d for d in docs if d["dataset"] == "EgoSurgery")
    assert "sampling at 1.0 fps." in egocross.doc_to_text(surgery) and surgery["fps"] == 1.0


def test_suite_task_refuses_a_traversal_naming_row_and_field(real_testbed, tmp_path):
    from egoforge.data.jsonio import DataFormatError
    from egoforge.lmms.taskgen import TaskOptions
    from egoforge.lmms.tasks import egocross

    source = tmp_path / "egocross"
    source.mkdir()
    items = json.loads((real_testbed / TESTBED).read_text())
    items[1]["video_path"][0] = "/egocross_testbed/../../etc/passwd"
    (source / TESTBED).write_text(json.dumps(items))
    shutil.copy(real_testbed / ANSWERS, source / ANSWERS)
    os.symlink(real_testbed / "egocross_testbed", source / "egocross_testbed")
    with pytest.raises(DataFormatError, match=r"row 1, field 'video_path\[0\]'.*'\.\.'"):
        egocross.prepare(source, tmp_path / "work", TaskOptions())


def test_inspect_real_testbed_with_media_dir(real_testbed, tmp_path):
    out = tmp_path / "report"
    assert cli(["inspect", str(real_testbed / TESTBED), "--answers", str(real_testbed / ANSWERS), "--media-dir",
                str(real_testbed), "--out", str(out), "--validate", "--quiet"]) == 0
    samples = _report_samples(out)
    assert [s["issues"] for s in samples] == [[]] * len(samples)
    assert all(f["problem"] is None and f["src"] for s in samples for f in s["frames"])
    bare = tmp_path / "bare"
    assert cli(["inspect", str(real_testbed / TESTBED), "--out", str(bare), "--quiet"]) == 0
    problems = [f["problem"] for s in _report_samples(bare) for f in s["frames"]]
    assert problems and all(f"--media-dir {real_testbed}" in p for p in problems)


def _report_samples(out: Path) -> list[dict]:
    import re

    html = (out / "index.html").read_text(encoding="utf-8")
    data = re.search(r'<script id="egoforge-data" type="application/json" nonce="[^"]+">(.*?)</script>', html, re.S)
    return json.loads(data.group(1))["samples"]


TINY = ["--max-new-tokens", "8", "--max-pixels", "16384", "--batch-size", "4", "--quiet"]


def test_evaluate_real_testbed_then_submit(real_testbed, tiny_qwen3_vl, tmp_path, capsys):
    out = tmp_path / "eval"
    base = ["evaluate", "egocross", "--model", str(tiny_qwen3_vl), "--testbed", str(real_testbed / TESTBED),
            "--answers", str(real_testbed / ANSWERS), "--out", str(out), *TINY, "--limit", "3"]
    assert cli(base) == 2
    assert f"--media-dir {real_testbed}" in capsys.readouterr().err
    assert cli([*base, "--media-dir", str(real_testbed / "egocross_testbed")]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [1, 2, 3]
    assert all(r["question_id"] is None and r["protocol"] == "official" for r in records)
    assert "this run: official CloseQA" in (out / "results.md").read_text()
    # A resumed run under another protocol is refused rather than mixed into the same file.
    assert cli([*base, "--media-dir", str(real_testbed), "--protocol", "sft"]) == 2
    assert "protocol ['official']" in capsys.readouterr().err
    submission = tmp_path / "submission.json"
    args = ["evaluate", "egocross", "submit", "--predictions", str(out / "predictions.jsonl"), "--template",
            str(real_testbed / TEMPLATE), "--out", str(submission)]
    assert cli(args) == 2 and "have no prediction" in capsys.readouterr().err
    assert cli([*args, "--allow-missing"]) == 0
    rows = json.loads(submission.read_text())
    assert len(rows) == len(load_testbed(real_testbed / TESTBED)) and isinstance(rows[0]["question_id"], str)


def test_sft_protocol_feeds_images_with_the_letter_prompt(real_testbed, tiny_qwen3_vl, tmp_path, monkeypatch):
    from egoforge.eval import backends as hf

    seen = []
    original = hf.TransformersBackend.generate

    def spy(self, requests):
        seen.append((self.settings, requests))
        return original(self, requests)

    monkeypatch.setattr(hf.TransformersBackend, "generate", spy)
    out = tmp_path / "sft"
    assert cli(["evaluate", "egocross", "--model", str(tiny_qwen3_vl), "--testbed", str(real_testbed / TESTBED),
                "--media-dir", str(real_testbed), "--out", str(out), "--protocol", "sft", "--limit", "2",
                "--max-pixels", "16384", "--min-pixels", "1024", "--quiet"]) == 0
    settings, requests = seen[0]
    assert (settings.frames_as, settings.max_new_tokens) == ("images", 16)
    item = load_testbed(real_testbed / TESTBED)[0]
    assert requests[0].prompt == build_sft_prompt(item["question_text"], item["options"])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["protocol"] for r in records} == {"sft"}


def test_protocol_and_fps_rule_are_recorded_checked_on_resume_and_reported(real_testbed, tmp_path):
    from egoforge.eval.egocross_run import generate_predictions, score_and_report

    records = list(_predictions(real_testbed).values())
    out = tmp_path / "run"
    out.mkdir()
    (out / "predictions.jsonl").write_text("".join(json.dumps(r | {"protocol": "official"}) + "\n" for r in records))
    with pytest.raises(ValueError, match=r"protocol \['official'\], not 'official \+ true fps'"):
        generate_predictions("no-model-needed", real_testbed / TESTBED, out, media_dir=real_testbed, true_fps=True)
    true_fps = tmp_path / "true.jsonl"
    true_fps.write_text("".join(json.dumps(r | {"protocol": "official", "true_fps": True}) + "\n" for r in records))
    score_and_report(real_testbed / TESTBED, real_testbed / ANSWERS, true_fps, tmp_path / "scored")
    assert "deviation: true per-domain fps" in (tmp_path / "scored" / "results.md").read_text()
    assert json.loads((tmp_path / "scored" / "results.json").read_text())["protocol"] == ["official + true fps"]
    openqa = tmp_path / "open.jsonl"
    openqa.write_text("".join(json.dumps(r | {"protocol": "openqa"}) + "\n" for r in records))
    with pytest.raises(ValueError, match="OpenQA answers"):
        score_and_report(real_testbed / TESTBED, real_testbed / ANSWERS, openqa, tmp_path / "x")
