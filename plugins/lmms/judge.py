"""An explicit, opt-in LLM judge for open-ended answers (any OpenAI-compatible chat completions endpoint).

Never used unless a run asks for it (``egoforge evaluate suite --judge-url URL`` or ``--judge openai``): every
metric egoforge reports by default is computed locally. The judge follows each benchmark's protocol: for EgoTextVQA
a yes/no verdict on whether the prediction matches the reference meaningfully and an integer score from 0 to 5; for
EgoThink lmms-eval's own EgoThink judge (its prompt and ``[[rating]]`` reading, 0, 0.5 or 1), sent through this
client. A judge that cannot be reached, or whose reply has no verdict, raises instead of scoring 0 (or lmms-eval's
-1), so a run with a dead or confused judge fails rather than reporting a wrong number.

Configuration (environment; the suite sets it for its lmms-eval process): ``EGOFORGE_JUDGE_URL`` (default
``OPENAI_API_URL`` or ``https://api.openai.com/v1/chat/completions``; a base URL such as ``http://host:8000/v1``
gets ``/chat/completions`` appended), ``OPENAI_API_KEY`` (required for api.openai.com only; a local ``vllm serve``
needs none), ``EGOFORGE_JUDGE_MODEL`` (default ``gpt-4o-mini``, the model EgoTextVQA's evaluation uses),
``EGOFORGE_JUDGE_RETRIES`` (default 3), ``EGOFORGE_JUDGE_EXTRA_BODY`` (a JSON object merged into every request,
for server-specific options).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from egoforge.vlm.openai_client import CHAT_PATH, ChatClient, ChatError, chat_url

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


def needs_api_key(url: str) -> bool:
    """OpenAI's own API needs a key; a self-hosted OpenAI-compatible server (vllm serve) usually does not."""
    from urllib.parse import urlparse

    return (urlparse(url).hostname or "").endswith("api.openai.com")


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str = ""
    retries: int = 3
    timeout_s: float = 60.0
    extra_body: dict | None = None

    @classmethod
    def from_env(cls) -> JudgeConfig:
        url = chat_url(os.environ.get("EGOFORGE_JUDGE_URL") or os.environ.get("OPENAI_API_URL") or DEFAULT_URL)
        key = os.environ.get("OPENAI_API_KEY", "")
        if not key and needs_api_key(url):
            raise RuntimeError(f"the LLM judge at {url} needs OPENAI_API_KEY (or point EGOFORGE_JUDGE_URL / "
                               "--judge-url at another OpenAI-compatible server); run without --judge for the "
                               "local metrics")
        extra = os.environ.get("EGOFORGE_JUDGE_EXTRA_BODY", "")
        try:
            extra_body = json.loads(extra) if extra else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"EGOFORGE_JUDGE_EXTRA_BODY is not JSON: {exc}") from None
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ValueError("EGOFORGE_JUDGE_EXTRA_BODY must be a JSON object")
        return cls(url=url, model=os.environ.get("EGOFORGE_JUDGE_MODEL", DEFAULT_MODEL), api_key=key,
                   retries=max(1, int(os.environ.get("EGOFORGE_JUDGE_RETRIES", "3"))), extra_body=extra_body)

    def environment(self) -> dict[str, str]:
        """The variables that give another process (lmms-eval's) this configuration through :meth:`from_env`."""
        env = {"EGOFORGE_JUDGE_URL": self.url, "EGOFORGE_JUDGE_MODEL": self.model,
               "EGOFORGE_JUDGE_RETRIES": str(self.retries)}
        if self.api_key:
            env["OPENAI_API_KEY"] = self.api_key
        if self.extra_body:
            env["EGOFORGE_JUDGE_EXTRA_BODY"] = json.dumps(self.extra_body)
        return env


def served_model(url: str, api_key: str = "", timeout_s: float = 30.0) -> str:
    """The one model an OpenAI-compatible server serves (``GET <base>/models``); an error if it serves several."""
    import requests

    base = chat_url(url)[: -len(CHAT_PATH)]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = requests.get(f"{base}/models", headers=headers, timeout=timeout_s)
        response.raise_for_status()
        models = [m["id"] for m in response.json()["data"]]
    except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"cannot list the judge's models at {base}/models ({exc}); pass --judge-model") from None
    if len(models) != 1:
        raise RuntimeError(f"the judge server at {base} serves {len(models)} models ({', '.join(models)}): "
                           "pass --judge-model")
    return models[0]


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
    """One greedy chat completion of a system + user prompt; retries transient failures, then raises."""
    return chat_messages([{"role": "system", "content": system}, {"role": "user", "content": user}], config)


def chat_messages(messages: list[dict], config: JudgeConfig | None = None, max_tokens: int | None = None,
                  temperature: float = 0) -> str:
    """One chat completion of ``messages`` (greedy by default); retries transient failures, then raises."""
    config = config or JudgeConfig.from_env()
    client = ChatClient(config.url, config.model, api_key=config.api_key or None, timeout=config.timeout_s,
                        retries=config.retries, backoff=1.0, extra_body=dict(config.extra_body or {}))
    decoding = {"temperature": temperature, **({"max_tokens": max_tokens} if max_tokens else {})}
    try:
        return client.complete(messages, **decoding)
    except ChatError as exc:
        raise RuntimeError(f"LLM judge at {config.url} failed {exc.tries} times (last: {exc.last})") from None


def judge_answer(question: str, reference: str, prediction: str, config: JudgeConfig | None = None) -> Verdict:
    """EgoTextVQA's judgement of one answer: correct or not, and a 0-5 score."""
    user = USER_TEMPLATE.format(question=question, reference=reference, prediction=prediction)
    return parse_verdict(chat(SYSTEM_PROMPT, user, config))


# EgoThink's judgement: a rating of 0, 0.5 or 1 against the reference answer, written as [[rating]].
_RATING = re.compile(r"\[\[\s*(0(?:\.5|\.0)?|1(?:\.0)?)\s*\]\]")


def parse_rating(text: str) -> float:
    """The ``[[rating]]`` of a judge reply (0, 0.5 or 1)."""
    match = _RATING.search(text or "")
    if not match:
        raise ValueError(f"judge reply has no [[rating]] of 0, 0.5 or 1: {(text or '')[:200]!r}")
    return float(match.group(1))


def judge_rating(question: str, reference: str, prediction: str, config: JudgeConfig | None = None) -> float:
    """EgoThink's judgement of one answer (0, 0.5 or 1) by lmms-eval's own EgoThink judge, through this client.

    lmms-eval's ``judge_single`` builds the benchmark's prompt and reads the rating; only its HTTP call (hard-wired
    to OpenAI's URL and headers at import time) is replaced by :func:`chat_messages`. Its reference answer is
    lower-cased with full stops removed, as in ``egothink_process_results``. A reply without a rating of 0, 0.5 or
    1 raises: lmms-eval would score it -1 and pull the mean down silently.
    """
    from lmms_eval.tasks.egothink import utils as stock

    config = config or JudgeConfig.from_env()
    replies: list[str] = []

    def completion(model, messages, temperature, max_tokens):
        replies.append(chat_messages(messages, config, max_tokens=max_tokens, temperature=temperature))
        return replies[-1], config.model

    original = stock.chat_compeletion_openai
    stock.chat_compeletion_openai = completion
    try:
        rating, _, _ = stock.judge_single(question, prediction, reference.lower().strip().replace(".", ""))
    finally:
        stock.chat_compeletion_openai = original
    if rating not in (0, 0.5, 1):
        raise ValueError(f"EgoThink judge reply has no rating of 0, 0.5 or 1: {(replies or [''])[-1][:200]!r}")
    return float(rating)
