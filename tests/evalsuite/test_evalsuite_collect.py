"""The results collector, the tables with the papers' rows and the lmms-eval failure checks, against hand-computed
values and canned lmms-eval outputs."""

from __future__ import annotations

import json
import math

import pytest

from egoforge.eval.published import EGO3S_ROWS, EGO3S_SUITE_ROWS, EGOCROSS_ROWS
from egoforge.lmms.lmms_runner import LmmsEvalError, LmmsRun, check_run
from egoforge.lmms.suite_report import write_report
from egoforge.lmms.suite_results import collect, combine, published_rows, row_label, suite_columns, suite_table_rows

# lmms-eval's results for one run, as its *_results.json holds them (fractions; "<metric>,<filter>" keys).
LMMS_RESULTS = {
    "results": {
        "qaego4d": {"alias": "qaego4d", "accuracy,none": 0.5, "accuracy_stderr,none": 0.2},
        "egotextvqa_outdoor": {"local_answer_match,none": 0.25, "token_f1,none": 0.5},
        "egotextvqa_indoor": {"local_answer_match,none": 1.0, "token_f1,none": 1.0},
        "egothink_activity_local": {"local_answer_match,none": 0.2, "token_f1,none": 0.4},
        "egothink_existence_local": {"local_answer_match,none": 0.6, "token_f1,none": 0.8},
        "egocross_closeqa": {"accuracy,none": 0.75, "macro,none": 0.625, "accuracy_stderr,none": "N/A"},
    },
    "n-samples": {"qaego4d": {"original": 10, "effective": 10},
                  "egotextvqa_outdoor": {"original": 4, "effective": 4},
                  "egotextvqa_indoor": {"original": 2, "effective": 2},
                  "egothink_activity_local": {"original": 100, "effective": 100},
                  "egothink_existence_local": {"original": 50, "effective": 50},
                  "egocross_closeqa": {"original": 8, "effective": 8}},
}
PLANS = [
    {"benchmark": "qaego4d", "tasks": {"qaego4d": 10}, "metric": "accuracy", "combine": "single"},
    {"benchmark": "egotextvqa", "tasks": {"egotextvqa_outdoor": 4, "egotextvqa_indoor": 2},
     "metric": "local_answer_match", "combine": "micro", "extra_metrics": ["token_f1"], "notes": ["local"]},
    {"benchmark": "egothink", "tasks": {"egothink_activity_local": 100, "egothink_existence_local": 50},
     "metric": "local_answer_match", "combine": "mean", "extra_metrics": ["token_f1"]},
    {"benchmark": "egocross", "tasks": {"egocross_closeqa": 8}, "metric": "accuracy", "combine": "single",
     "extra_metrics": ["macro"]},
]


def test_collect_against_hand_computed_values():
    got = collect(LMMS_RESULTS, PLANS)
    assert got["qaego4d"]["score"] == pytest.approx(50.0) and got["qaego4d"]["n"] == 10
    # micro over the two splits: (0.25 * 4 + 1.0 * 2) / 6 = 0.5
    assert got["egotextvqa"]["score"] == pytest.approx(50.0)
    assert got["egotextvqa"]["extra"]["token_f1"] == pytest.approx(100 * (0.5 * 4 + 1.0 * 2) / 6)
    assert got["egotextvqa"]["tasks"]["egotextvqa_indoor"] == {"n": 2, "local_answer_match": 100.0,
                                                              "token_f1": 100.0}
    assert got["egotextvqa"]["metric_kind"] == "local substitute" and got["qaego4d"]["metric_kind"] == "exact"
    # EgoThink: unweighted mean over capabilities, (0.2 + 0.6) / 2, not the size-weighted 0.333
    assert got["egothink"]["score"] == pytest.approx(40.0) and got["egothink"]["n"] == 150
    assert got["egocross"]["score"] == pytest.approx(75.0)
    assert got["egocross"]["extra"]["macro"] == pytest.approx(62.5)
    assert got["egotextvqa"]["notes"] == ["local"]


def test_collect_names_a_missing_metric():
    plans = [{"benchmark": "qaego4d", "tasks": {"qaego4d": 10}, "metric": "f1", "combine": "single"}]
    with pytest.raises(KeyError, match="'qaego4d' has no numeric metric 'f1'"):
        collect(LMMS_RESULTS, plans)


def test_combine_rules():
    assert combine([10.0, 40.0], [1, 3], "micro") == pytest.approx(32.5)
    assert combine([10.0, 40.0], [1, 3], "mean") == pytest.approx(25.0)
    assert math.isnan(combine([], [], "mean"))
    with pytest.raises(ValueError):
        combine([1.0], [1], "median")


def test_suite_table_has_the_papers_rows():
    rows = suite_table_rows("mine", collect(LMMS_RESULTS, PLANS))
    # Local stand-ins for judged metrics get their own columns; the published EgoTextVQA/EgoThink stay judged-only.
    assert rows["mine"] == {"QAEgo4D": pytest.approx(50.0), "EgoTextVQA (local answer match)": pytest.approx(50.0),
                            "EgoThink (local answer match)": pytest.approx(40.0),
                            "EgoCross micro": pytest.approx(75.0), "EgoCross macro": pytest.approx(62.5)}
    ego3s = rows["Ego3S: Ego3S (CSM+IRL+ECR) (Qwen2.5-VL-7B)"]
    assert ego3s == {"EgoPlan2": 36.83, "QAEgo4D": 66.80, "EgoTextVQA": 22.40, "EgoSchema": 49.20, "EgoThink": 58.71}
    assert rows["Ego3S: Full (12k, GRPO) (Qwen2.5-VL-7B)"]["EgoPlan2"] == 30.43
    assert rows["EgoCross: Full SFT 2 ep (Qwen3-VL-4B)"] == {"EgoCross micro": 46.08, "EgoCross macro": 46.59}
    assert len(published_rows()) == len(EGO3S_SUITE_ROWS) + len(EGOCROSS_ROWS)
    assert suite_columns(["qaego4d", "egocross"], with_published=False) == ["QAEgo4D", "EgoCross micro",
                                                                            "EgoCross macro"]
    assert len(suite_columns(["qaego4d"])) == 7


def test_published_ego3s_rows_match_the_papers_figure():
    # Ego3S's results figure: ten rows; CSM only and IRL only each beat the GRPO baseline on every benchmark.
    assert len(EGO3S_ROWS) == 10 and EGO3S_ROWS["IRL only"]["Time(h)"] == 62.1
    base = EGO3S_ROWS["Full (12k, GRPO)"]
    for name in ("CSM only", "IRL only", "Ego3S (CSM+IRL+ECR)"):
        assert all(EGO3S_ROWS[name][b] > base[b] for b in ("EgoPlan2", "QAEgo4D", "EgoTextVQA", "EgoSchema",
                                                            "EgoThink"))
    assert EGO3S_ROWS["GRPO"] == base


METRICS = {p["benchmark"]: p["metric"] for p in PLANS}


def test_local_substitutes_never_share_a_published_column():
    columns = suite_columns(["qaego4d", "egotextvqa", "egothink", "egocross"], metrics=METRICS)
    assert columns == ["EgoPlan2", "QAEgo4D", "EgoTextVQA", "EgoTextVQA (local answer match)", "EgoSchema",
                       "EgoThink", "EgoThink (local answer match)", "EgoCross micro", "EgoCross macro"]
    rows = suite_table_rows("mine", collect(LMMS_RESULTS, PLANS))
    for name, row in rows.items():
        published = name.startswith("Ego3S:")
        assert ("EgoTextVQA" in row) == published and ("EgoThink" in row) == published
        local = ("EgoTextVQA (local answer match)" in row, "EgoThink (local answer match)" in row)
        assert local == ((True, True) if name == "mine" else (False, False))
    assert suite_columns(["egotextvqa"], with_published=False, metrics=METRICS) == ["EgoTextVQA (local answer match)"]


def test_judged_rows_name_the_judge_model():
    judged_plans = [dict(p, metric={"egotextvqa": "judge_accuracy", "egothink": "judge_rating"}.get(p["benchmark"],
                                                                                                    p["metric"]))
                    for p in PLANS]
    results = json.loads(json.dumps(LMMS_RESULTS))
    for task in ("egotextvqa_outdoor", "egotextvqa_indoor", "egothink_activity_local", "egothink_existence_local"):
        results["results"][task]["judge_accuracy,none"] = results["results"][task]["judge_rating,none"] = 0.5
    collected = collect(results, judged_plans)
    assert collected["egothink"]["metric_kind"] == "LLM judge"
    rows = suite_table_rows("mine", collected, judge_model="Qwen2.5-72B")
    label = "mine (EgoTextVQA, EgoThink judged by Qwen2.5-72B)"
    assert rows[label]["EgoTextVQA"] == pytest.approx(50.0) and rows[label]["EgoThink"] == pytest.approx(50.0)
    assert row_label("mine", collect(LMMS_RESULTS, PLANS)) == "mine"  # nothing judged: plain label
    with pytest.raises(ValueError, match="judge model must be named"):
        suite_table_rows("mine", collected)


def test_report_files(tmp_path):
    collected = collect(LMMS_RESULTS, PLANS)
    rows = suite_table_rows("mine", collected)
    columns = suite_columns(["qaego4d", "egotextvqa", "egothink", "egocross"], metrics=METRICS)
    paths = write_report(rows, columns, collected, "mine", tmp_path)
    md = paths["markdown"].read_text()
    assert ("| Method | EgoPlan2 | QAEgo4D | EgoTextVQA | EgoTextVQA (local answer match) | EgoSchema | EgoThink | "
            "EgoThink (local answer match) | EgoCross micro | EgoCross macro |") in md
    assert "| mine | – | 50.00 | – | 50.00 | – | – | 40.00 | 75.00 | 62.50 |" in md
    assert "| Ego3S: CSM only (Qwen2.5-VL-7B) | 33.76 | 65.80 | 21.40 | – | 48.60 | 57.23 | – | – | – |" in md
    assert "**egothink**: local_answer_match (mean; local substitute)" in md
    csv_lines = paths["csv"].read_text().splitlines()
    assert "EgoThink (local answer match)" in csv_lines[0]
    assert csv_lines[1].startswith("mine,,50.00,,50.00,,,40.00,75.00,62.50")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- lmms-eval exits 0 when an evaluation fails: egoforge must not -------------------------------------------------

def _results_file(tmp_path, tasks):
    path = tmp_path / "m" / "20261122_results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": {t: {"accuracy,none": 0.0} for t in tasks}}))
    return path


def test_check_run_accepts_a_complete_run(tmp_path):
    results = check_run(0, "all good", [_results_file(tmp_path, ["a", "b"])], ["a", "b"], "log")
    assert set(results["results"]) == {"a", "b"}


@pytest.mark.parametrize("returncode, log, files, reason", [
    (1, "boom", ["a"], "exit status 1"),
    (0, "Error during evaluation: CUDA out of memory. Please set `--verbosity=DEBUG`", ["a"],
     "'Error during evaluation'"),
    (0, "done", None, "no \\*_results.json"),
    (0, "done", ["a"], "no results for task\\(s\\) b"),
])
def test_check_run_fails_loudly(tmp_path, returncode, log, files, reason):
    paths = [] if files is None else [_results_file(tmp_path, files)]
    with pytest.raises(LmmsEvalError, match=reason) as info:
        check_run(returncode, log, paths, ["a", "b"], "/runs/x/lmms_eval.log")
    assert "/runs/x/lmms_eval.log" in str(info.value) and "last lines" in str(info.value)


def test_lmms_command(tmp_path):
    run = LmmsRun(model="egoforge_vl", model_args={"pretrained": "/m", "backend": "transformers", "device": None},
                  tasks=["qaego4d", "egocross_closeqa"], include_path=tmp_path / "tasks", output_path=tmp_path / "o",
                  limit=2)
    cmd = run.command()
    assert cmd[1:3] == ["-m", "lmms_eval"]
    assert cmd[cmd.index("--model_args") + 1] == "pretrained=/m,backend=transformers"
    assert cmd[cmd.index("--tasks") + 1] == "qaego4d,egocross_closeqa"
    assert cmd[cmd.index("--limit") + 1] == "2" and "--log_samples" in cmd
    run.model_args["pretrained"] = "/models/a,b"
    with pytest.raises(ValueError, match="splits model_args"):
        run.command()
