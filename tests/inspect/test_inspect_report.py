"""`egoforge inspect` end to end without a browser: the report folder, its summary against the EgoCross scorer,
thumbnails, issues, escaping of hostile text, offline self-containment, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from inspect_hostile import HOSTILE, HOSTILE_OPTION, HOSTILE_RESPONSE

from egoforge.tools.cli import main as cli

_DATA = re.compile(r'<script id="egoforge-data" type="application/json" nonce="[^"]+">(.*?)</script>', re.S)


def payload(report: Path) -> dict:
    return json.loads(_DATA.search(report.read_text(encoding="utf-8")).group(1))


def _inspect(data, out, *extra) -> int:
    return cli(["inspect", str(data), "--out", str(out), "--quiet", *map(str, extra)])


@pytest.fixture(scope="module")
def testbed_report(inspect_testbed, snapshot, tmp_path_factory) -> dict:
    before = snapshot(inspect_testbed["root"])
    out = tmp_path_factory.mktemp("testbed_report") / "report"
    assert _inspect(inspect_testbed["testbed"], out, "--answers", inspect_testbed["answers"], "--predictions",
                    inspect_testbed["predictions"], "--validate") == 0
    return {"out": out, "before": before, "payload": payload(out / "index.html")}


def test_testbed_report_matches_the_scorer(testbed_report, inspect_testbed, tmp_path):
    from egoforge.eval.egocross_run import score_and_report

    # the fixture's run lacks two predictions: the scorer refuses it unless told to score a partial run
    scored = score_and_report(inspect_testbed["testbed"], inspect_testbed["answers"], inspect_testbed["predictions"],
                              tmp_path, allow_partial=True)
    summary = json.loads((testbed_report["out"] / "summary.json").read_text())
    official = json.loads((tmp_path / "results.json").read_text())
    for key in ("micro", "macro", "per_domain", "per_category", "parse_status", "missing_predictions"):
        assert summary[key] == official[key], key
    assert summary["scorer"] == "EgoCross CloseQA scorer" and round(scored.micro, 2) == summary["micro"]
    assert (testbed_report["out"] / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (testbed_report["out"] / "index.html").read_text()
    assert f"{official['micro']:.2f}" in html and "Full SFT 2 ep" in html  # the table beside published rows


def test_every_sample_with_frames_timestamps_and_verdicts(testbed_report, inspect_testbed):
    data = testbed_report["payload"]
    samples, items = data["samples"], inspect_testbed["items"]
    assert data["hasPredictions"] and data["pageSize"] == 50
    assert [s["id"] for s in samples] == [it["id"] for it in items]
    for sample, item in zip(samples, items):
        assert sample["verdict"] == inspect_testbed["verdicts"][item["id"]]
        assert sample["answer"] == inspect_testbed["answer_map"][item["id"]]
        assert sample["domain"] and sample["category"] == item["primary_category"]
        fps = 1.0 if item["dataset"] == "EgoSurgery" or item["video_path"][0].endswith(".png") else 0.5
        assert [f["t"] for f in sample["frames"]] == [j / fps for j in range(len(item["video_path"]))]
        for frame in sample["frames"]:
            if frame["src"]:
                thumb = testbed_report["out"] / frame["src"]
                assert thumb.read_bytes()[:2] == b"\xff\xd8" and frame["w"] <= 192 and frame["h"] <= 144
                assert (testbed_report["out"] / frame["href"]).resolve().is_file()  # link to the original
    wrong = next(s for s in samples if s["verdict"] == "wrong" and s["pred"]["prediction"])
    assert wrong["why"].startswith(f"predicted {wrong['pred']['prediction']}") and "but the answer is" in wrong["why"]
    unparsed = next(s for s in samples if s["pred"] and s["pred"]["status"] == "unparsed")
    assert unparsed["pred"]["raw"] == HOSTILE_RESPONSE and "could not be parsed" in unparsed["why"]
    missing = [s for s in samples if s["verdict"] == "none"]
    assert missing and all(s["pred"] is None for s in missing)


def test_bad_frames_are_highlighted_and_sources_untouched(testbed_report, inspect_testbed, snapshot):
    samples = testbed_report["payload"]["samples"]
    escaped = samples[1]
    assert escaped["frames"][0]["src"] is None and "escapes the data root" in escaped["frames"][0]["problem"]
    assert any(i["field"] == "video_path[0]" and "escapes" in i["message"] for i in escaped["issues"])
    broken = samples[2]
    last = f"video_path[{len(inspect_testbed['items'][2]['video_path']) - 1}]"
    assert broken["frames"][-1]["src"] is None and "does not decode" in broken["frames"][-1]["problem"]
    assert [i["field"] for i in broken["issues"]].count(last) == 1  # validator and thumbnailer agree: once
    assert not samples[3]["issues"]
    html = (testbed_report["out"] / "index.html").read_text()
    assert "2 rows" in html and 'id="show-issues"' in html
    assert snapshot(inspect_testbed["root"]) == testbed_report["before"]


def test_hostile_text_is_inert(testbed_report, inspect_testbed, tmp_path):
    html = (testbed_report["out"] / "index.html").read_text()
    # Only the report's own two script elements; no data text became markup anywhere.
    assert html.count("<script") == 2 and html.count("</script>") == 2
    for needle in ("<script>window", "<img src=x", "<b onmouseover", "<!-- &"):
        assert needle not in html
    sample = testbed_report["payload"]["samples"][0]
    assert sample["question"] == HOSTILE and sample["options"][0] == ["A", HOSTILE_OPTION]  # shown verbatim
    # Header text (title, issue messages) is HTML-escaped.
    issues = tmp_path / "issues.json"
    issues.write_text(json.dumps([{"file": "elsewhere.json", "row": None, "field": None, "message": HOSTILE}]))
    out = tmp_path / "report"
    assert _inspect(inspect_testbed["testbed"], out, "--title", "<script>alert(1)</script>", "--issues", issues) == 0
    html = (out / "index.html").read_text()
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    assert "What is &lt;script&gt;window.__egoforge_pwned = 1&lt;/script&gt;" in html
    assert html.count("<script") == 2


def test_report_is_self_contained_and_offline(testbed_report):
    html = (testbed_report["out"] / "index.html").read_text()
    assert not re.search(r"https?://|//cdn|<link\b|@import|url\(", html)
    assert re.search(r"Content-Security-Policy\" content=\"default-src 'none'", html)
    for src in re.findall(r'\ssrc="([^"]+)"', html):
        assert not src.startswith(("/", "http")) and (testbed_report["out"] / src).is_file()


def test_validate_json_issues_render_on_their_rows(inspect_sharegpt, tmp_path):
    issues = tmp_path / "issues.json"
    assert cli(["validate", str(inspect_sharegpt["images"]), "--json", str(issues), "--quiet"]) == 1
    saved = json.loads(issues.read_text())
    out = tmp_path / "report"
    assert _inspect(inspect_sharegpt["images"], out, "--issues", issues) == 0
    samples = payload(out / "index.html")["samples"]
    for issue in saved:
        shown = samples[issue["row"]]["issues"]
        assert {"field": issue["field"] or "", "message": issue["message"], "severity": issue["severity"]} in shown
    assert samples[8]["raw"] == '"not a sample"'
    roles = [i for i in samples[9]["issues"] if "roles must alternate" in i["message"]]
    assert roles and samples[9]["frames"][0]["problem"].startswith("file not found")
    assert not samples[1]["issues"] and samples[0]["question"].startswith(HOSTILE.strip())


def test_frame_list_videos_and_mp4(inspect_sharegpt, tmp_path):
    out = tmp_path / "report"
    assert _inspect(inspect_sharegpt["videos"], out, "--max-frames", "4", "--fps", "0.5") == 0
    samples = payload(out / "index.html")["samples"]
    first = samples[0]
    assert [f["field"] for f in first["frames"]][0] == "videos[0][0]" and first["frames"][1]["t"] == 2.0
    clip = samples[-1]
    times = [f["t"] for f in clip["frames"]]
    assert len(times) == 4 and times == sorted(times) and times[0] == 0.0 and times[-1] == pytest.approx(2.25)
    thumbs = [(out / f["src"]).read_bytes() for f in clip["frames"]]
    assert len(set(thumbs)) == 4  # four different moments of the clip, not one frame four times
    assert _inspect(inspect_sharegpt["videos"], out, "--max-frames", "4", "--fps", "0.5") == 0  # from the cache
    assert payload(out / "index.html")["samples"][-1]["frames"] == clip["frames"]


def test_verl_parquet_report_with_predictions(inspect_parquet, inspect_testbed, tmp_path):
    out = tmp_path / "report"
    assert _inspect(inspect_parquet["path"], out, "--media-dir", inspect_parquet["root"], "--predictions",
                    inspect_testbed["predictions"], "--validate") == 0
    data = payload(out / "index.html")
    samples = data["samples"]
    assert len(samples) == 6 and samples[0]["question"] == HOSTILE.strip()
    assert samples[2]["frames"][0]["label"] == "bytes" and (out / samples[2]["frames"][0]["src"]).is_file()
    assert samples[3]["frames"][1]["t"] == 1.0  # sample_fps of the frame-list video
    expected = {it["id"]: inspect_testbed["verdicts"][it["id"]] for it in inspect_testbed["items"][:6]}
    assert {s["id"]: s["verdict"] for s in samples} == expected
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_questions"] == 6 and set(summary["per_domain"]) <= {"Surgery", "Industry"}
    correct = sum(v == "correct" for v in expected.values())
    assert summary["micro"] == round(100 * correct / 6, 2)
    assert summary["unmatched_predictions"] == len(inspect_testbed["items"]) - 6 - sum(
        1 for it in inspect_testbed["items"][6:] if inspect_testbed["verdicts"][it["id"]] == "none")
    html = (out / "index.html").read_text()
    assert "egoforge validate reads ShareGPT" in html  # parquet: told plainly what was not validated


def test_rebuild_reuses_thumbnails_and_frame_cap(inspect_testbed, tmp_path):
    out = tmp_path / "report"
    assert _inspect(inspect_testbed["testbed"], out, "--max-frames", "2", "--page-size", "5") == 0
    thumbs = {p: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    data = payload(out / "index.html")
    assert data["pageSize"] == 5 and not data["hasPredictions"]
    for sample, item in zip(data["samples"], inspect_testbed["items"]):
        assert len(sample["frames"]) == min(2, len(item["video_path"]))
        assert sample["framesTotal"] == len(item["video_path"])
    assert _inspect(inspect_testbed["testbed"], out, "--max-frames", "2") == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()} == thumbs


def test_refuses_to_overwrite_what_it_did_not_write(inspect_testbed, tmp_path, capsys):
    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("my page")
    assert _inspect(inspect_testbed["testbed"], foreign) == 2
    assert "not written by egoforge inspect" in capsys.readouterr().err
    assert (foreign / "index.html").read_text() == "my page"
    # An input that sits where the report writes is refused even in a report folder.
    out = tmp_path / "report"
    assert _inspect(inspect_testbed["testbed"], out) == 0
    preds = out / "summary.json"
    preds.write_text(inspect_testbed["predictions"].read_text())
    assert _inspect(inspect_testbed["testbed"], out, "--predictions", preds) == 2
    assert "would overwrite the input" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("missing_data", "nope.json: file not found"),
    ("bad_predictions", "predictions.jsonl, line 1: not valid JSON"),
    ("bad_answers", "answers.json, row 0, field 'correct_option_letter'"),
    ("bad_issues", "issues.json, row 0, field 'message'"),
    ("bad_media_dir", "not a folder"),
])
def test_bad_input_names_file_row_field(case, message, inspect_testbed, tmp_path, capsys):
    args = [inspect_testbed["testbed"]]
    if case == "missing_data":
        args = [tmp_path / "nope.json"]
    elif case == "bad_predictions":
        (tmp_path / "predictions.jsonl").write_text("{oops\n{\"id\": 1}\n")
        args += ["--predictions", tmp_path / "predictions.jsonl"]
    elif case == "bad_answers":
        (tmp_path / "answers.json").write_text(json.dumps([{"id": "x"}]))
        args += ["--answers", tmp_path / "answers.json"]
    elif case == "bad_issues":
        (tmp_path / "issues.json").write_text(json.dumps([{"row": 1}]))
        args += ["--issues", tmp_path / "issues.json"]
    else:
        args += ["--media-dir", tmp_path / "absent"]
    assert _inspect(args[0], tmp_path / "out", *args[1:]) == 2
    assert message in capsys.readouterr().err
