"""Local metrics, frame sampling math and judge-reply parsing: pure functions, table-driven."""

from __future__ import annotations

import pytest

from egoforge.lmms.judge import parse_rating, parse_verdict
from egoforge.lmms.media import select_indices
from egoforge.lmms.scoring import (
    answer_match,
    extract_short_answer,
    grouped_accuracy,
    macro_accuracy,
    normalize_answer,
    parse_option_letter,
    token_f1,
)

OPTIONS = ["red", "green", "blue", "yellow"]


@pytest.mark.parametrize("response, expected", [
    ("B", "B"),
    ("(C)", "C"),
    ("D.", "D"),
    ("A) red", "A"),
    ("Answer: B", "B"),
    ("The answer is (D) yellow", "D"),
    ("The best answer is C", "C"),
    ('{"prediction": "b", "reason": "blue ball"}', "B"),
    ("<think>maybe A</think>\nC", "C"),
    ("blue", "C"),                       # the option's text
    ("Blue.", "C"),
    ("I think it is green or blue", ""),  # no letter, no single option text: wrong, never a random guess
    ("", ""),
    ("E", ""),                           # not among A-D
])
def test_parse_option_letter(response, expected):
    assert parse_option_letter(response, OPTIONS) == expected


def test_parse_option_letter_five_options():
    assert parse_option_letter("E. none of them", letters="ABCDE") == "E"


@pytest.mark.parametrize("prediction, reference, match, f1", [
    ("Answer: 30 mph", "30 mph", 1.0, 1.0),
    ("The speed limit is 30 mph.", "30 mph", 1.0, 2 * (2 / 5) * 1 / (2 / 5 + 1)),
    ("30", "30 mph", 0.0, 2 * 1 * 0.5 / 1.5),
    ("gas sale!", "Gas Sale", 1.0, 1.0),
    ("a red one", "red", 1.0, 2 * 0.5 * 1 / 1.5),     # articles dropped: "red one" vs "red"
    ("reddish", "red", 0.0, 0.0),                        # whole words only
    ("", "red", 0.0, 0.0),
])
def test_answer_match_and_token_f1(prediction, reference, match, f1):
    assert answer_match(extract_short_answer(prediction), reference) == match
    assert token_f1(extract_short_answer(prediction), reference) == pytest.approx(f1)


def test_normalize_and_extract():
    assert normalize_answer("The  Quick, brown-fox!") == "quick brown fox"
    assert extract_short_answer("<think>x</think>\nAnswer: Eurokids\nbecause the banner") == "Eurokids"
    assert extract_short_answer("\n\nUnanswerable, too dark") == "Unanswerable, too dark"


def test_grouped_and_macro_accuracy_by_hand():
    records = [{"d": "Surgery", "correct": True}, {"d": "Surgery", "correct": False},
               {"d": "Animal", "correct": True}, {"d": "Industry", "correct": False}]
    assert grouped_accuracy(records, "d") == {"Surgery": 0.5, "Animal": 1.0, "Industry": 0.0}
    assert macro_accuracy(records, "d") == pytest.approx((0.5 + 1.0 + 0.0) / 3)


@pytest.mark.parametrize("kwargs, expected", [
    ({"n_total": 12, "native_fps": 6.0}, list(range(12))),
    ({"n_total": 12, "native_fps": 6.0, "sample_fps": 2.0}, [0, 4, 7, 11]),
    ({"n_total": 12, "native_fps": 6.0, "sample_fps": 2.0, "end": 1.0}, [0, 3, 6]),  # real-time: up to 1.0 s
    ({"n_total": 100, "native_fps": 30.0, "max_frames": 4}, [0, 33, 66, 99]),
    ({"n_total": 30, "native_fps": 30.0, "start": 0.5, "max_frames": 2}, [15, 29]),
    ({"n_total": 12, "native_fps": 6.0, "end": 0.05}, [0]),   # window shorter than a frame: the frame at its end
    ({"n_total": 0, "native_fps": 6.0}, []),
])
def test_select_indices(kwargs, expected):
    assert select_indices(**kwargs) == expected


def test_select_indices_never_exceeds_limits():
    for n in range(1, 60):
        picked = select_indices(n, 6.0, sample_fps=2.0, max_frames=5, end=5.0)
        assert picked == sorted(set(picked)) and len(picked) <= 5
        assert all(i <= 30 and i < n for i in picked)


def test_judge_reply_parsing():
    verdict = parse_verdict("{'pred': 'yes', 'score': 4}")
    assert verdict.correct and verdict.score == 4
    assert not parse_verdict('{"pred": "no", "score": "1"}').correct
    assert parse_rating("The answer is close. Rating: [[0.5]]") == 0.5
    assert parse_rating("[[1]]") == 1.0
    with pytest.raises(ValueError, match="pred"):
        parse_verdict("looks right to me")
    with pytest.raises(ValueError, match="rating"):
        parse_rating("Rating: 0.7")
