"""Ego3S rewards as pure functions: table-driven cases, reference implementations, and properties (hypothesis)."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egoforge.rewards import accuracy as acc
from egoforge.rewards.answers import IRL_TAGS, R1_TAGS, count_objects, extract_tag, format_matches, parse_objects
from egoforge.rewards.ego3s import compute_score, settings_from_kwargs
from egoforge.rewards.extras import LengthBonus, TemporalBonus
from egoforge.rewards.grounding import IRLConfig, group_terms
from egoforge.rewards.scoring import RewardSettings, finish_group, score_group, score_response
from egoforge.rewards.text_metrics import edit_distance, lcs_length, mean_rouge_f, rouge_f, word_error_rate

try:
    import nltk  # noqa: F401  (the free-form reward's stemmer)

    HAS_NLTK = True
except ImportError:
    HAS_NLTK = False
needs_nltk = pytest.mark.skipif(not HAS_NLTK, reason="the free-form reward needs nltk (add it to this environment)")

GOOD_IRL = "<think>the hand holds a red ball</think>\n<answer>B</answer> <object>ball, hand</object>"


@pytest.mark.parametrize("text, tags, ok", [
    ("<think>a</think><answer>B</answer>", R1_TAGS, True),
    ("<think>a</think> \n\t<answer>B</answer>", R1_TAGS, True),
    ("<think></think><answer></answer>", R1_TAGS, True),
    ("<think>a</think><answer>B</answer> ", R1_TAGS, False),  # trailing text breaks fullmatch
    (" <think>a</think><answer>B</answer>", R1_TAGS, False),
    ("<think>a</think>x<answer>B</answer>", R1_TAGS, False),
    ("<think>a</think><answer>B", R1_TAGS, False),
    ("<answer>B</answer>", R1_TAGS, False),
    ("<think>a</think><think>b</think><answer>B</answer>", R1_TAGS, True),  # lazy groups may span tags
    ("<think>a</think><answer>B</answer><answer>C</answer>", R1_TAGS, True),
    (GOOD_IRL, IRL_TAGS, True),
    ("<think>a</think><answer>B</answer>", IRL_TAGS, False),
    ("<think>a</think><answer>B</answer><object>x</object>", R1_TAGS, False),
])
def test_format_table(text, tags, ok):
    assert format_matches(text, tags) is ok


TAG_SOUP = st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", "<object>", "</object>", " ",
                                     "\n", "a", "B", ","]), max_size=14).map("".join)


@given(TAG_SOUP)
@settings(max_examples=400, deadline=None)
def test_format_matches_the_reference_regex(text):
    import re

    for tags in (R1_TAGS, IRL_TAGS):
        pattern = r"\s*".join(f"<{t}>.*?</{t}>" for t in tags)
        assert format_matches(text, tags) == bool(re.fullmatch(pattern, text, re.DOTALL)), text


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_extract_tag_matches_the_reference_regex(text):
    import re

    match = re.search(r"<answer>\s*(.*?)\s*</answer>", text, re.DOTALL)
    assert extract_tag(text, "answer") == (match.group(1).strip() if match else "")


def test_objects_are_the_first_object_section_split_on_commas():
    assert parse_objects("<object> cup , knife,, cutting board </object><object>x</object>") == [
        "cup", "knife", "cutting board"]
    assert count_objects("<object>a,b,c</object>") == 3 and parse_objects("no tags") == []
    assert parse_objects("<object>" + ",".join(f"o{i}" for i in range(100)) + "</object>", limit=5) == [
        "o0", "o1", "o2", "o3", "o4"]


LENIENT = acc.AnswerRules(lenient_choice=True, guarded_regression=True)


@pytest.mark.parametrize("problem_type, answer, truth, official, lenient", [
    ("multiple choice", "B", "B", 1.0, 1.0),
    ("multiple choice", "(B)", "B", 0.0, 1.0),  # official: exact text match only
    ("multiple choice", "B. red ball", "B", 0.0, 1.0),
    ("multiple choice", "b", "B", 0.0, 1.0),
    ("multiple choice", "C", "B", 0.0, 0.0),
    ("multiple choice", "B or C", "B", 0.0, 0.0),
    ("multiple choice", "", "B", 0.0, 0.0),
    ("multiple choice", "", "", 1.0, 0.0),  # official: two empty answers are equal
    ("numerical", "3", "3", 1.0, 1.0),
    ("numerical", "3.0", "3", 0.0, 0.0),  # decimal presence must match (reference code)
    ("numerical", "3.004", "3.00", 1.0, 1.0),
    ("numerical", "3.006", "3.00", 0.0, 0.0),
    ("numerical", "1,234", "1234", 0.0, 0.0),
    ("numerical", "nan", "3", 0.0, 0.0),
    ("numerical", "inf", "inf", 1.0, 1.0),
    ("numerical", "three", "3", 0.0, 0.0),
    ("OCR", "fragile", "fragile", 1.0, 1.0),
    ("OCR", "fragile glass", "fragile", 0.0, 0.0),  # WER 1 -> 0
    ("OCR", "handle with care", "handle with care please", 0.75, 0.75),
    ("OCR", "", "stop", 0.0, 0.0),
    pytest.param("free-form", "The camera wearer holds a red ball", "The camera wearer holds a red ball", 1.0, 1.0,
                 marks=needs_nltk),
    pytest.param("free-form", "nothing in common", "red ball", 0.0, 0.0, marks=needs_nltk),
    ("regression", "2.0", "2.0", 1.0, 1.0),
    ("regression", "3", "2", 0.5, 0.5),
    ("regression", "10", "2", 0.0, 0.0),
    ("regression", "0", "0", 0.0, 1.0),  # official: (0 + 1e-9) / (0 + 1e-9) = 1 -> reward 0
    ("regression", "inf", "2", 0.0, 0.0),
    ("regression", "1e308", "-1e308", 0.0, 0.0),
    ("regression", "nan", "2", 1.0, 0.0),  # official: a NaN ratio clips to 0 -> reward 1
    ("unknown type", "B", "B", 0.0, 0.0),
])
def test_accuracy_table(problem_type, answer, truth, official, lenient):
    assert acc.accuracy(answer, truth, problem_type) == pytest.approx(official, abs=1e-6)
    assert acc.accuracy(answer, truth, problem_type, LENIENT) == pytest.approx(lenient, abs=1e-6)


def _dp_edit(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return d[-1]


def _dp_lcs(a, b):
    d = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        prev = 0
        for j in range(1, len(b) + 1):
            prev, d[j] = d[j], prev + 1 if a[i - 1] == b[j - 1] else max(d[j], d[j - 1])
    return d[-1]


def test_free_form_without_nltk_raises_instead_of_scoring_unstemmed(monkeypatch):
    import sys

    from egoforge.rewards import text_metrics

    text_metrics._stemmer.cache_clear()
    text_metrics._stem.cache_clear()
    monkeypatch.setitem(sys.modules, "nltk.stem.porter", None)
    try:
        with pytest.raises(ImportError, match="install nltk"):
            acc.accuracy("red cups", "red cup", "free-form")
        assert rouge_f("running dogs", "run dog", stem=False)["rouge1"] == 0.0  # unstemmed only when asked
    finally:
        text_metrics._stemmer.cache_clear()
        text_metrics._stem.cache_clear()


WORDS = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=70)


@given(WORDS, WORDS)
@settings(max_examples=300, deadline=None)
def test_bit_parallel_edit_distance_and_lcs_match_dynamic_programming(a, b):
    assert edit_distance(a, b) == _dp_edit(a, b)
    assert lcs_length(a, b) == _dp_lcs(a, b)


@needs_nltk
def test_rouge_values():
    scores = rouge_f("the cat sat on the mat", "the cat lay on the mat", stem=False)
    # 5 of 6 unigrams, 3 of 5 bigrams, LCS 5 of 6
    assert scores["rouge1"] == pytest.approx(5 / 6)
    assert scores["rouge2"] == pytest.approx(3 / 5)
    assert scores["rougeL"] == pytest.approx(5 / 6)
    assert rouge_f("running dogs", "run dog")["rouge1"] == 1.0  # Porter stemming, as rouge_score's use_stemmer
    assert mean_rouge_f("", "anything") == 0.0


@needs_nltk
def test_pathological_strings_stay_fast():
    """ROUGE-L / WER on 20k-token strings (and tag-repeating responses) must not stall a reward worker."""
    words = ["hand", "cup", "knife", "the", "a", "red"]
    long_a = " ".join(words[i % 6] for i in range(20_000))
    long_b = " ".join(words[(i * 7) % 6] for i in range(20_000))
    tags = "<think>" * 5000 + "</think><answer>" * 5000 + "</answer>" * 5000 + "<object>" + "x," * 50_000
    start = time.perf_counter()
    mean_rouge_f(long_a, long_b)
    word_error_rate(long_a, long_b)
    format_matches(tags, IRL_TAGS)
    score_response(tags, "<answer>B</answer>", "free-form")
    score_response(long_a, "<answer>" + long_b + "</answer>", "OCR")
    assert time.perf_counter() - start < 5.0  # generous for a loaded CI core; ~0.2 s measured


ANY_TYPE = st.sampled_from(tuple(t for t in acc.PROBLEM_TYPES if HAS_NLTK or t != "free-form") + ("bogus",))


@given(st.text(max_size=300), st.text(max_size=80), ANY_TYPE, st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_response_any_truth_never_raises_and_is_bounded(response, truth, problem_type, irl):
    cfg = RewardSettings(irl=irl)
    result = score_response(response, f"<answer>{truth}</answer>", problem_type, cfg)
    assert all(math.isfinite(v) for v in result.values())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["format"] in (0.0, 1.0)
    if irl:
        assert result["penalty"] <= 0.0
    # Bounded below by the over-listing penalty, above by accuracy + format (+ penalty 0).
    assert result["score"] <= 2.0


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8), st.lists(st.integers(0, 40), min_size=8, max_size=8),
       st.sampled_from(["paper", "official"]))
@settings(max_examples=200, deadline=None)
def test_group_terms_properties(similarities, counts, preset):
    cfg = IRLConfig.preset(preset)
    terms = group_terms(similarities, counts[: len(similarities)], cfg)
    rate = sum(s > cfg.lambda_o for s in similarities) / len(similarities)
    for term, s, n in zip(terms, similarities, counts):
        assert term["group_rate"] == pytest.approx(rate)
        assert 0.0 <= term["r_int"] <= cfg.H
        assert term["r_int"] == (pytest.approx(cfg.H - rate) if s > cfg.lambda_o else 0.0)
        assert term["penalty"] == min(0, cfg.N - n)


def test_group_terms_worked_example():
    # 5 rollouts, 2 grounded: rate 0.4, r_int = 0.7 for the grounded ones; one lists 7 objects (N=5 -> -2).
    terms = group_terms([0.3, 0.1, 0.25, 0.0, 0.21], [2, 1, 7, 0, 3], IRLConfig.preset("paper"))
    assert [t["grounded_flag"] for t in terms] == [1, 0, 1, 0, 0]  # 0.21 is not > 0.21
    assert [t["r_int"] for t in terms] == pytest.approx([0.7, 0, 0.7, 0, 0])
    assert [t["grounded"] for t in terms] == pytest.approx([0.7, 0, 0.7 - 1.0, 0, 0])
    official = group_terms([0.3, 0.1, 0.25, 0.0, 0.21], [2, 1, 9, 0, 3], IRLConfig.preset("official"))
    assert [t["grounded"] for t in official] == pytest.approx([0.8 * 0.7, 0, 0.8 * 0.7 - 0.025, 0, 0])


def test_presets_and_overrides():
    assert IRLConfig.preset("paper") == IRLConfig(lambda_o=0.21, H=1.1, N=5, int_weight=1.0, penalty_weight=0.5)
    assert IRLConfig.preset("official").N == 8 and IRLConfig.preset("official", N=3).N == 3
    with pytest.raises(ValueError, match="unknown IRL preset"):
        IRLConfig.preset("nope")
    assert settings_from_kwargs(preset="official", lambda_o=0.3).irl_config.lambda_o == 0.3


class FixedClip:
    """A stand-in similarity backend: objects named like the ROI get 0.5, others 0.0."""

    def max_similarity(self, texts, image_path):
        return max((0.5 if image_path.endswith(t + ".jpg") else 0.0) for t in texts)


def test_score_group_adds_the_rarity_bonus_once_the_group_is_known():
    responses = [
        "<think>x</think><answer>B</answer><object>ball</object>",  # right, grounded
        "<think>x</think><answer>C</answer><object>sky</object>",  # wrong, not grounded
        "<answer>B</answer>",  # right, bad format, no objects
        "<think>x</think><answer>B</answer><object>ball,a,b,c,d,e,f</object>",  # grounded, 7 objects
    ]
    cfg = RewardSettings()
    rows = score_group(responses, "<answer>B</answer>", "multiple choice", cfg, FixedClip(), "/roi/ball.jpg")
    # rate = 2/4 -> r_int = 0.6 for the grounded ones; penalty 0.5 * (5 - 7) = -1
    assert [r["score"] for r in rows] == pytest.approx([1 + 1 + 0.6, 0 + 1, 1 + 0, 1 + 1 + 0.6 - 1.0])
    assert [r["group_rate"] for r in rows] == [0.5] * 4
    # finish_group only uses group aggregates: any order gives the same per-rollout result
    singles = [score_response(r, "<answer>B</answer>", "multiple choice", cfg, FixedClip(), "/roi/ball.jpg")
               for r in responses]
    assert finish_group(singles[::-1], cfg)[::-1] == rows


def test_video_r1_extras():
    temporal = TemporalBonus()
    assert temporal([1, 1, 0], [0, 0]) == [0.3, 0.3, 0.0]
    assert temporal([0.2, 0.0], [1.0, 1.0]) == [0.0, 0.0]  # shuffled frames did as well: no bonus
    length = LengthBonus()
    assert length([1, 1, 0], [400, 100, 400]) == [0.2, 0.0, 0.0]
    assert length([1, 0, 0], [400, 400, 400]) == [0.0, 0.0, 0.0]  # only one accurate rollout
    cfg = RewardSettings(length_bonus=LengthBonus())
    rows = finish_group([score_response(r, "<answer>B</answer>", "multiple choice", cfg)
                         for r in ["<answer>B</answer>"] * 2], cfg, lengths=[330, 10])
    assert [r["length_bonus"] for r in rows] == [0.2, 0.0]


def test_verl_compute_score_signature_and_keys():
    with pytest.raises(ValueError, match="no CLIP model"):  # IRL would silently earn no grounded reward
        compute_score("ego3s", GOOD_IRL, "<answer>B</answer>", {"problem_type": "multiple choice"})
    with pytest.raises(ValueError, match=r"row 12 .*'multiple-choice'.*allowed: \['multiple choice'"):
        compute_score("ego3s", GOOD_IRL, "B", {"index": 12, "problem_type": "multiple-choice"}, irl=False)
    plain = compute_score("ego3s", "<think>a</think><answer>3</answer>", "<answer>3</answer>",
                          {"problem_type": "numerical"}, irl=False)
    assert plain == {"accuracy": 1.0, "format": 1.0, "score": 2.0}
    with pytest.raises(ValueError, match="problem_type"):
        compute_score("ego3s", GOOD_IRL, "B", {"index": 7})


def test_clip_similarity_is_max_cosine_of_l2_normalised_features(tiny_clip, ego3s_data):
    import torch
    from transformers import CLIPModel, CLIPProcessor

    from egoforge.rewards.clip import load_clip

    roi = str(ego3s_data / "roi" / "roi_0001.jpg")
    backend = load_clip(tiny_clip)
    objects = ["ball", "hand", "cutting board"]
    model, processor = CLIPModel.from_pretrained(tiny_clip), CLIPProcessor.from_pretrained(tiny_clip)
    from PIL import Image

    with torch.no_grad():
        t = model.get_text_features(**processor(text=objects, return_tensors="pt", padding=True)).pooler_output
        i = model.get_image_features(**processor(images=Image.open(roi).convert("RGB"),
                                                 return_tensors="pt")).pooler_output
    expected = (torch.nn.functional.normalize(t, dim=-1) @ torch.nn.functional.normalize(i, dim=-1).T).max()
    assert backend.max_similarity(objects, roi) == pytest.approx(float(expected), abs=1e-5)
    assert backend.max_similarity(objects, roi) == backend.max_similarity(objects, roi)  # cached path agrees
    assert backend.max_similarity([], roi) == 0.0
    with pytest.warns(UserWarning, match="cannot read interaction image"):
        assert backend.max_similarity(objects, str(ego3s_data / "missing.jpg")) == 0.0
    result = compute_score("ego3s", GOOD_IRL, "<answer>B</answer>",
                           {"problem_type": "multiple choice", "roi_path": roi}, clip_model=str(tiny_clip))
    assert result["clip_sim"] == pytest.approx(backend.max_similarity(["ball", "hand"], roi), abs=1e-6)
