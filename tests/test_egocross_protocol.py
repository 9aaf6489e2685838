"""CloseQA prompt (verbatim structure of the official script) and the response parser, table-driven."""

import pytest

from egoforge.data.egocross import domain_of, sampling_fps
from egoforge.eval.egocross_protocol import build_closeqa_prompt, is_correct, parse_response


def test_prompt_matches_the_official_structure():
    prompt = build_closeqa_prompt("How many tools?", ["A: 1", "B: 2", "C: 3", "D: 4"], 25.0, 0.5)
    assert prompt.startswith("Please carefully read the question and its options, then select the most "
                             "appropriate answer. Question: How many tools?\n\nOptions:\nA: 1\nB: 2\nC: 3\nD: 4")
    # The official script has no separator between the options and the FPS sentence; we keep that.
    assert "D: 4The original FPS of the video is 25.0. This image set is obtained by sampling at 0.5 fps." in prompt
    assert "Respond in JSON format with two fields: 'prediction'" in prompt
    assert prompt.endswith('Example response:\n{\n    "prediction": "B",\n'
                           '    "reason": "Paris is the capital city of France."\n}\n')


@pytest.mark.parametrize(
    "response, prediction, status",
    [
        ('{"prediction": "B", "reason": "x"}', "B", "json"),
        ('Sure!\n{"prediction": "c", "reason": "because"} trailing', "c", "json_block"),
        ('```json\n{"prediction": "D"}\n```', "D", "json_block"),
        ("<think>\n\n</think>\n\nA", "A", "letter"),
        ("(B)", "B", "letter"),
        ("Answer: C", "C", "letter"),
        ("b.", "B", "letter"),
        ("The answer is probably B because", "", "unparsed"),
        ("", "", "unparsed"),
        ('{"prediction": 3}', "3", "json"),
        ('["not", "an", "object"]', "", "unparsed"),
        ("{broken json", "", "unparsed"),
    ],
)
def test_parse_response(response, prediction, status):
    parsed = parse_response(response)
    assert (parsed.prediction, parsed.status) == (prediction, status)


def test_strict_mode_scores_like_the_benchmark_script():
    assert parse_response("B", allow_bare_letter=False).status == "unparsed"
    assert parse_response('{"prediction": "B"}', allow_bare_letter=False).prediction == "B"


@pytest.mark.parametrize("pred, truth, ok", [("B", "B", True), ("b", "B", True), (" B", "B", False),
                                             ("", "B", False), ("C", "B", False)])
def test_is_correct_is_the_official_case_insensitive_match(pred, truth, ok):
    assert is_correct(pred, truth) is ok


@pytest.mark.parametrize(
    "dataset, frames, fps",
    [("CholecTrack20", ["a/frame_001.png"], 1.0), ("CholecTrack20", ["a/frame_001.jpg"], 0.5),
     ("EgoSurgery", ["x.jpg"], 1.0), ("EgoPet", ["x.png"], 0.5), ("ENIGMA", ["x.jpg"], 0.5)],
)
def test_sampling_fps_is_the_true_per_domain_rate(dataset, frames, fps):
    assert sampling_fps(dataset, frames) == fps


def test_domains_map_from_source_datasets():
    assert [domain_of(d) for d in ("CholecTrack20", "EgoSurgery", "ENIGMA", "ExtrameSportFPV", "EgoPet")] == [
        "Surgery", "Surgery", "Industry", "XSports", "Animal"]
    with pytest.raises(ValueError, match="unknown EgoCross source dataset 'Ego4D'"):
        domain_of("Ego4D")
