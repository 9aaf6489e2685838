"""predictions.jsonl is resumable: flushed per record, a torn last line is redone, other bad lines are errors."""

import json

import pytest

from egoforge.data.predictions import PredictionWriter, read_predictions


def test_write_then_resume(tmp_path):
    path = tmp_path / "p.jsonl"
    with PredictionWriter(path) as writer:
        writer.write([{"id": "a", "prediction": "A"}, {"id": 2, "prediction": "B"}])
    with PredictionWriter(path) as writer:
        assert writer.done == {"a", "2"}
        writer.write([{"id": "c", "prediction": "C"}])
    assert list(read_predictions(path)) == ["a", "2", "c"]


def test_torn_last_line_is_dropped_and_the_file_repaired(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "prediction": "A"}) + '\n{"id": "b", "predic')
    with PredictionWriter(path) as writer:
        assert writer.done == {"a"}
        writer.write([{"id": "b", "prediction": "B"}])
    assert read_predictions(path)["b"]["prediction"] == "B"


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "c"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_predictions(path)


def test_records_need_an_id(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prediction": "A"}\n')
    with pytest.raises(ValueError, match="field 'id'"):
        read_predictions(path)


@pytest.mark.parametrize("text, message", [
    (None, "predictions file not found"),
    ("", "holds no predictions"),
    ('{"id": "a"}\n{"id": "b", "pre', "line 2: not valid JSON (a torn last line"),
    ('{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n', "id 'a' is given twice, on lines 1 and 3"),
])
def test_strict_reading_for_scoring_refuses_what_resuming_tolerates(tmp_path, text, message):
    """Scoring must see every answer: the resume reader's tolerance (missing file, torn tail, last duplicate wins)
    would score silently wrong."""
    from egoforge.data.errors import InputError

    path = tmp_path / "p.jsonl"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        read_predictions(path, strict=True)
    read_predictions(path)  # resuming still reads it
