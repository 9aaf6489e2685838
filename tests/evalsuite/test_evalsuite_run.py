"""``egoforge evaluate suite`` end to end: real lmms-eval runs of egoforge's tasks and the stock-task overrides on the
tiny Qwen3-VL and Qwen2.5-VL, an oracle run with lmms-eval's ``dummy`` model against hand-computed accuracies,
and loud failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egoforge.lmms.tasks import BENCHMARKS, qaego4d
from egoforge.tools.cli import main as cli

QWEN3 = pytest.mark.xdist_group("evalsuite_qwen3")


@pytest.mark.slow
@QWEN3
def test_qwen3_suite_results_json(qwen3_suite_run, bench_root):
    results = json.loads((qwen3_suite_run / "results.json").read_text())
    assert set(results["benchmarks"]) == set(BENCHMARKS)
    expected_docs = {"egoplan2": 3, "qaego4d": 4, "egotextvqa": 4, "egoschema": 3, "egothink": 4, "egocross": 4}
    for name, result in results["benchmarks"].items():
        assert result["n"] == expected_docs[name], name
        assert 0.0 <= result["score"] <= 100.0
    assert set(results["benchmarks"]["egothink"]["tasks"]) == {"egothink_activity_local", "egothink_existence_local"}
    assert results["lmms_eval"]["version"] == "0.7.3"
    assert "--model egoforge_vl" in results["lmms_eval"]["command"]
    assert Path(results["lmms_eval"]["results_file"]).is_file()
    rows = results["table"]["rows"]
    assert "this model" in rows and "Ego3S: Ego3S (CSM+IRL+ECR) (Qwen2.5-VL-7B)" in rows
    for name in ("results.md", "results.csv", "results.png", "lmms_eval.log", "tasks/plan.json"):
        assert (qwen3_suite_run / name).is_file(), name


@pytest.mark.slow
@QWEN3
def test_qwen3_suite_logs_every_answer(qwen3_suite_run):
    """lmms-eval logged one sample per doc; the model saw the clips (frames) and answered every question."""
    results = json.loads((qwen3_suite_run / "results.json").read_text())
    folder = Path(results["lmms_eval"]["results_file"]).parent
    for task, n in {"qaego4d": 4, "egocross_closeqa": 4, "egotextvqa_outdoor": 2, "egoschema_subset_local": 3}.items():
        samples = [json.loads(x) for x in next(folder.glob(f"*_samples_{task}.jsonl")).read_text().splitlines()]
        assert len(samples) == n and all(isinstance(s["filtered_resps"], (str, list)) for s in samples)
    egocross = [json.loads(x) for x in next(folder.glob("*_samples_egocross_closeqa.jsonl")).read_text().splitlines()]
    assert all(len(s["input_media"]) >= 2 for s in egocross)  # every frame of the clip went in


@pytest.mark.slow
@QWEN3
def test_qwen3_egocross_report_agrees_with_lmms_eval(qwen3_suite_run):
    results = json.loads((qwen3_suite_run / "results.json").read_text())
    detail = json.loads((qwen3_suite_run / "egocross" / "results.json").read_text())
    assert detail["micro"] == pytest.approx(results["benchmarks"]["egocross"]["score"])
    assert detail["macro"] == pytest.approx(results["benchmarks"]["egocross"]["extra"]["macro"])
    assert (qwen3_suite_run / "egocross" / "submission.json").is_file()


def _oracle(bench_root: Path) -> dict[str, float]:
    """Accuracy (%) of always answering "A", computed from the benchmark files by hand."""
    import pyarrow.parquet as pq

    def share(values, hit) -> float:
        values = list(values)
        return 100.0 * sum(v == hit for v in values) / len(values)

    rows = json.loads((bench_root / "qaego4d" / qaego4d.ANNOTATIONS).read_text())
    qa = [qaego4d.option_order(r["sample_id"], r["answer"], r["wrong_answers"])[1] for r in rows]
    schema = pq.read_table(next((bench_root / "egoschema" / "Subset").glob("*.parquet"))).column("answer")
    plan = pq.read_table(next((bench_root / "egoplan2").rglob("*.parquet")), columns=["ground_truth"])
    cross = json.loads((bench_root / "egocross" / "egocross_testbed_answers.json").read_text())
    return {"qaego4d": share(qa, "A"), "egoschema": share(schema.to_pylist(), "0"),
            "egoplan2": share(plan.column("ground_truth").to_pylist(), "A"),
            "egocross": share([a["correct_option_letter"] for a in cross], "A"), "egotextvqa": 0.0, "egothink": 0.0}


@pytest.mark.slow
def test_dummy_model_scores_equal_hand_computed_oracle(suite_cli, bench_root, hf_cache, tmp_path):
    """lmms-eval's ``dummy`` model answers "A" everywhere: every benchmark's score is known in advance."""
    out = tmp_path / "dummy"
    assert suite_cli("none", bench_root, out, "--lmms-model", "dummy", "--model-args", "response=A",
                         "--label", "always A", hf_cache=hf_cache) == 0
    results = json.loads((out / "results.json").read_text())
    oracle = _oracle(bench_root)
    # The fixtures spread answers over the letters, so a wrong scorer cannot pass by luck (0 or 100 everywhere).
    assert all(0 < oracle[b] < 100 for b in ("qaego4d", "egocross", "egoschema", "egoplan2"))
    for name, expected in oracle.items():
        assert results["benchmarks"][name]["score"] == pytest.approx(expected), name
    assert results["table"]["rows"]["always A"]["QAEgo4D"] == pytest.approx(oracle["qaego4d"])


@pytest.mark.slow
def test_qwen2_5_runs_egoforge_tasks(suite_cli, bench_root, tiny_qwen2_5_vl, hf_cache, tmp_path):
    out = tmp_path / "q25"
    assert suite_cli(tiny_qwen2_5_vl, bench_root, out, "--benchmarks", "qaego4d,egotextvqa,egocross",
                         "--limit", "2", "--no-published", hf_cache=hf_cache) == 0
    results = json.loads((out / "results.json").read_text())
    assert {b: r["n"] for b, r in results["benchmarks"].items()} == {"qaego4d": 2, "egotextvqa": 4, "egocross": 2}
    assert results["table"]["columns"] == ["QAEgo4D", "EgoTextVQA (local answer match)", "EgoCross micro",
                                           "EgoCross macro"]
    assert list(results["table"]["rows"]) == ["this model"]


@pytest.mark.slow
def test_lmms_eval_failure_fails_the_suite(suite_cli, bench_root, hf_cache, tmp_path, capsys):
    """A model folder lmms-eval cannot load: lmms-eval itself exits 0, egoforge exits 1 and says why."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "qwen3_vl", "nonsense": ')
    out = tmp_path / "out"
    assert suite_cli(broken, bench_root, out, "--benchmarks", "qaego4d", hf_cache=hf_cache) == 1
    err = capsys.readouterr().err
    assert "lmms-eval failed" in err and str(out / "lmms_eval.log") in err
    assert not (out / "results.json").exists()


def test_prepare_only_prints_the_lmms_eval_command(suite_cli, bench_root, tiny_qwen3_vl, tmp_path, capsys):
    out = tmp_path / "prep"
    assert suite_cli(tiny_qwen3_vl, bench_root, out, "--benchmarks", "qaego4d,egothink", "--prepare-only") == 0
    printed = capsys.readouterr().out
    assert f"--include_path {out / 'tasks'}" in printed and "--model egoforge_vl" in printed
    assert "qaego4d,egothink_activity_local,egothink_existence_local" in printed
    assert (out / "tasks" / "qaego4d" / "docs.jsonl").is_file() and not (out / "lmms").exists()


@pytest.mark.parametrize("args, message", [
    (["--benchmarks", "egoschema,mmlu"], "unknown benchmark"),
    (["--data", "qaego4d=/nonexistent/qa"], "benchmark data not found"),
    (["--data", "qaego4d"], "expected KEY=VALUE"),
])
def test_bad_arguments(suite_cli, bench_root, tiny_qwen3_vl, tmp_path, capsys, args, message):
    assert suite_cli(tiny_qwen3_vl, bench_root, tmp_path / "o", *args, "--prepare-only") == 2
    assert message in capsys.readouterr().err


def test_missing_model_folder(bench_root, tmp_path, capsys):
    assert cli(["evaluate", "suite", "--model", str(tmp_path / "nope"), "--data-root", str(bench_root),
                "--benchmarks", "qaego4d", "--out", str(tmp_path / "o")]) == 2
    assert "model folder not found" in capsys.readouterr().err
