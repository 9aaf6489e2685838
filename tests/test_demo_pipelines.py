"""``egoforge demo PIPELINE``: every pipeline's one-command offline demo runs end to end and ends with a table and a
picture; the shared runner stops a failed stage with one line naming the stage and its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from egoforge.tools.demo_runner import (
    PICTURE_DPI,
    PICTURE_INCHES,
    Demo,
    StageFailed,
    bar_chart,
    markdown_table,
    png_size,
)

REPO = Path(__file__).resolve().parents[1]
PICTURE = (int(PICTURE_INCHES[0] * PICTURE_DPI), int(PICTURE_INCHES[1] * PICTURE_DPI))


def run_demo(pipeline: str, work: Path) -> tuple[subprocess.CompletedProcess, dict]:
    egoforge = Path(sys.executable).parent / "egoforge"
    result = subprocess.run([str(egoforge), "demo", pipeline, "--workdir", str(work), "--quiet"], cwd=REPO,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    summary = json.loads((work / "summary.json").read_text())
    assert summary["demo"] == pipeline
    assert png_size(work / "summary.png") == PICTURE
    assert (work / "summary.md").read_text().startswith("# ")
    for label, path in summary["paths"].items():
        assert Path(path).exists(), (label, path)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"demo {pipeline} finished in ") and last.endswith(str(work)), last
    # progress: one numbered line per stage, each followed by its elapsed time
    stages = [ln for ln in result.stdout.splitlines() if ln.startswith("[")]
    assert stages and stages[-1].startswith(f"[{len(stages)}/{len(stages)}]"), stages
    assert result.stdout.count("elapsed ") == len(stages)
    return result, summary


# --- the runner: fast -------------------------------------------------------------------------------------------


def test_default_demo_is_egocross():
    from egoforge.tools.cli import build_parser

    args = build_parser().parse_args(["demo"])
    assert args.pipeline == "egocross" and args.workdir is None
    assert build_parser().parse_args(["demo", "lego"]).pipeline == "lego"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "nope"])


def test_failed_stage_is_one_line_naming_stage_and_log(tmp_path, capsys):
    demo = Demo("x", tmp_path / "w", stages=2, quiet=True)
    demo.egoforge("make a tiny model", "make", "tiny-model", "clip", "--help")
    with pytest.raises(StageFailed) as exc:
        demo.egoforge("validate a missing file", "validate", tmp_path / "missing.json")
    message = str(exc.value)
    assert message.startswith("stage 2 'validate a missing file' failed (exit ")
    assert "missing.json" in message and str(tmp_path / "w" / "logs" / "02_validate_a_missing_file.log") in message
    assert "\n" not in message and "Traceback" not in message
    out = capsys.readouterr().out
    assert "[1/2] make a tiny model" in out and "$ egoforge make tiny-model clip --help" in out


def test_stage_that_writes_nothing_is_an_error(tmp_path):
    demo = Demo("x", tmp_path / "w", stages=1, quiet=True)
    with pytest.raises(StageFailed, match="exited 0 but did not write .*nothing.json"):
        demo.egoforge("help only", "make", "--help", expect=(tmp_path / "nothing.json",))


def test_demo_cli_failure_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from egoforge.tools import demo_suite
    from egoforge.tools.cli import main

    def failing(args):
        raise StageFailed("stage 3 'x' failed (exit 2): bad -- full log: L")

    monkeypatch.setattr(demo_suite, "run", failing)
    assert main(["demo", "suite", "--workdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "egoforge demo suite: stage 3 'x' failed (exit 2): bad -- full log: L"


def test_empty_csm_selection_names_the_report(tmp_path):
    from egoforge.tools.demo_ego3s import checked_selection

    csm = tmp_path / "csm"
    csm.mkdir()
    (csm / "csm_report.json").write_text(json.dumps({"summary": {"kept": 0, "samples": 20}, "samples": []}))
    with pytest.raises(StageFailed, match=r"CSM kept 0 of 20 samples: nothing to train on .*csm_report.json"):
        checked_selection(csm)
    (csm / "csm_report.json").write_text(json.dumps({"summary": {"kept": 3, "samples": 20}}))
    with pytest.raises(StageFailed, match="selected.json is missing"):
        checked_selection(csm)
    (csm / "selected.json").write_text("[]")
    (csm / "selected.parquet").write_bytes(b"")
    assert checked_selection(csm)["kept"] == 3


def test_table_and_picture(tmp_path):
    rows = {"model": {"acc (%)": 50.0, "PSNR (dB)": 12.5, "note": "x"}, "chance": {"acc (%)": 25.0}}
    table = markdown_table(rows, ["acc (%)", "PSNR (dB)", "note"])
    assert table.splitlines()[2] == "| model | 50.00 | 12.50 | x |"
    assert table.splitlines()[3] == "| chance | 25.00 |  |  |"
    png = bar_chart(rows, ["acc (%)", "PSNR (dB)", "note"], tmp_path / "p.png", "title", None)
    assert png_size(png) == PICTURE
    with pytest.raises(StageFailed, match="nothing numeric"):
        bar_chart({"a": {"note": "x"}}, ["note"], tmp_path / "q.png", "t", None)
    (tmp_path / "not.png").write_text("hello")
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(tmp_path / "not.png")


# --- the demos: slow ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.demo
def test_suite_demo(tmp_path):
    _, summary = run_demo("suite", tmp_path / "suite")
    rows = summary["rows"]
    assert list(rows) == ["egoschema", "egoplan2", "egothink", "qaego4d", "egotextvqa", "egocross"]
    for name, row in rows.items():
        assert 0 <= row["tiny Qwen3-VL (%)"] <= 100 and row["questions"] > 0, (name, row)
    assert rows["qaego4d"]["chance (%)"] == 25.0 and rows["egothink"]["chance (%)"].startswith("n/a")


@pytest.mark.slow
@pytest.mark.demo
def test_egoagent_demo(tmp_path):
    _, summary = run_demo("egoagent", tmp_path / "egoagent")
    rows = summary["rows"]
    assert len(rows) == 4
    for name in ("kNN top-1 (%)", "retrieval top-1 (%)", "retrieval top-5 (%)"):
        assert 0 <= rows[name]["tiny EgoAgent"] <= 100 and 0 < rows[name]["chance"] <= 100, rows[name]
    # four generated cities: chance is 25%, and stage 1 learns features that beat it
    assert rows["kNN top-1 (%)"]["chance"] == 25.0 and rows["kNN top-1 (%)"]["tiny EgoAgent"] > 25.0
    mpjpe = rows["future-joint MPJPE, steps 1+ (mm; baseline: zero velocity)"]
    assert mpjpe["tiny EgoAgent"] > 0 and mpjpe["chance"] > 0


@pytest.mark.slow
@pytest.mark.demo
def test_egom2p_demo(tmp_path):
    _, summary = run_demo("egom2p", tmp_path / "egom2p")
    rows = summary["rows"]
    assert list(rows) == ["rgb2cam", "rgb2gaze"]
    for task, row in rows.items():
        assert row["clips"] > 0 and len(row) > 1, (task, row)
        assert all(value == value and value >= 0 for value in row.values()), row  # finite, non-negative
    assert png_size(tmp_path / "egom2p" / "generate" / "rgb2cam" / "preview.png")[0] > 0


@pytest.mark.slow
@pytest.mark.demo
def test_lego_demo(tmp_path):
    _, summary = run_demo("lego", tmp_path / "lego")
    row = summary["rows"]["tiny LEGO"]
    assert row["generated frames"] > 0
    assert 0 < row["PSNR (dB)"] < 100
    assert png_size(tmp_path / "lego" / "sample" / "examples.png")[0] > 0


@pytest.mark.slow
@pytest.mark.demo
def test_ego3s_demo(tmp_path):
    result, summary = run_demo("ego3s", tmp_path / "ego3s")
    csm = json.loads((tmp_path / "ego3s" / "data" / "ego3s" / "csm" / "csm_report.json").read_text())["summary"]
    assert 0 < csm["kept"] <= csm["samples"]
    rows = summary["rows"]
    assert list(rows) == [f"GRPO step {i}" for i in range(1, len(rows) + 1)] and len(rows) >= 2
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["format"] <= 1 and row["reward std in group"] >= 0, row
    ecr_log = json.loads((tmp_path / "ego3s" / "saves" / "grpo" / "ecr_log.json").read_text())
    assert ecr_log, "ECR never checked"


def test_failure_reason_is_the_line_that_says_why():
    from egoforge.tools.demo_runner import _reason

    listing = "loading\nerror: a.json, row 1, field 'path': file not found\nerror: a.json, row 2\n... and 6 more\n"
    assert _reason(listing) == "error: a.json, row 1, field 'path': file not found (and 1 more error lines)"
    assert _reason("x\negoforge train: r.yaml: missing `trainer:`\ntail noise\n") == \
        "egoforge train: r.yaml: missing `trainer:`"
    assert _reason("Traceback...\nValueError: boom\n") == "ValueError: boom"
    assert _reason("") == "(no output)"


def test_make_data_ego3s_for_csm(tmp_path, capsys):
    from egoforge.tools.cli import main

    out = tmp_path / "ego3s"
    assert main(["make", "data", "ego3s", "--design", "csm", "--out", str(out)]) == 0
    for name in ("train.json", "val.json"):
        rows = json.loads((out / name).read_text())
        assert rows and all(r["problem_type"] == "multiple choice" for r in rows)
        for row in rows:
            assert row["options"] == ["A. red", "B. green", "C. blue", "D. yellow"]
            letter = row["solution"].removeprefix("<answer>").removesuffix("</answer>")
            colour = row["options"]["ABCD".index(letter)].split(". ")[1]
            assert row["process"] == f"<think>The camera wearer holds a {colour} object.</think>"
            assert not row["path"].startswith("frames/") and (out / row["path"]).is_file()
    assert not (out / "frames").exists() or not any((out / "frames").iterdir())
    assert main(["make", "data", "lego", "--design", "csm", "--out", str(tmp_path / "lego")]) != 0
    assert "--design csm exists for ego3s only" in capsys.readouterr().err
