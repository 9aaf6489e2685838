"""Hostile inputs to ``egoforge evaluate egocross`` (score, run, submit, openqa) and ``evaluate suite``.

Table-driven: each case builds broken copies of a valid testbed / predictions file from egoforge's generators and
expects an exit code and a fragment of the one-line message; the sources keep their bytes and no results are left
behind. Every refusal case here failed before issue 17 part A: the predictions cases exited 0 with a table of
0.00 (missing, empty, unmatched), silently dropped a torn last line, let the last duplicate win or scored a partial
run as if complete; the type cases were "internal error TypeError" (exit 1); the numeric cases were accepted.
(Checked by running this module on the commit before: every test failed.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from egoforge.tools.cli import main


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    from egoforge.testing.egocross_data import make_testbed

    work = tmp_path_factory.mktemp("hostile_egocross")
    testbed, answers = make_testbed(work / "tb", per_domain=1, frames=(2, 2))
    items = json.loads(testbed.read_text())
    return {"work": work, "testbed": testbed, "answers": answers, "items": items,
            "ids": [it["id"] for it in items]}


def _predictions(bench: dict, case: str, tmp_path: Path) -> Path:
    """A predictions.jsonl broken in the way ``case`` names."""
    ids = bench["ids"]
    full = [{"id": i, "prediction": "A"} for i in ids]
    path = tmp_path / "predictions.jsonl"
    if case == "missing":
        return tmp_path / "TYPO.jsonl"
    text = {
        "empty": "",
        "blank_lines": "\n\n",
        "unmatched": _lines([{"id": f"other_{i}", "prediction": "A"} for i in range(len(ids))]),
        "torn_last_line": _lines(full[:-1]) + '{"id": "' + str(ids[-1]) + '", "predic',
        "duplicate_id": _lines(full + [{"id": ids[0], "prediction": "B"}]),
        "extra_id": _lines(full + [{"id": "not_in_this_testbed", "prediction": "A"}]),
        "partial": _lines(full[:-1]),
    }[case]
    path.write_text(text)
    return path


# (case, expected exit code, fragments of stderr)
PREDICTION_CASES = [
    ("missing", 2, ["TYPO.jsonl", "predictions file not found"]),
    ("empty", 2, ["holds no predictions"]),
    ("blank_lines", 2, ["holds no predictions"]),
    ("unmatched", 2, ["no prediction matches a testbed id", "0 of the testbed's 4 ids have a prediction"]),
    ("torn_last_line", 2, ["predictions.jsonl, line 4", "not valid JSON (a torn last line"]),
    ("duplicate_id", 2, ["is given twice, on lines 1 and 5"]),
    ("extra_id", 2, ["1 predictions have ids the testbed lacks: not_in_this_testbed"]),
    ("partial", 2, ["partial run: 3 of the testbed's 4 ids have a prediction", "--allow-partial"]),
]


def _run(argv: list, capsys) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refusals
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _score_argv(bench: dict, predictions: Path, out: Path, *extra) -> list:
    return ["evaluate", "egocross", "score", "--testbed", bench["testbed"], "--answers", bench["answers"],
            "--predictions", predictions, "--out", out, "--no-published", *extra]


@pytest.mark.parametrize("case, code, fragments", PREDICTION_CASES, ids=[c[0] for c in PREDICTION_CASES])
def test_score_refuses_incomplete_predictions(case, code, fragments, bench, tmp_path, capsys):
    predictions = _predictions(bench, case, tmp_path)
    sources = [bench["testbed"], bench["answers"]] + ([predictions] if predictions.exists() else [])
    before = {p: _digest(p) for p in sources}
    out = tmp_path / "out"
    exit_code, _, err = _run(_score_argv(bench, predictions, out), capsys)
    assert exit_code == code, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert {p: _digest(p) for p in sources} == before
    assert not out.exists(), "no partial results may be left"


def test_allow_partial_scores_with_coverage_in_every_table(bench, tmp_path, capsys):
    """The denominator stays every question (the missing one counts wrong) and every table says "3 of 4"."""
    predictions = _predictions(bench, "partial", tmp_path)
    out = tmp_path / "out"
    exit_code, stdout, err = _run(_score_argv(bench, predictions, out, "--allow-partial"), capsys)
    assert exit_code == 0, err
    assert "3 of 4" in stdout and "partial run" in err
    results = json.loads((out / "results.json").read_text())
    assert results["coverage"] == {"predicted": 3, "questions": 4, "missing_counted_wrong": 1}
    assert results["n_questions"] == 4 and results["missing_predictions"] == [str(bench["ids"][-1])]
    assert "3 of 4" in (out / "results.md").read_text()
    assert (out / "results.csv").read_text().splitlines()[-1].endswith(",3 of 4")
    # the submission keeps every testbed question; the unanswered one is ""
    rows = json.loads((out / "submission.json").read_text())
    assert len(rows) == 4 and rows[-1]["answer"] == ""


def test_complete_predictions_still_score_with_full_coverage(bench, tmp_path, capsys):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(_lines([{"id": i, "prediction": "A"} for i in bench["ids"]]))
    exit_code, stdout, err = _run(_score_argv(bench, predictions, tmp_path / "out"), capsys)
    assert exit_code == 0, err
    assert "4 of 4" in stdout and "partial" not in err


def _broken_testbed(bench: dict, tmp_path: Path, field: str, value) -> Path:
    items = json.loads(json.dumps(bench["items"]))
    items[1][field] = value
    path = tmp_path / "tb" / "egocross_testbed_imgs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items))
    return path


TESTBED_CASES = [
    ("dataset_list", "dataset", ["EgoPet"], "row 1, field 'dataset': must be a string"),
    ("dataset_number", "dataset", 3, "row 1, field 'dataset': must be a string"),
    ("options_integers", "options", [1, 2, 3, 4], "row 1, field 'options[0]': must be a string"),
    ("video_path_numbers", "video_path", [1, 2], "row 1, field 'video_path[0]': must be a path string"),
]


@pytest.mark.parametrize("case, field, value, fragment", TESTBED_CASES, ids=[c[0] for c in TESTBED_CASES])
def test_score_type_checks_the_testbed(case, field, value, fragment, bench, tmp_path, capsys):
    testbed = _broken_testbed(bench, tmp_path, field, value)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(_lines([{"id": i, "prediction": "A"} for i in bench["ids"]]))
    before = _digest(testbed)
    argv = _score_argv(bench, predictions, tmp_path / "out")
    argv[argv.index(bench["testbed"])] = testbed
    exit_code, _, err = _run(argv, capsys)
    assert exit_code == 2, err
    assert fragment in err and str(testbed) in err and "internal error" not in err, err
    assert _digest(testbed) == before and not (tmp_path / "out").exists()


def test_score_out_is_a_file_exits_2(bench, tmp_path, capsys):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(_lines([{"id": i, "prediction": "A"} for i in bench["ids"]]))
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    exit_code, _, err = _run(_score_argv(bench, predictions, a_file), capsys)
    assert exit_code == 2 and "is a file" in err, err
    assert a_file.read_text() == "mine\n"


def test_submit_refuses_a_torn_predictions_file(bench, tmp_path, capsys):
    from egoforge.testing.egocross_data import make_testbed

    _, _ = make_testbed(tmp_path / "real", per_domain=1, frames=(2, 2), real_shape=True)
    template = tmp_path / "real" / "submission_template.json"
    ids = [row["id"] for row in json.loads(template.read_text())]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(_lines([{"id": i, "prediction": "A"} for i in ids[:-1]]) + '{"id": 9')
    out = tmp_path / "submission.json"
    exit_code, _, err = _run(["evaluate", "egocross", "submit", "--predictions", predictions, "--template",
                              template, "--out", out], capsys)
    assert exit_code == 2 and "not valid JSON (a torn last line" in err, err
    assert not out.exists()


def test_submit_prints_coverage(tmp_path, capsys):
    from egoforge.testing.egocross_data import make_testbed

    make_testbed(tmp_path / "real", per_domain=1, frames=(2, 2), real_shape=True)
    template = tmp_path / "real" / "submission_template.json"
    ids = [row["id"] for row in json.loads(template.read_text())]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(_lines([{"id": i, "prediction": "A"} for i in ids[:-1]]))
    exit_code, stdout, err = _run(["evaluate", "egocross", "submit", "--predictions", predictions, "--template",
                                   template, "--out", tmp_path / "s.json", "--allow-missing"], capsys)
    assert exit_code == 0, err
    assert f"predictions for {len(ids) - 1} of {len(ids)} template questions" in stdout


# out-of-range numbers: refused by the parser before anything runs (exit 2)
NUMBER_CASES = [
    ("run", ["--batch-size", "0"], "--batch-size: must be an integer >= 1"),
    ("run", ["--max-new-tokens", "0"], "--max-new-tokens: must be an integer >= 1"),
    ("run", ["--fps", "0"], "--fps: must be a number in (0, inf)"),
    ("run", ["--limit", "-3"], "--limit: must be an integer >= 1"),
    ("run", ["--max-pixels", "0"], "--max-pixels: must be an integer >= 1"),
    ("run", ["--min-pixels", "-1"], "--min-pixels: must be an integer >= 0"),
    ("run", ["--min-pixels", "5000", "--max-pixels", "100"], "--min-pixels 5000 is larger than --max-pixels 100"),
    ("openqa", ["--judge-timeout", "0"], "--judge-timeout: must be a number in (0, inf)"),
    ("openqa", ["--judge-retries", "-1"], "--judge-retries: must be an integer >= 0"),
    ("suite", ["--max-frames", "0"], "--max-frames: must be an integer >= 1"),
    ("suite", ["--video-fps", "nan"], "--video-fps: expected a finite number"),
    ("suite", ["--batch-size", "-1"], "--batch-size: must be an integer >= 1"),
]


@pytest.mark.parametrize("action, extra, fragment", NUMBER_CASES, ids=[" ".join(c[1]) for c in NUMBER_CASES])
def test_numbers_are_range_checked(action, extra, fragment, bench, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    out = tmp_path / "out"
    if action == "suite":
        argv = ["evaluate", "suite", "--model", model, "--out", out, *extra]
    elif action == "openqa":
        argv = ["evaluate", "egocross", "openqa", "--testbed", bench["testbed"], "--answers", bench["answers"],
                "--out", out, "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "j", "--predictions",
                tmp_path / "p.jsonl", *extra]
    else:
        argv = ["evaluate", "egocross", "run", "--model", model, "--testbed", bench["testbed"], "--out", out,
                "--quiet", *extra]
    exit_code, _, err = _run(argv, capsys)
    assert exit_code == 2, err
    assert fragment in err, err
    assert not out.exists()


def test_resuming_generation_still_tolerates_a_torn_last_line(tmp_path):
    """The strict reader is for scoring; a resumed run redoes the question whose line was torn."""
    from egoforge.data.predictions import PredictionWriter, read_predictions

    path = tmp_path / "predictions.jsonl"
    path.write_text(_lines([{"id": "a", "prediction": "A"}]) + '{"id": "b", "pre')
    assert list(read_predictions(path)) == ["a"]
    with PredictionWriter(path) as writer:
        assert writer.done == {"a"}
        writer.write([{"id": "b", "prediction": "B"}])
    assert list(read_predictions(path, strict=True)) == ["a", "b"]
