"""The opt-in LLM judge against a local OpenAI-compatible server (no network): request shape, EgoTextVQA and
EgoThink verdicts, and a dead endpoint failing loudly instead of scoring 0."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from egoforge.lmms.judge import JudgeConfig
from egoforge.lmms.tasks import egotextvqa, egothink


class _Judge(BaseHTTPRequestHandler):
    replies: list[tuple[int, str]] = []
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"body": body, "auth": self.headers.get("Authorization")})
        status, content = type(self).replies.pop(0)
        payload = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Judge.replies, _Judge.requests = [], []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("EGOFORGE_JUDGE_URL", f"http://127.0.0.1:{server.server_port}/v1/chat/completions")
    monkeypatch.setenv("EGOFORGE_JUDGE_RETRIES", "2")
    yield _Judge
    server.shutdown()
    server.server_close()


def test_egotextvqa_judged(judge_server):
    judge_server.replies = [(200, "{'pred': 'yes', 'score': 5}")]
    doc = {"question": "what is the speed limit?", "answer": "30 MPH"}
    result = egotextvqa.process_results_judged(doc, ["Answer: 30 mph\nit is on the sign"])
    assert result == {"local_answer_match": 1.0, "token_f1": 1.0, "judge_accuracy": 1.0, "judge_score": 5.0}
    request = judge_server.requests[0]
    assert request["auth"] == "Bearer sk-test" and request["body"]["model"] == "gpt-4o-mini"
    assert request["body"]["temperature"] == 0
    assert "Correct answer: 30 mph\nPredicted answer: 30 mph" in request["body"]["messages"][1]["content"]


def test_egothink_judged_with_lmms_evals_own_prompt(judge_server):
    judge_server.replies = [(200, "Close but vague. Rating: [[0.5]]")]
    result = egothink.process_results_judged({"question": "what am I doing?", "answer": "Cooking."}, ["making food"])
    assert result["judge_rating"] == 0.5 and result["local_answer_match"] == 0.0
    body = judge_server.requests[0]["body"]
    # lmms-eval's EgoThink judge prompt (its reference lower-cased, full stops removed), sent to our endpoint.
    prompt = body["messages"][1]["content"]
    assert prompt.startswith("[Instruction]\nPlease act as an impartial judge")
    assert "[The Start of Reference Answer]\ncooking\n[The End of Reference Answer]" in prompt
    assert "[The Start of Assistant's Answer]\nmaking food\n" in prompt
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 2048 and body["temperature"] == 0


def test_egothink_reply_without_a_rating_fails_instead_of_scoring_minus_one(judge_server):
    judge_server.replies = [(200, "I cannot decide. [[7]]")]
    with pytest.raises(ValueError, match="no rating of 0, 0.5 or 1"):
        egothink.process_results_judged({"question": "q", "answer": "a"}, ["b"])


def test_local_judge_needs_no_key_and_takes_a_base_url(monkeypatch):
    from egoforge.lmms.judge import chat_url

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("EGOFORGE_JUDGE_URL", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("EGOFORGE_JUDGE_EXTRA_BODY", '{"top_k": 1}')
    config = JudgeConfig.from_env()
    assert config.url == "http://127.0.0.1:8000/v1/chat/completions" and config.api_key == ""
    assert config.extra_body == {"top_k": 1}
    for key in ("EGOFORGE_JUDGE_URL", "EGOFORGE_JUDGE_EXTRA_BODY"):
        monkeypatch.delenv(key)
    for key, value in config.environment().items():
        monkeypatch.setenv(key, value)
    assert JudgeConfig.from_env() == config  # environment() round-trips through from_env()
    assert chat_url("https://x/v1/chat/completions") == "https://x/v1/chat/completions"
    monkeypatch.setenv("EGOFORGE_JUDGE_EXTRA_BODY", "[1]")
    with pytest.raises(ValueError, match="JSON object"):
        JudgeConfig.from_env()


def test_dead_judge_raises_after_retries(judge_server):
    judge_server.replies = [(500, "overloaded"), (500, "overloaded")]
    with pytest.raises(RuntimeError, match="failed 2 times"):
        egotextvqa.process_results_judged({"question": "q", "answer": "a"}, ["a"])
    assert len(judge_server.requests) == 2


def test_judge_needs_an_explicit_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
        JudgeConfig.from_env()
