"""Differential test: egoforge's EgoCross answer parser in strict mode against an oracle of the official script.

The oracle restates ``parse_model_response`` of MyUniverse0726/EgoCross ``eval_os_closedset.py`` from its
behaviour: ``json.loads`` of the whole response and its ``prediction`` compared case-insensitively with the correct
letter; on any failure (not JSON, not an object, a prediction without ``.lower``) the first ``{...}`` block (lazy,
up to the first ``}``) is tried the same way; any failure there scores the answer wrong. egoforge's
``parse_response(..., allow_bare_letter=False)`` followed by ``is_correct`` must give the same verdict on every
response of a generated corpus of hard cases, and the same prediction wherever the official one is a string.
"""

from __future__ import annotations

import json
import random
import re

from egoforge.eval.egocross_protocol import is_correct, parse_response

LETTERS = "ABCD"


def oracle(response, truth):
    """(prediction, success) as the official script records them."""
    prediction = ""
    try:
        parsed = json.loads(response)
        prediction = parsed.get("prediction", "")
        return prediction, prediction.lower() == truth.lower()
    except Exception:
        pass
    try:
        block = re.search(r"\{[\s\S]*?\}", response)
        if block:
            parsed = json.loads(block.group(0))
            prediction = parsed.get("prediction", "")
            return prediction, prediction.lower() == truth.lower()
    except Exception:
        pass
    return prediction, False


def _value(rng, truth):
    other = rng.choice(LETTERS)
    return rng.choice([
        json.dumps(truth), json.dumps(truth.lower()), json.dumps(other), json.dumps(f" {truth}"),
        json.dumps(f"{truth}."), json.dumps(f"({truth})"), json.dumps(f"{truth}: red cup"), json.dumps(""),
        "1", "null", "true", "NaN", "[\"B\"]", "{\"x\": \"B\"}", json.dumps("\u00c0"), json.dumps(truth + truth),
    ])


def _reason(rng):
    return json.dumps(rng.choice(["because", "the {tool} is left", "", "uses } and {", "caf\u00e9 \u4e2d\u6587",
                                  "line\nbreak", "x" * 50]))


def response_corpus(n, seed=0):
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        truth = rng.choice(LETTERS)
        value, reason = _value(rng, truth), _reason(rng)
        body = rng.choice([
            f'{{"prediction": {value}, "reason": {reason}}}',
            f'{{"reason": {reason}, "prediction": {value}}}',
            f'{{"prediction": {value}}}',
            f'{{"prediction": {value}, "prediction": {json.dumps(truth)}}}',
            f'{{"answer": {value}}}',
            f"{{'prediction': '{truth}'}}",
            f'{{"prediction": {value}, "meta": {{"k": 1}}}}',
        ])
        ws = rng.choice(["", " ", "\n", "\t", "\u00a0", "\x0b", "\r\n"])
        response = rng.choice([
            body,
            f"{ws}{body}{ws}",
            f"Sure! Here is my answer:\n{body}\nHope it helps.",
            f"```json\n{body}\n```",
            f"<think>\n\n</think>\n\n{body}",
            f"<think>the {{cup}} is red</think>{body}",
            f"{body}\n{{\"prediction\": \"{rng.choice(LETTERS)}\"}}",
            f"[{body}]",
            json.dumps(body),
            truth, f"({truth})", f"Answer: {truth}", truth.lower(), "",
            "{broken json", "{" * rng.randint(1, 3) + body,
            "[" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, '{"prediction":' + "[" * 3000,
            body.replace("}", ""), body + "}",
        ])
        rows.append((response, truth))
    return rows


def test_strict_parser_matches_the_official_script():
    rows = response_corpus(3000)
    disagreements = []
    verdicts = set()
    for response, truth in rows:
        official_prediction, official_success = oracle(response, truth)
        parsed = parse_response(response, allow_bare_letter=False)
        ours = is_correct(parsed.prediction, truth)
        verdicts.add(official_success)
        same_prediction = not isinstance(official_prediction, str) or parsed.prediction == official_prediction
        if ours != official_success or not same_prediction:
            disagreements.append((response[:200], truth, parsed, official_prediction, official_success))
    assert verdicts == {True, False}
    assert not disagreements, f"{len(disagreements)}/{len(rows)} disagree, e.g. {disagreements[:3]}"


def test_lenient_parser_differs_only_where_it_says():
    """The default (lenient) parser reads bare letters and drops <think> blocks; elsewhere it is the official one."""
    assert parse_response("B").prediction == "B" and oracle("B", "B") == ("", False)
    tricky = '<think>maybe {"prediction": "A"}</think>{"prediction": "B"}'
    assert parse_response(tricky).prediction == "B"
    assert parse_response(tricky, allow_bare_letter=False).prediction == "A" == oracle(tricky, "A")[0]
