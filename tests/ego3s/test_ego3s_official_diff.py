"""Differential tests: egoforge's Ego3S rewards under ``preset=official`` against an oracle of the official code.

The oracle below is written from the behaviour of the official Ego3S code (``src/ego3s/src/grpo_roi.py``:
``accuracy_reward``, ``format_reward``, ``grounded_reward``; ``src/scripts/generate_responses.py`` plus
``select/csm_selection.py``: ``mean_total_reward``), in the plainest form that behaviour allows: regular
expressions, full dynamic-programming tables, ``float()`` and a ``try/except`` that scores any failure 0. Its ROUGE
is ``rouge_score``'s ``RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)`` behaviour (lower-case,
``[^a-z0-9]+`` -> space, NLTK ``PorterStemmer()`` on tokens longer than 3 characters, n-gram counts, LCS table).

A seeded corpus of >= 1,000 responses per problem type, full of hard cases ("(A)", "a", "A. red", exact 0 for
regression, NaN/inf, unicode whitespace and digits, repeated or unclosed tags, inflected words for the stemmer),
is scored by both; every term must agree exactly (``==`` on floats, NaN never expected). Without nltk (the
verl environment) the free-form cases are skipped: egoforge's free-form reward then raises instead of scoring.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from egoforge.ego3s.csm import mean_total_reward, response_rewards
from egoforge.rewards.accuracy import AnswerRules
from egoforge.rewards.answers import IRL_TAGS, format_matches
from egoforge.rewards.ego3s import settings_from_kwargs
from egoforge.rewards.scoring import score_response
from egoforge.rewards.trl import Ego3STRLRewards

try:  # the free-form reward (and its oracle) stem with nltk; environments without it skip that type only
    from nltk.stem.porter import PorterStemmer
except ImportError:
    PorterStemmer = None

PER_TYPE = 1200

# ----------------------------------------------------------------------------------------------------------------
# Oracle: the official behaviour, re-stated.
# ----------------------------------------------------------------------------------------------------------------

_ANSWER_SECTION = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_STEMMER = PorterStemmer() if PorterStemmer is not None else None


def oracle_answer(text):
    found = _ANSWER_SECTION.search(text)
    return found.group(1).strip() if found else ""


def oracle_float(text):
    try:
        return float(text.replace(",", ""))
    except Exception:
        return None


def oracle_wer(reference, hypothesis):
    ref, hyp = reference.split(), hypothesis.split()
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(len(ref) + 1):
        table[i][0] = i
    for j in range(len(hyp) + 1):
        table[0][j] = j
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            if ref[i - 1] == hyp[j - 1]:
                table[i][j] = table[i - 1][j - 1]
            else:
                table[i][j] = 1 + min(table[i - 1][j], table[i][j - 1], table[i - 1][j - 1])
    return table[len(ref)][len(hyp)] / max(1, len(ref))


def oracle_rouge_tokens(text):
    pieces = re.split(r"\s+", re.sub(r"[^a-z0-9]+", " ", text.lower()))
    pieces = [_STEMMER.stem(p) if len(p) > 3 else p for p in pieces]
    return [p for p in pieces if re.match(r"^[a-z0-9]+$", p)]


def oracle_f(precision, recall):
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def oracle_rouge_n(target, prediction, n):
    grams_t = Counter(tuple(target[i:i + n]) for i in range(len(target) - n + 1))
    grams_p = Counter(tuple(prediction[i:i + n]) for i in range(len(prediction) - n + 1))
    overlap = sum(min(count, grams_p[g]) for g, count in grams_t.items())
    return oracle_f(overlap / max(sum(grams_p.values()), 1), overlap / max(sum(grams_t.values()), 1))


def oracle_rouge_l(target, prediction):
    if not target or not prediction:
        return 0
    table = [[0] * (len(prediction) + 1) for _ in range(len(target) + 1)]
    for i in range(1, len(target) + 1):
        for j in range(1, len(prediction) + 1):
            if target[i - 1] == prediction[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    lcs = table[-1][-1]
    return oracle_f(lcs / len(prediction), lcs / len(target))


def oracle_rouge_mean(reference, hypothesis):
    t, p = oracle_rouge_tokens(reference), oracle_rouge_tokens(hypothesis)
    return (oracle_rouge_n(t, p, 1) + oracle_rouge_n(t, p, 2) + oracle_rouge_l(t, p)) / 3


def oracle_accuracy(content, solution, question_type):
    try:
        out, gt = oracle_answer(content), oracle_answer(solution)
        if question_type == "multiple choice":
            return 1.0 if out.strip() == gt.strip() else 0.0
        if question_type == "numerical":
            if (("." in gt) or ("," in gt)) != (("." in out) or ("," in out)):
                return 0.0
            g, o = oracle_float(gt), oracle_float(out)
            if g is None or o is None:
                return 0.0
            return 1.0 if round(g, 2) == round(o, 2) else 0.0
        if question_type == "OCR":
            return max(0.0, min(1.0, 1 - oracle_wer(gt, out)))
        if question_type == "free-form":
            return max(0.0, min(1.0, oracle_rouge_mean(gt, out)))
        if question_type == "regression":
            g, o = oracle_float(gt), oracle_float(out)
            ratio = (abs(o - g) + 1e-9) / (abs(g) + 1e-9)  # None raises TypeError -> 0, as in the official code
            return 1 - min(1.0, max(0.0, ratio))
        return 0.0
    except Exception:
        return 0.0


def oracle_format(content, tags):
    pattern = r"\s*".join(f"<{t}>(.*?)</{t}>" for t in tags)
    return 1.0 if re.fullmatch(pattern, content, re.DOTALL) else 0.0


def oracle_objects(text):
    found = re.search(r"<object>\s*(.*?)\s*</object>", text, re.DOTALL)
    return [o.strip() for o in found.group(1).split(",") if o.strip()] if found else []


def oracle_grounded(contents, similarity_of, alpha=0.8, beta=0.025, threshold=0.21, ceiling=1.1, allowed=8):
    flags, penalties = [], []
    for content in contents:
        objects = oracle_objects(content)
        score = similarity_of(objects) if objects else 0.0
        flags.append(1 if score > threshold else 0)
        penalties.append(min(0, allowed - len(objects)))
    rate = sum(flags) / max(1, len(flags))
    return [alpha * (max(ceiling - rate, 0) * flag) + beta * penalty for flag, penalty in zip(flags, penalties)]


def oracle_mean_total_reward(contents, solution, question_type):
    formats = [oracle_format(c, ("think", "answer")) for c in contents]
    accuracies = [oracle_accuracy(c, solution, question_type) for c in contents]
    count = len(formats) + len(accuracies)
    return (sum(formats) + sum(accuracies)) / count if count else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------------------------

SPACES = [" ", "\n", "\t", "  ", "\u00a0", "\u2003", "\r\n", ""]
LETTERS = list("ABCDE")
MC_FORMS = ["{L}", "({L})", "{l}", "{L}.", "{L}. red cup", " {L} ", "{L})", "[{L}]", "Option {L}", "{L} or {M}",
            "{L}\n", "\uff21", "{M}", "", "answer: {L}", "{L}:", "{l}.", "(({L}))", "{L}{M}"]
NUMBERS = ["0", "0.0", "-0", "3", "3.0", "3.00", "3.004", "3.005", "3.006", "1,234", "1234", "1,234.5", "12.5",
           "-2", "+2", "1e3", "1E-12", "1e308", "-1e308", "nan", "NaN", "inf", "-inf", "Infinity", "1_000",
           "\u0663", "\u0661\u0662", ".5", "5.", "0x10", "3 apples", "three", "", ",", "1,2,3", " 7 ", "2.675",
           "0.005", "-0.004", "1" * 400, "9" * 30 + ".5", "0.1", "0.30000000000000004", "100", "99.999"]
WORDS = ["the", "camera", "wearer", "holds", "holding", "held", "a", "red", "cups", "cup", "dying", "die", "news",
         "new", "running", "runs", "ran", "knives", "knife", "agreed", "generously", "skies", "sky", "proceed",
         "outing", "innings", "Caf\u00e9", "na\u00efve", "\u0130stanbul", "stra\u00dfe", "IS", "It's", "2", "3rd",
         "x-ray", "e-mail", "C++", "a.b.c", "U.S.", "\u4e2d\u6587"]


def phrase(rng, low=0, high=12):
    separator = rng.choice([" ", " ", " ", "  ", "\n", ", ", "! "])
    return separator.join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def wrap(rng, answer, objects=None):
    """A response around ``answer``: mostly well-formed IRL responses, plus every kind of broken one."""
    sp = lambda: rng.choice(SPACES)  # noqa: E731
    think = phrase(rng, 0, 6)
    obj = objects if objects is not None else ", ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 11)))
    kind = rng.randrange(14)
    if kind <= 5:
        return f"<think>{think}</think>{sp()}<answer>{sp()}{answer}{sp()}</answer>{sp()}<object>{obj}</object>"
    return [
        f"<answer>{answer}</answer>",
        f"<think>{think}</think><answer>{answer}</answer>",
        f"<think>{think}</think><answer>{answer}</answer><object>{obj}</object>{sp()}trailing",
        f"{sp()}<think>{think}</think><answer>{answer}</answer><object>{obj}</object>",
        f"<think>{think}</think><answer>{answer}",
        f"<think>{think}<answer>x</answer></think><answer>{answer}</answer><answer>Z</answer><object>{obj}</object>",
        f"<think>{think}</think>\n<answer>\n{answer}\n</answer>\n<object>\n{obj}\n</object>",
        f"<think></think><answer>{answer}</answer><object></object><object>{obj}</object>",
    ][kind - 6]


def corpus(problem_type, rng):
    """(response, solution) pairs for one problem type."""
    rows = []
    while len(rows) < PER_TYPE:
        if problem_type == "multiple choice":
            truth = rng.choice(LETTERS)
            other = rng.choice(LETTERS)
            answer = rng.choice(MC_FORMS).format(L=truth, l=truth.lower(), M=other)
        elif problem_type in ("numerical", "regression"):
            truth, answer = rng.choice(NUMBERS), rng.choice(NUMBERS)
            if rng.random() < 0.3:
                answer = truth  # exact answers, exact 0 included
        elif problem_type == "OCR":
            truth = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))
            words = truth.split()
            edits = rng.randint(0, 3)
            for _ in range(edits):
                if words and rng.random() < 0.5:
                    words.pop(rng.randrange(len(words)))
                else:
                    words.insert(rng.randint(0, len(words)), rng.choice(WORDS))
            answer = rng.choice(SPACES[:4]).join(words) if rng.random() < 0.9 else ""
        else:  # free-form
            truth = phrase(rng, 1, 14)
            answer = phrase(rng, 0, 14) if rng.random() < 0.7 else truth
        solution = f"<answer>{truth}</answer>" if rng.random() < 0.95 else f"<answer> {truth} </answer>"
        rows.append((wrap(rng, answer), solution))
    return rows


ALL_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")
PROBLEM_TYPES = tuple(t for t in ALL_TYPES if t != "free-form" or _STEMMER is not None)
TYPE_PARAMS = [pytest.param(t, marks=pytest.mark.skipif(t not in PROBLEM_TYPES, reason="needs nltk"))
               for t in ALL_TYPES]
OFFICIAL = settings_from_kwargs(preset="official")


def test_official_preset_is_the_official_code():
    """Constants and switches of preset official, as grpo_roi.py and the run scripts set them."""
    cfg = OFFICIAL.irl_config
    assert (cfg.lambda_o, cfg.H, cfg.N, cfg.int_weight, cfg.penalty_weight) == (0.21, 1.1, 8, 0.8, 0.025)
    assert OFFICIAL.answer_rules == AnswerRules(lenient_choice=False, guarded_regression=False)
    assert OFFICIAL.length_bonus is not None and OFFICIAL.temporal_bonus is not None  # --len_control/--temporal
    assert OFFICIAL.max_clip_objects is None and OFFICIAL.irl
    paper = settings_from_kwargs(preset="paper")
    assert paper.answer_rules == OFFICIAL.answer_rules  # lenient parsing is off in both presets
    assert paper.length_bonus is None and paper.temporal_bonus is None


@pytest.mark.parametrize("problem_type", TYPE_PARAMS)
def test_accuracy_and_format_match_the_official_code(problem_type):
    rng = random.Random(f"ego3s-{problem_type}")
    rows = corpus(problem_type, rng)
    assert len(rows) >= 1000
    disagreements = []
    for response, solution in rows:
        ours = score_response(response, solution, problem_type, OFFICIAL)
        expected_acc = oracle_accuracy(response, solution, problem_type)
        expected_fmt = oracle_format(response, IRL_TAGS)
        if ours["accuracy"] != expected_acc or ours["format"] != expected_fmt:
            disagreements.append((response, solution, ours["accuracy"], expected_acc, ours["format"], expected_fmt))
    assert not disagreements, f"{len(disagreements)}/{len(rows)} disagree, e.g. {disagreements[:3]}"


SOUP = list("AaBb().: ,\n\t0123456789.e-+_naifINFx<>/") + [
    "<answer>", "</answer>", "<think>", "</think>", "<object>", "</object>", "</answer", "\u00a0", "\u0663", "\u00e9",
    "\u0130", "\u00df", "running", "dogs"]


@pytest.mark.parametrize("problem_type", TYPE_PARAMS)
def test_random_tag_soup_matches_the_official_code(problem_type):
    """Random strings over tags, digits, number words and unicode: responses and (tagged) solutions."""
    rng = random.Random(f"soup-{problem_type}")
    disagreements = []
    for _ in range(1000):
        response = "".join(rng.choice(SOUP) for _ in range(rng.randint(0, 30)))
        solution = "<answer>" + "".join(rng.choice(SOUP) for _ in range(rng.randint(0, 12))) + "</answer>"
        ours = score_response(response, solution, problem_type, OFFICIAL)
        if (ours["accuracy"], ours["format"]) != (oracle_accuracy(response, solution, problem_type),
                                                  oracle_format(response, IRL_TAGS)):
            disagreements.append((response, solution))
    assert not disagreements, disagreements[:3]


def test_corpus_holds_the_hard_cases():
    """The corpus exercises the cases where lenient parsing and the official code differ."""
    loose_settings = settings_from_kwargs(preset="official", lenient_choice=True, guarded_regression=True)
    differ = Counter()
    for problem_type in ("multiple choice", "regression"):
        for response, solution in corpus(problem_type, random.Random(f"ego3s-{problem_type}")):
            ours = score_response(response, solution, problem_type, OFFICIAL)["accuracy"]
            loose = score_response(response, solution, problem_type, loose_settings)["accuracy"]
            differ[problem_type] += ours != loose
    assert differ["multiple choice"] >= 50 and differ["regression"] >= 5, differ


def object_list(rng):
    """An ``<object>`` body: short and long lists (over N = 8 and over 32), empty entries, odd whitespace."""
    count = rng.choice([0, 1, 3, 8, 9, 12, 33, 40])
    separator = rng.choice([",", ", ", " ,", ",\n", ", ,", ",\u00a0"])
    return rng.choice(["", " ", "\n"]) + separator.join(rng.choice(WORDS) for _ in range(count))


class HashClip:
    """A deterministic stand-in for CLIP: the similarity of an object list is a function of its texts."""

    def __init__(self):
        self.calls = []

    @staticmethod
    def similarity(objects):
        return max((random.Random(o).random() * 0.42) for o in objects)

    def max_similarity(self, texts, image_path):
        self.calls.append(list(texts))
        return self.similarity(texts)


def test_trl_reward_functions_match_the_official_reward_functions():
    """The TRL adapter's accuracy, format and grounded functions, batch by batch, equal the official ones."""
    clip = HashClip()
    settings = settings_from_kwargs(preset="official", length_control=False, temporal=False)
    funcs = Ego3STRLRewards(settings, clip, num_generations=5).functions()
    assert [f.__name__ for f in funcs] == ["ego3s_accuracy", "ego3s_format", "ego3s_grounded"]
    rng = random.Random("trl")
    disagreements = 0
    for problem_type in PROBLEM_TYPES:
        rows = corpus(problem_type, rng)[:500]
        for start in range(0, len(rows), 5):
            group = rows[start:start + 5]
            contents = [wrap(rng, oracle_answer(r), objects=object_list(rng)) if rng.random() < 0.5 else r
                        for r, _ in group]
            solution = group[0][1]
            completions = [[{"role": "assistant", "content": c}] for c in contents]
            kwargs = {"solution": [solution] * 5, "problem_type": [problem_type] * 5, "roi_path": ["roi.png"] * 5}
            got = [f(completions, **kwargs) for f in funcs]
            want = [[oracle_accuracy(c, solution, problem_type) for c in contents],
                    [oracle_format(c, IRL_TAGS) for c in contents],
                    oracle_grounded(contents, HashClip.similarity)]
            disagreements += got != want
    assert disagreements == 0


class BatchedHashClip(HashClip):
    """HashClip with the batched API: counts the batched calls and the requests in each."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def max_similarities(self, requests):
        self.batches.append(list(requests))
        return [self.similarity(texts) for texts, _ in requests]


def test_trl_rewards_score_clip_in_one_batched_call_per_batch():
    """Two groups of 5 completions: one batched CLIP call holding the same requests the one-at-a-time backend
    gets, each once, and the same rewards."""
    settings = settings_from_kwargs(preset="official", length_control=False, temporal=False)
    objects = ["cup, knife", "cup, knife", "pan", "", "board, onion, knife"]
    contents = [f"<think>t</think><object>{o}</object><answer>A</answer>" for o in objects] * 2
    completions = [[{"role": "assistant", "content": c}] for c in contents]
    kwargs = {"solution": ["<answer>A</answer>"] * 10, "problem_type": ["multiple choice"] * 10,
              "roi_path": ["roi_a.png"] * 5 + ["roi_b.png"] * 5, "problem_id": [0] * 5 + [1] * 5}
    batched, single = BatchedHashClip(), HashClip()
    got = [f(completions, **kwargs) for f in Ego3STRLRewards(settings, batched, num_generations=5).functions()]
    want = [f(completions, **kwargs) for f in Ego3STRLRewards(settings, single, num_generations=5).functions()]
    assert got == want
    assert len(batched.batches) == 1 and batched.calls == []
    requests = batched.batches[0]
    assert len(requests) == len(set(requests)) == 6  # 3 distinct object lists x 2 interaction images
    assert sorted(list(texts) for texts, _ in requests) == sorted(single.calls)


def test_clip_sees_every_listed_object_under_the_official_preset():
    """The official code embeds all listed objects; egoforge caps only when ``max_clip_objects`` is set."""
    clip = HashClip()
    response = "<think>t</think><answer>A</answer><object>" + ",".join(f"o{i}" for i in range(40)) + "</object>"
    score_response(response, "<answer>A</answer>", "multiple choice", OFFICIAL, clip, "roi.png")
    assert len(clip.calls[-1]) == 40
    capped = settings_from_kwargs(preset="official", max_clip_objects=32)
    score_response(response, "<answer>A</answer>", "multiple choice", capped, clip, "roi.png")
    assert len(clip.calls[-1]) == 32


@pytest.mark.parametrize("problem_type", TYPE_PARAMS)
def test_csm_mean_total_reward_matches_the_official_selection(problem_type):
    """Per-sample CSM score: official format (think/answer) and accuracy, then (sum f + sum a) / (2 G)."""
    rng = random.Random(f"csm-{problem_type}")
    rows = corpus(problem_type, rng)
    disagreements = []
    for start in range(0, len(rows), 8):
        group = rows[start:start + 8]
        solution = group[0][1]
        responses = [r for r, _ in group]
        if rng.random() < 0.5:  # plain R1 responses, as the selection prompts for
            responses = [re.sub(r"<object>.*?</object>", "", r, flags=re.DOTALL) for r in responses]
        ours = mean_total_reward(*response_rewards(responses, solution, problem_type))
        expected = oracle_mean_total_reward(responses, solution, problem_type)
        if ours != expected:
            disagreements.append((responses, solution, ours, expected))
    assert len(rows) >= 1000
    assert not disagreements, f"{len(disagreements)} samples disagree, e.g. {disagreements[:1]}"


def test_oracle_is_not_trivial():
    """Guard against a vacuous diff: the oracle's scores vary over the corpus for every type."""
    for problem_type in PROBLEM_TYPES:
        rows = corpus(problem_type, random.Random(f"ego3s-{problem_type}"))
        values = {oracle_accuracy(r, s, problem_type) for r, s in rows}
        assert len(values) >= 2 and not any(math.isnan(v) for v in values), (problem_type, values)
    assert format_matches("<think>a</think><answer>b</answer><object>c</object>", IRL_TAGS)
