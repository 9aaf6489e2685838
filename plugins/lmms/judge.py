"""An explicit, opt-in LLM judge for open-ended answers (OpenAI-compatible chat completions endpoint).

Never used unless a run asks for it (``egoforge evaluate suite --judge openai``): every metric egoforge reports
by default is computed locally. The judge follows each benchmark's protocol: for EgoTextVQA a yes/no verdict on
whether the prediction matches the reference meaningfully and an integer score from 0 to 5; for EgoThink a rating
of 0, 0.5 or 1 against the reference. A judge that cannot be reached raises instead of scoring 0, so a run with a
dead endpoint fails rather than reporting a wrong number.

Configuration (environment): ``OPENAI_API_KEY`` (required), ``EGOFORGE_JUDGE_URL`` (default ``OPENAI_API_URL``
or ``https://api.openai.com/v1/chat/completions``), ``EGOFORGE_JUDGE_MODEL`` (default ``gpt-4o-mini``, the model
EgoTextVQA's evaluation uses), ``EGOFORGE_JUDGE_RETRIES`` (default 3).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass

DEFAULT_URL = "https://api.openai.com/v1/chat/completions"
DEFAULT_MODEL = "gpt-4o-mini"

SYSTEM_PROMPT = (
    "You grade answers to questions about egocentric videos. Compare the predicted answer with the correct answer "
    "and decide whether they agree in meaning. Paraphrases and synonyms count as agreement; a vaguer answer does "
    "not (\"car wash\" does not match \"at the car wash on your right\"). When the correct answer is a specific "
    "string such as a number, a date, a phone number, a licence plate or a web address, the prediction must give "
    "that string, not a description of it."
)
USER_TEMPLATE = (
    "Question: {question}\nCorrect answer: {reference}\nPredicted answer: {prediction}\n\n"
    "Reply with a Python dictionary and nothing else: 'pred' is 'yes' if the prediction is correct and 'no' "
    "otherwise, 'score' is an integer from 0 to 5 where 5 is a perfect match. Example: {{'pred': 'no', 'score': 1}}"
)


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str
    retries: int = 3
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> JudgeConfig:
        key = os.environ.get("OPENAI_API_KEY", "")
        if not key:
            raise RuntimeError("the LLM judge needs OPENAI_API_KEY (and optionally EGOFORGE_JUDGE_URL, "
                               "EGOFORGE_JUDGE_MODEL); run without --judge for the local metrics")
        url = os.environ.get("EGOFORGE_JUDGE_URL") or os.environ.get("OPENAI_API_URL") or DEFAULT_URL
        return cls(url=url, model=os.environ.get("EGOFORGE_JUDGE_MODEL", DEFAULT_MODEL), api_key=key,
                   retries=max(1, int(os.environ.get("EGOFORGE_JUDGE_RETRIES", "3"))))


@dataclass(frozen=True)
class Verdict:
    correct: bool
    score: int
    raw: str


_PRED = re.compile(r"""['"]pred['"]\s*:\s*['"](yes|no)['"]""", re.IGNORECASE)
_SCORE = re.compile(r"""['"]score['"]\s*:\s*['"]?(\d+)""", re.IGNORECASE)


def parse_verdict(text: str) -> Verdict:
    """Read ``{'pred': 'yes'|'no', 'score': 0..5}`` from a judge reply (quotes of either kind)."""
    pred, score = _PRED.search(text or ""), _SCORE.search(text or "")
    if not pred or not score:
        raise ValueError(f"judge reply is not a {{'pred', 'score'}} dictionary: {text[:200]!r}")
    return Verdict(pred.group(1).lower() == "yes", max(0, min(5, int(score.group(1)))), text)


def chat(system: str, user: str, config: JudgeConfig | None = None) -> str:
    """One greedy chat completion; retries transient failures, then raises."""
    import requests

    config = config or JudgeConfig.from_env()
    payload = {"model": config.model, "temperature": 0,
               "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    headers = {"Authorization": f"Bearer {config.api_key}", "Content-Type": "application/json"}
    last_error = ""
    for attempt in range(config.retries):
        try:
            response = requests.post(config.url, headers=headers, data=json.dumps(payload), timeout=config.timeout_s)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]
        except (requests.RequestException, KeyError, IndexError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < config.retries:
                time.sleep(min(10.0, 2.0 ** attempt))
    raise RuntimeError(f"LLM judge at {config.url} failed {config.retries} times (last: {last_error})")


def judge_answer(question: str, reference: str, prediction: str, config: JudgeConfig | None = None) -> Verdict:
    """EgoTextVQA's judgement of one answer: correct or not, and a 0-5 score."""
    user = USER_TEMPLATE.format(question=question, reference=reference, prediction=prediction)
    return parse_verdict(chat(SYSTEM_PROMPT, user, config))


# EgoThink's judgement: a rating of 0, 0.5 or 1 against the reference answer, written as [[rating]].
RATING_SYSTEM = "You are a strict and impartial grader of answers to questions about first-person images."
RATING_TEMPLATE = (
    "Compare the assistant's answer with the reference answer. The assistant saw the image; you only see the "
    "text, so judge by closeness to the reference alone. An answer that is neither the same as nor close to the "
    "reference is wrong. Treat short and long answers alike, and do not reward answers that say nothing.\n\n"
    "Question: {question}\nReference answer: {reference}\nAssistant's answer: {prediction}\n\n"
    "Briefly explain, then give a rating of 0, 0.5 or 1 in exactly this form: [[rating]], e.g. [[0.5]]."
)
_RATING = re.compile(r"\[\[\s*(0(?:\.5|\.0)?|1(?:\.0)?)\s*\]\]")


def parse_rating(text: str) -> float:
    """The ``[[rating]]`` of a judge reply (0, 0.5 or 1)."""
    match = _RATING.search(text or "")
    if not match:
        raise ValueError(f"judge reply has no [[rating]] of 0, 0.5 or 1: {(text or '')[:200]!r}")
    return float(match.group(1))


def judge_rating(question: str, reference: str, prediction: str, config: JudgeConfig | None = None) -> float:
    """EgoThink's judgement of one answer: 0, 0.5 or 1."""
    user = RATING_TEMPLATE.format(question=question, reference=reference, prediction=prediction)
    return parse_rating(chat(RATING_SYSTEM, user, config))
