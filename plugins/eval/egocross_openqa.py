"""EgoCross OpenQA scoring: the official LLM judge (``eval_gpt_openset.py``) through any OpenAI-compatible endpoint.

The official scoring of one free-text prediction, step by step:

1. a quick match without the judge: an integer ``answer_text`` equal to the prediction or contained in its text,
   or a string ``answer_text`` contained (case-insensitively) in the prediction, is marked 5;
2. otherwise the judge (temperature 0.01, top_p 0.9, 512 tokens) reads the question, ``answer_text``,
   ``detailed_answer`` and the prediction and answers a JSON object whose ``mark`` is 0-5; the first ``{...}``
   block of its reply is parsed;
3. the prediction counts as correct when the mark is >= 4.

Where the official script scores a failed judge call as 0, egoforge raises :class:`JudgeError` (after retries):
a judge outage must never read as a wrong answer. Every judge reply is cached (``judgments.jsonl``, keyed by judge
model, item and prompt), so a stopped run resumes without asking again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from egoforge.data.egocross import DOMAINS, domain_of
from egoforge.data.jsonio import DataFormatError, read_json
from egoforge.vlm.openai_client import ChatClient, ChatError

CORRECT_MARK = 4  # eval_gpt_openset.py: success = score >= 4
JUDGE_SETTINGS = {"temperature": 0.01, "top_p": 0.9, "max_tokens": 512}
_JSON_BLOCK = re.compile(r"\{[\s\S]*?\}")


class JudgeError(RuntimeError):
    """The judge could not be asked, or its reply holds no usable mark."""


# --- answers and prompts ------------------------------------------------------------------------------------------

def load_open_answers(path: str | os.PathLike) -> dict[str, dict]:
    """``{id: {answer_text, detailed_answer}}`` (also under ``question_id``) from the answers json."""
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataFormatError(path, None, None, f"expected a JSON list of items, got {type(rows).__name__}")
    answers: dict[str, dict] = {}
    for row, item in enumerate(rows):
        if not isinstance(item, dict):
            raise DataFormatError(path, row, None, "item is not an object")
        for name in ("answer_text", "detailed_answer"):
            if item.get(name) is None:
                raise DataFormatError(path, row, name, "missing (OpenQA needs answer_text and detailed_answer)")
        keys = [str(item[k]) for k in ("id", "question_id") if item.get(k) is not None]
        if not keys:
            raise DataFormatError(path, row, "id", "an answer needs 'id' or 'question_id'")
        for key in keys:
            answers[key] = {"answer_text": item["answer_text"], "detailed_answer": item["detailed_answer"]}
    return answers


def judge_prompt(question: str, answer: object, detailed_answer: object, prediction: object) -> str:
    """The official judge prompt with the reference's detailed answer (indentation kept as the script sends it)."""
    return (
        "\n        You are an intelligent chatbot designed for evaluating the correctness of AI assistant predictions "
        "for question-answer pairs. Your task is to compare the predicted answer with the ground-truth and determine "
        "if the predicted answer is correct or not. Here's how you can accomplish the task: \n"
        "        ##INSTRUCTIONS: \n"
        "        - Focus on the factual accuracy and semantic equivalence of the predicted answer with the "
        "ground-truth. \n"
        "        - Consider uncertain predictions, such as 'it is impossible to answer the question from the video', "
        "as incorrect, unless the ground truth answer also says that.\n"
        "        Please evaluate the following video-based question-answer pair: \n"
        f"        Question: {question} \n"
        f"        Correct ground truth: {answer} \n"
        f"        Detailed ground truth: {detailed_answer}\n"
        f"        Predicted Answer: {prediction} \n"
        "        Provide your evaluation as a correct/incorrect prediction along with the score where the score is an "
        "integer value between 0 (fully wrong) and 5 (fully correct). The middle score provides the percentage of "
        "correctness. Please generate the response in the form of a json object with the following fields:\n"
        "        ```\n"
        "        {\n"
        '            "mark": 4,  # The score of the prediction\n'
        '            "reason": "",  # The reason for the score\n'
        "        }\n"
        "        ```\n    "
    )


def quick_mark(answer: object, prediction: str) -> int | None:
    """5 when the official pre-judge match accepts ``prediction``, else None (the judge decides)."""
    if isinstance(answer, int):  # bool included, as in the script (isinstance(True, int))
        return 5 if str(answer) in prediction else None
    if isinstance(answer, str):
        return 5 if answer.lower() in prediction.lower() else None
    return None


def parse_mark(reply: str) -> int:
    """The ``mark`` of a judge reply (first ``{...}`` block), an integer 0-5; JudgeError otherwise."""
    match = _JSON_BLOCK.search(reply or "")
    if not match:
        raise JudgeError(f"judge reply holds no JSON object: {reply[:200]!r}")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise JudgeError(f"judge reply's JSON does not parse ({exc.msg}): {match.group(0)[:200]!r}") from None
    mark = data.get("mark") if isinstance(data, dict) else None
    if isinstance(mark, str) and mark.strip().isdigit():
        mark = int(mark.strip())
    if isinstance(mark, float) and mark.is_integer():
        mark = int(mark)
    if not isinstance(mark, int) or isinstance(mark, bool) or not 0 <= mark <= 5:
        raise JudgeError(f"judge reply has no integer mark 0-5: {match.group(0)[:200]!r}")
    return mark


# --- the judge endpoint and its cache -------------------------------------------------------------------------------

@dataclass
class JudgeClient(ChatClient):
    """The official judge call (one user turn, :data:`JUDGE_SETTINGS`) through an OpenAI-compatible server (OpenAI,
    a local vLLM, ...); ``extra_body`` carries request fields a server may take (e.g. vLLM's
    ``{"structured_outputs": {"regex": ...}}``), empty for OpenAI."""

    def ask(self, prompt: str) -> str:
        try:
            return self.complete([{"role": "user", "content": prompt}], **JUDGE_SETTINGS)
        except ChatError as exc:
            raise JudgeError(f"judge {self.model!r} failed after {exc.tries} tries: {exc.last}") from None


class JudgeCache:
    """Judge replies by (item, judge model, prompt), appended to a jsonl file as they come (a killed run loses none).

    The item is part of the key because the official script asks the judge once per question: two questions with
    the same text, answer and prediction still get a judgment each.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.replies: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: that judgment is simply asked again
                self.replies[record["key"]] = record["reply"]

    @staticmethod
    def key(item_id: str, model: str, prompt: str) -> str:
        return hashlib.sha256(f"{item_id}\n{model}\n{prompt}".encode()).hexdigest()

    def put(self, key: str, item_id: str, reply: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"key": key, "id": item_id, "reply": reply}, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.replies[key] = reply


# --- scoring ------------------------------------------------------------------------------------------------------

@dataclass
class OpenQAResults:
    per_domain: dict[str, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in DOMAINS})
    records: list[dict] = field(default_factory=list)
    missing_predictions: list[str] = field(default_factory=list)
    judge_calls: int = 0
    cached: int = 0

    @property
    def micro(self) -> float:
        correct = sum(c for c, _ in self.per_domain.values())
        total = sum(t for _, t in self.per_domain.values())
        return 100.0 * correct / total if total else 0.0

    @property
    def macro(self) -> float:
        scored = [100.0 * c / t for c, t in self.per_domain.values() if t]
        return sum(scored) / len(scored) if scored else 0.0

    def as_dict(self) -> dict:
        return {
            "micro": round(self.micro, 2), "macro": round(self.macro, 2),
            "per_domain": {d: {"correct": c, "total": t, "accuracy": round(100.0 * c / t, 2) if t else 0.0}
                           for d, (c, t) in self.per_domain.items()},
            "marks": {str(m): sum(1 for r in self.records if r["mark"] == m) for m in range(6)},
            "missing_predictions": self.missing_predictions, "judge_calls": self.judge_calls,
            "cached_judgments": self.cached, "correct_mark": CORRECT_MARK,
        }


def judge_predictions(items: list[dict], answers: dict[str, dict], predictions: dict[str, dict],
                      judge: JudgeClient, cache: JudgeCache, progress: Callable | None = None,
                      answers_file: str | os.PathLike = "answers") -> OpenQAResults:
    """Mark every testbed item's prediction the official way; a missing prediction is wrong and listed."""
    results = OpenQAResults()
    for item in (progress or (lambda x: x))(items):
        key = str(item["id"])
        reference = answers.get(key) or answers.get(str(item.get("question_id")))
        if reference is None:
            raise DataFormatError(answers_file, None, "id", f"no answer_text for testbed item {key!r}")
        record = predictions.get(key)
        if record is None:
            results.missing_predictions.append(key)
        prediction = "" if record is None else str(record.get("prediction") or "")
        mark, source = quick_mark(reference["answer_text"], prediction), "match"
        if mark is None:
            prompt = judge_prompt(item["question_text"], reference["answer_text"], reference["detailed_answer"],
                                  prediction)
            cache_key = JudgeCache.key(key, judge.model, prompt)
            reply = cache.replies.get(cache_key)
            if reply is None:
                reply = judge.ask(prompt)
                results.judge_calls += 1
                try:
                    parse_mark(reply)
                except JudgeError as exc:
                    raise JudgeError(f"item {key!r}: {exc}") from None
                cache.put(cache_key, key, reply)
                source = "judge"
            else:
                results.cached += 1
                source = "cache"
            mark = parse_mark(reply)
        correct = mark >= CORRECT_MARK
        domain = domain_of(item["dataset"])
        results.per_domain[domain][0] += int(correct)
        results.per_domain[domain][1] += 1
        results.records.append({"id": item["id"], "dataset": item["dataset"], "prediction": prediction,
                                "answer_text": reference["answer_text"], "mark": mark, "correct": correct,
                                "source": source})
    return results
