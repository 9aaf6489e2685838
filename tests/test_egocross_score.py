"""Scorer and tables, table-driven; reproduces the seed's micro 46.08 / macro 46.59 from per-domain counts."""

from __future__ import annotations

import csv
import json

import pytest

from egoforge.data.egocross import DOMAIN_SOURCES, load_answers, load_testbed
from egoforge.data.jsonio import DataFormatError
from egoforge.eval.egocross_run import score_and_report
from egoforge.eval.egocross_score import score_egocross, submission
from egoforge.eval.published import EGOCROSS_ROWS, EGOCROSS_SFT2_COUNTS


def _build(counts: dict[str, tuple[int, int]]):
    """Testbed items, answers and predictions with exactly ``correct`` of ``total`` right in each domain."""
    items, answers, preds = [], {}, {}
    n = 0
    for domain, (correct, total) in counts.items():
        dataset = DOMAIN_SOURCES[domain][0]
        for i in range(total):
            n += 1
            item_id = f"{dataset}_{n}"
            items.append({"id": item_id, "question_id": n, "dataset": dataset, "primary_category": "Identification",
                          "question_type": "t", "question_text": "q", "options": ["A: x", "B: y"],
                          "video_path": ["f.jpg"]})
            answers[item_id] = "A"
            preds[item_id] = {"id": item_id, "prediction": "A" if i < correct else "B"}
    return items, answers, preds


def test_reproduces_the_seed_micro_and_macro():
    results = score_egocross(*_build(EGOCROSS_SFT2_COUNTS))
    assert round(results.micro, 2) == 46.08 == EGOCROSS_ROWS["Full SFT 2 ep"]["micro"]
    assert round(results.macro, 2) == 46.59 == EGOCROSS_ROWS["Full SFT 2 ep"]["macro"]
    for domain, expected in (("Surgery", 47.70), ("Industry", 35.10), ("XSports", 48.37), ("Animal", 55.19)):
        assert round(results.per_domain[domain].accuracy, 2) == expected


@pytest.mark.parametrize(
    "counts, micro, macro",
    [
        ({"Surgery": (1, 2), "Industry": (0, 2), "XSports": (2, 2), "Animal": (1, 4)}, 40.0, 43.75),
        ({"Surgery": (3, 3), "Industry": (0, 0), "XSports": (0, 0), "Animal": (0, 1)}, 75.0, 50.0),
    ],
)
def test_micro_and_macro_by_hand(counts, micro, macro):
    results = score_egocross(*_build(counts))
    assert results.micro == pytest.approx(micro) and results.macro == pytest.approx(macro)


def test_missing_predictions_count_as_wrong_and_are_listed():
    items, answers, preds = _build({"Surgery": (2, 2)})
    del preds[items[0]["id"]]
    results = score_egocross(items, answers, preds)
    assert results.per_domain["Surgery"].correct == 1 and results.missing_predictions == [items[0]["id"]]
    assert results.parse_status["missing"] == 1


def test_answers_match_by_question_id_when_ids_differ():
    items, _, preds = _build({"Animal": (1, 1)})
    results = score_egocross(items, {"1": "A"}, preds)
    assert results.per_domain["Animal"].correct == 1


def test_submission_format():
    items, _, preds = _build({"Industry": (1, 2)})
    rows = submission(items, preds)
    assert rows == [{"id": items[0]["id"], "question_id": 1, "dataset": "ENIGMA", "answer": "A"},
                    {"id": items[1]["id"], "question_id": 2, "dataset": "ENIGMA", "answer": "B"}]


def test_score_and_report_writes_every_output(tmp_path):
    items, answers, preds = _build(EGOCROSS_SFT2_COUNTS)
    (tmp_path / "t.json").write_text(json.dumps(items))
    (tmp_path / "a.json").write_text(json.dumps([{"id": k, "correct_option_letter": v} for k, v in answers.items()]))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds.values()))
    score_and_report(tmp_path / "t.json", tmp_path / "a.json", tmp_path / "p.jsonl", tmp_path / "out", label="mine")
    out = json.loads((tmp_path / "out" / "results.json").read_text())
    assert out["micro"] == 46.08 and out["macro"] == 46.59
    assert out["per_domain"]["Animal"] == {"correct": 101, "total": 183, "accuracy": 55.19}
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| Full SFT 2 ep | 47.70 | 35.10 | 48.37 | 55.19 | 46.08 | 46.59 |" in table
    assert "| mine | 47.70 | 35.10 | 48.37 | 55.19 | 46.08 | 46.59 |" in table
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert rows[-1]["Method"] == "mine" and rows[-1]["macro"] == "46.59"
    assert (tmp_path / "out" / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((tmp_path / "out" / "submission.json").read_text())) == 957


@pytest.mark.parametrize(
    "content, field, reason",
    [
        ("{}", None, "expected a JSON list"),
        ("[{\"id\": 1}]", "dataset", "missing"),
        ('[{"id": 1, "dataset": "Nope", "primary_category": "c", "question_type": "t", "question_text": "q", '
         '"options": ["A: a", "B: b"], "video_path": ["f.jpg"]}]', "dataset", "unknown EgoCross source"),
        ("not json", None, "not valid JSON"),
    ],
)
def test_bad_testbed_files_name_file_row_and_field(tmp_path, content, field, reason):
    path = tmp_path / "testbed.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=reason) as info:
        load_testbed(path)
    assert info.value.field == field and str(path) in str(info.value)


def test_bad_answers_file(tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps([{"id": "x", "correct_option_letter": "A"}, {"id": "y"}]))
    with pytest.raises(DataFormatError, match="row 1, field 'correct_option_letter'"):
        load_answers(path)
