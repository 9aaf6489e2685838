"""Each benchmark's preparation and lmms-eval hooks (doc_to_visual / doc_to_text / doc_to_target / metrics) on
generated benchmark copies in the real formats; bad inputs name file, row and field; sources are never written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from egoforge.data.jsonio import DataFormatError
from egoforge.eval.egocross_protocol import build_closeqa_prompt
from egoforge.lmms.media import read_mark
from egoforge.lmms.taskgen import TaskOptions, read_task_yaml, write_task_dir
from egoforge.lmms.tasks import (
    BENCHMARKS,
    benchmark_module,
    egocross,
    egoplan2,
    egoschema,
    egotextvqa,
    egothink,
    qaego4d,
)
from egoforge.testing import benchdata

OPTIONS = TaskOptions(video_fps=2.0, max_frames=4)


def _docs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def prepared(bench_root, tmp_path_factory):
    """Every benchmark prepared into one task folder, as the suite does; sources must stay byte-identical."""
    before = _tree_digest(bench_root)
    out = tmp_path_factory.mktemp("tasks") / "tasks"
    _, plans = write_task_dir(out, lambda tmp: [benchmark_module(b).prepare(bench_root / b, tmp, OPTIONS)
                                                for b in BENCHMARKS])
    assert _tree_digest(bench_root) == before
    return out, {p.benchmark: p for p in plans}


def test_task_folder_layout(prepared):
    out, plans = prepared
    assert set(plans) == set(BENCHMARKS)
    for plan in plans.values():
        for task in plan.tasks:
            text = (out / plan.benchmark / f"{task.name}.yaml").read_text()
            assert text.startswith("# egoforge:") and f"task: {task.name}" in text
            assert "!function" not in text or "!function 'egoforge." in text or "!function 'lmms_eval." in text
            assert task.n_docs > 0
    summary = json.loads((out / "plan.json").read_text())
    assert [s["benchmark"] for s in summary] == list(BENCHMARKS)
    group = yaml.safe_load((out / "egothink" / "_egothink_local_group.yaml").read_text())
    assert group["group"] == "egothink_local" and len(group["task"]) == 2


def test_yaml_merges_over_the_included_files(prepared):
    """The include chain merged the way lmms-eval merges it (the full lmms-eval run checks its own loader)."""
    out, _ = prepared
    config = read_task_yaml(out / "qaego4d" / "qaego4d.yaml")
    assert config["task"] == "qaego4d"
    assert config["doc_to_visual"].target == "egoforge.lmms.tasks.qaego4d.doc_to_visual"
    assert config["dataset_kwargs"] == {"data_files": {"test": "docs.jsonl"}}
    stock = read_task_yaml(out / "egoschema" / "egoschema_subset_local.yaml")
    assert stock["doc_to_visual"].target == "egoforge.lmms.tasks.egoschema.doc_to_visual"
    assert stock["doc_to_text"].target == "utils.egoschema_doc_to_text"  # the stock prompt is kept
    assert stock["dataset_kwargs"] == {"data_files": {"test": "docs.jsonl"}}  # no HF snapshot/video download


def test_qaego4d_hooks(prepared, bench_root):
    out, _ = prepared
    docs = _docs(out / "qaego4d" / "docs.jsonl")
    source = json.loads((bench_root / "qaego4d" / qaego4d.ANNOTATIONS).read_text())
    assert len(docs) == len(source)
    for doc, item in zip(docs, source):
        assert doc["options"][ord(qaego4d.doc_to_target(doc)) - 65] == item["answer"]
        assert sorted(doc["options"]) == sorted([item["answer"], *item["wrong_answers"]])
    # A fixed option order per sample_id: preparing again gives the same letters.
    again, letter = qaego4d.option_order(docs[0]["id"], source[0]["answer"], source[0]["wrong_answers"])
    assert again == docs[0]["options"] and letter == docs[0]["answer"]
    doc = docs[0]
    frames = qaego4d.doc_to_visual(doc)
    marks = [read_mark(f) for f in frames]
    assert len(frames) == 4 and {m.clip for m in marks} == {doc["id"]}   # max_frames=4 of an 8-frame clip
    assert [m.index for m in marks] == [0, 2, 5, 7] and marks[0].fps == pytest.approx(2.0)
    text = qaego4d.doc_to_text(doc, {"pre_prompt": "", "post_prompt": "\nAnswer with the letter."})
    assert text.startswith(doc["question"]) and "(A) " in text and text.endswith("letter.")
    answer_text = doc["options"][ord(doc["answer"]) - 65]
    assert qaego4d.process_results(doc, [f"({doc['answer']}) {answer_text}"]) == {"accuracy": 1.0}
    assert qaego4d.process_results(doc, [answer_text]) == {"accuracy": 1.0}
    wrong = "ABCD"[("ABCD".index(doc["answer"]) + 1) % 4]
    assert qaego4d.process_results(doc, [wrong]) == {"accuracy": 0.0}


def test_egotextvqa_hooks_real_time_window(prepared):
    out, plans = prepared
    assert [t.name for t in plans["egotextvqa"].tasks] == ["egotextvqa_outdoor", "egotextvqa_indoor"]
    for split in ("outdoor", "indoor"):
        doc = _docs(out / "egotextvqa" / f"docs_{split}.jsonl")[0]
        assert bool(doc["frames_dir"]) == (split == "outdoor") and bool(doc["video"]) == (split == "indoor")
        frames = egotextvqa.doc_to_visual(doc)
        seconds = [read_mark(f).seconds for f in frames]
        assert seconds and max(seconds) <= doc["timestamp"] + 1e-6  # only what was seen before the question
        assert seconds == sorted(seconds) and len(frames) <= OPTIONS.max_frames
        text = egotextvqa.doc_to_text(doc)
        assert doc["question"] in text and "Answer: [Full answer]" in text
        assert egotextvqa.process_results(doc, [f"Answer: {doc['answer']}"]) == {"local_answer_match": 1.0,
                                                                                 "token_f1": 1.0}
        assert egotextvqa.process_results(doc, ["Unanswerable"])["local_answer_match"] == 0.0


def test_egocross_hooks_match_the_egocross_protocol(prepared, bench_root):
    out, _ = prepared
    docs = _docs(out / "egocross" / "docs.jsonl")
    items = json.loads((bench_root / "egocross" / egocross.TESTBED_FILE).read_text())
    assert [d["id"] for d in docs] == [str(it["id"]) for it in items]
    for doc, item in zip(docs, items):
        expected = build_closeqa_prompt(item["question_text"], item["options"], item["original_video_fps"],
                                        doc["prompt_fps"])
        assert egocross.doc_to_text(doc) == expected
        frames = egocross.doc_to_visual(doc)
        assert len(frames) == len(item["video_path"])
        assert {read_mark(f).fps for f in frames} == {doc["fps"]}
        assert read_mark(frames[0]).max_pixels == egocross.MAX_PIXELS
    png = next(d for d in docs if d["frames"][0].endswith(".png"))
    # The official script: the prompt says 1.0 for CholecTrack20 .png clips, every clip is fed at 0.5 fps.
    assert (png["prompt_fps"], png["fps"]) == (1.0, 0.5)
    assert {(d["prompt_fps"], d["fps"]) for d in docs if d is not png} == {(0.5, 0.5)}
    doc = docs[0]
    right = egocross.process_results(doc, [json.dumps({"prediction": doc["answer"], "reason": "r"})])
    assert right["accuracy"]["correct"] and right["accuracy"]["parse_status"] == "json"
    assert egocross.process_results(doc, [doc["answer"]])["accuracy"]["correct"]
    assert not egocross.process_results_strict(doc, [doc["answer"]])["accuracy"]["correct"]


def test_egocross_aggregations_by_hand():
    records = [{"domain": "Surgery", "correct": True}, {"domain": "Surgery", "correct": True},
               {"domain": "Surgery", "correct": False}, {"domain": "Animal", "correct": False}]
    assert egocross.aggregate_micro(records) == pytest.approx(0.5)
    assert egocross.aggregate_macro(records) == pytest.approx((2 / 3 + 0.0) / 2)


def test_egoschema_local_override_uses_the_stock_prompt_and_metric(prepared):
    from lmms_eval.tasks.egoschema import utils as stock

    out, plans = prepared
    assert any("hidden" in n for n in plans["egoschema"].notes)
    doc = _docs(out / "egoschema" / "docs.jsonl")[0]
    frames = egoschema.doc_to_visual(doc)
    assert 1 <= len(frames) <= OPTIONS.max_frames and read_mark(frames[0]).clip == doc["video_idx"]
    text = stock.egoschema_doc_to_text(doc, {})
    assert doc["option"][0] in text
    letter = "ABCDE"[int(doc["answer"])]
    scored = stock.egoschema_process_results_generation(doc, [letter])
    assert stock.egoschema_aggregate_score([scored["score"]], None) == 1.0


def test_egoplan2_parquet_and_json_layouts(prepared, bench_root, tmp_path):
    from lmms_eval.tasks.egoplan2 import utils as stock

    _, plans = prepared
    config = plans["egoplan2"].tasks[0].config
    assert config["dataset_path"] == "parquet" and plans["egoplan2"].tasks[0].n_docs == 3
    assert config["dataset_kwargs"]["data_files"]["train"][0].startswith(str(bench_root / "egoplan2"))
    source = benchdata.make_egoplan2(tmp_path / "plan_json", n=2, parquet=False)
    plan = egoplan2.prepare(source, tmp_path / "work", OPTIONS)
    doc = _docs(tmp_path / "work" / "egoplan2" / "docs.jsonl")[0]
    assert plan.tasks[0].config["dataset_path"] == "json" and all(Path(k).is_file() for k in doc["keyframes"])
    assert stock.egoplan2_doc_to_text(doc) == doc["formatted_question"]
    result = stock.egoplan2_process_results(doc, [f"{doc['ground_truth']}."])["egoplan2_mcq_accuracy"]
    assert stock.egoplan2_aggregate_results([result]) == 1.0


def test_egothink_local_metric_replaces_the_gpt_judge(prepared, bench_root, tmp_path):
    _, plans = prepared
    plan = plans["egothink"]
    assert [t.name for t in plan.tasks] == ["egothink_activity_local", "egothink_existence_local"]
    config = plan.tasks[0].config
    assert config["process_results"].target.endswith("egothink.process_results")
    assert [m["metric"] for m in config["metric_list"]] == ["local_answer_match", "token_f1"]
    assert config["generation_kwargs"]["do_sample"] is False  # the stock task samples at temperature 0.2
    stock = read_task_yaml(egothink.stock_subtasks()["Activity"])
    assert stock["metric_list"][0]["metric"] == "gpt_eval_score"  # what is being replaced
    doc = {"answer": "Red.", "question": "what color?"}
    assert egothink.process_results(doc, ["It is red"]) == {"local_answer_match": 1.0,
                                                            "token_f1": pytest.approx(0.5)}
    judged = egothink.prepare(bench_root / "egothink", tmp_path, TaskOptions(judge=True))
    assert judged.metric == "judge_rating"
    assert judged.tasks[0].config["process_results"].target.endswith("process_results_judged")
    source = benchdata.make_egothink(tmp_path / "think_json", capabilities=("Forecasting",), parquet=False)
    plan = egothink.prepare(source, tmp_path / "work", OPTIONS)
    assert [t.name for t in plan.tasks] == ["egothink_forecasting_local"]
    assert plan.tasks[0].config["dataset_kwargs"]["features"].target.endswith("egothink.FEATURES")


def test_judge_option_switches_egotextvqa_metric(bench_root, tmp_path):
    plan = egotextvqa.prepare(bench_root / "egotextvqa", tmp_path, TaskOptions(judge=True))
    assert plan.metric == "judge_accuracy"
    metrics = [m["metric"] for m in plan.tasks[0].config["metric_list"]]
    assert metrics == ["local_answer_match", "token_f1", "judge_accuracy", "judge_score"]


# --- bad inputs -------------------------------------------------------------------------------------------------

def _copy(bench_root: Path, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bench_root / name, tmp_path / name))


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("edit, field, message", [
    (lambda rows: rows[1].pop("wrong_answers"), "wrong_answers", "missing"),
    (lambda rows: rows[1].update(wrong_answers=["x"]), "wrong_answers", "three strings"),
    (lambda rows: rows[1].update(video_id="../../etc/passwd"), "video_id", "escapes the data root"),
    (lambda rows: rows[1].update(video_id="no-such-clip"), "video_id", "file not found"),
])
def test_qaego4d_bad_rows(bench_root, tmp_path, edit, field, message):
    source = _copy(bench_root, "qaego4d", tmp_path)
    _edit_json(source / qaego4d.ANNOTATIONS, edit)
    with pytest.raises(DataFormatError, match=message) as info:
        qaego4d.prepare(source, tmp_path / "work", OPTIONS)
    assert info.value.row == 1 and info.value.field == field
    assert info.value.path.endswith(qaego4d.ANNOTATIONS)


def test_egotextvqa_bad_timestamp(bench_root, tmp_path):
    source = _copy(bench_root, "egotextvqa", tmp_path)
    _edit_json(egotextvqa.annotation_file(source, "indoor"), lambda b: b[0]["data"][1].update(timestamp="soon"))
    with pytest.raises(DataFormatError, match="row 1, field 'timestamp'"):
        egotextvqa.prepare(source, tmp_path / "work", OPTIONS)


def test_egoschema_bad_answer_and_missing_video(bench_root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = _copy(bench_root, "egoschema", tmp_path)
    table = next((source / "Subset").glob("*.parquet"))
    rows = pq.read_table(table).to_pylist()
    rows[2]["answer"] = "7"
    pq.write_table(pa.Table.from_pylist(rows), table)
    with pytest.raises(DataFormatError, match="row 2, field 'answer'"):
        egoschema.prepare(source, tmp_path / "work", OPTIONS)
    rows[2]["answer"] = "1"
    pq.write_table(pa.Table.from_pylist(rows), table)
    next((source / "videos").glob("*.mp4")).unlink()
    with pytest.raises(DataFormatError, match="field 'video_idx': file not found"):
        egoschema.prepare(source, tmp_path / "work", OPTIONS)


def test_egocross_missing_answer(bench_root, tmp_path):
    source = _copy(bench_root, "egocross", tmp_path)
    _edit_json(source / egocross.ANSWERS_FILE, lambda rows: rows.pop(0))
    with pytest.raises(DataFormatError, match="no answer for testbed item"):
        egocross.prepare(source, tmp_path / "work", OPTIONS)


def test_egoplan2_bad_ground_truth(bench_root, tmp_path):
    source = benchdata.make_egoplan2(tmp_path / "plan", n=2, parquet=False)
    _edit_json(source / "egoplan2.json", lambda rows: rows[1].update(ground_truth="Z"))
    with pytest.raises(DataFormatError, match="row 1, field 'ground_truth'"):
        egoplan2.prepare(source, tmp_path / "work", OPTIONS)


def test_egothink_parquet_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "think" / "Activity"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"id": 1, "question": "q"}]), folder / "test-00000-of-00001.parquet")
    with pytest.raises(DataFormatError, match="field 'answer': missing column"):
        egothink.prepare(tmp_path / "think", tmp_path / "work", OPTIONS)
