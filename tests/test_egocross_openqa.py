"""EgoCross OpenQA: the official judge protocol through an OpenAI-compatible endpoint, tested against a stand-in
server on 127.0.0.1; cached and resumable; judge failures are errors, never a silent 0."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from egoforge.data.egocross import load_testbed
from egoforge.eval.egocross_openqa import (
    CORRECT_MARK,
    JudgeCache,
    JudgeClient,
    JudgeError,
    judge_predictions,
    judge_prompt,
    load_open_answers,
    parse_mark,
    quick_mark,
)
from egoforge.tools.cli import main as cli

TESTBED, ANSWERS = "egocross_testbed_imgs.json", "egocross_testbed_answers.json"


class StandIn:
    """An OpenAI-compatible /v1/chat/completions server whose reply is chosen per request by ``reply(body)``."""

    def __init__(self, reply):
        self.reply, self.requests = reply, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, content = outer.reply(body)
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}
                                  if status == 200 else {"error": content}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stand_in():
    servers = []

    def start(reply):
        server = StandIn(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _mark_from_prediction(body) -> tuple[int, str]:
    """The stand-in judge: mark 5 when the predicted answer says 'right', 1 otherwise (in the official shape)."""
    prompt = body["messages"][0]["content"]
    predicted = re.search(r"Predicted Answer: (.*?) \n", prompt).group(1)
    mark = 5 if "right" in predicted else 1
    return 200, f'```json\n{{"mark": {mark}, "reason": "stand-in"}}\n```'


# --- the official rules, by an oracle written from eval_gpt_openset.py ----------------------------------------------

def official_pre_match(answer, prediction: str) -> bool:
    """Oracle: the script's checks before the judge (int answers: equality or substring; strings: substring)."""
    if isinstance(answer, int) and (prediction == answer or str(answer) in str(prediction)):
        return True
    return isinstance(answer, str) and answer.lower() in prediction.lower()


@pytest.mark.parametrize("answer, prediction", [
    ("red", "The object is RED."), ("red", "reddish"), ("red", "blue"), ("", "anything"), (3, "3 squares"),
    (3, "13"), (3, "three"), (2.0, "2.0"), (None, "None"), ("bottom left", "Bottom Left quadrant"), (True, "True")])
def test_quick_match_agrees_with_the_official_pre_judge_checks(answer, prediction):
    assert (quick_mark(answer, prediction) == 5) == official_pre_match(answer, prediction)


@pytest.mark.parametrize("reply, mark", [
    ('{"mark": 4, "reason": "ok"}', 4), ('Sure.\n{"mark": "5", "reason": "x"}\nDone', 5),
    ('```\n{"mark": 0, "reason": ""}\n```', 0), ('{"mark": 3.0}', 3)])
def test_parse_mark(reply, mark):
    assert parse_mark(reply) == mark


@pytest.mark.parametrize("reply", ["no json here", '{"mark": 4,  # The score\n}', '{"mark": 7}', '{"score": 4}',
                                   '{"mark": "high"}'])
def test_unusable_judge_replies_are_errors(reply):
    with pytest.raises(JudgeError):
        parse_mark(reply)


def test_threshold_is_the_official_one():
    assert CORRECT_MARK == 4


def test_judge_prompt_carries_question_answers_and_prediction():
    prompt = judge_prompt("What colour?", "red", "The object is red.", "blue")
    assert "Question: What colour? \n" in prompt and "Correct ground truth: red \n" in prompt
    assert "Detailed ground truth: The object is red.\n" in prompt and "Predicted Answer: blue \n" in prompt


# --- the endpoint ---------------------------------------------------------------------------------------------------

def test_client_sends_the_official_settings(stand_in):
    server = stand_in(lambda body: (200, '{"mark": 5}'))
    client = JudgeClient(server.url, "judge-x", api_key="k123")
    assert client.ask("hello") == '{"mark": 5}'
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k123"
    body = request["body"]
    assert body["model"] == "judge-x" and body["messages"] == [{"role": "user", "content": "hello"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.01, 0.9, 512)


def test_server_errors_are_retried_then_loud(stand_in):
    server = stand_in(lambda body: (500, "overloaded"))
    with pytest.raises(JudgeError, match="failed after 3 tries: HTTP 500"):
        JudgeClient(server.url, "j", retries=3, backoff=0).ask("x")
    assert len(server.requests) == 3
    wrong_model = stand_in(lambda body: (404, "model not found"))
    with pytest.raises(JudgeError, match="HTTP 404.*model not found"):
        JudgeClient(wrong_model.url, "j", retries=3, backoff=0).ask("x")
    assert len(wrong_model.requests) == 1  # not retried


def test_unreachable_endpoint_is_loud():
    with pytest.raises(JudgeError, match="cannot reach http://127.0.0.1:9/v1/chat/completions"):
        JudgeClient("http://127.0.0.1:9/v1", "j", retries=1, timeout=2).ask("x")


# --- judging a run: cache, resume, failures -------------------------------------------------------------------------

def _predictions(real_testbed, right_ids=(2, 3)) -> dict[str, dict]:
    items = load_testbed(real_testbed / TESTBED)
    answers = {str(a["id"]): a for a in json.loads((real_testbed / ANSWERS).read_text())}
    preds = {}
    for it in items:
        key = str(it["id"])
        text = f"It is {answers[key]['answer_text']}" if it["id"] == 1 else (
            "right guess" if it["id"] in right_ids else "wrong guess")
        preds[key] = {"id": it["id"], "prediction": text}
    return preds


def test_judging_counts_match_and_judge_and_resumes_from_the_cache(real_testbed, stand_in, tmp_path):
    items = load_testbed(real_testbed / TESTBED)
    answers = load_open_answers(real_testbed / ANSWERS)
    server = stand_in(_mark_from_prediction)
    cache = JudgeCache(tmp_path / "judgments.jsonl")
    results = judge_predictions(items, answers, _predictions(real_testbed), JudgeClient(server.url, "j"), cache)
    assert results.judge_calls == len(items) - 1  # item 1 contains its answer_text: marked 5 without the judge
    assert {r["id"]: r["correct"] for r in results.records if r["correct"]} == {1: True, 2: True, 3: True}
    assert [r["source"] for r in results.records][:2] == ["match", "judge"]
    assert results.micro == pytest.approx(100 * 3 / len(items))
    # A second run asks nothing: every judgment comes from the cache, with the same marks.
    again = judge_predictions(items, answers, _predictions(real_testbed), JudgeClient(server.url, "j"),
                              JudgeCache(tmp_path / "judgments.jsonl"))
    assert again.judge_calls == 0 and again.cached == len(items) - 1
    assert [r["mark"] for r in again.records] == [r["mark"] for r in results.records]
    assert len(server.requests) == len(items) - 1


def test_a_judge_failure_mid_run_stops_loudly_and_keeps_what_was_judged(real_testbed, stand_in, tmp_path):
    items = load_testbed(real_testbed / TESTBED)
    answers = load_open_answers(real_testbed / ANSWERS)
    calls = []

    def flaky(body):
        calls.append(1)
        return (200, "I refuse to answer in JSON") if len(calls) == 3 else _mark_from_prediction(body)

    server = stand_in(flaky)
    cache_file = tmp_path / "judgments.jsonl"
    with pytest.raises(JudgeError, match=r"item '4': judge reply holds no JSON object"):
        judge_predictions(items, answers, _predictions(real_testbed), JudgeClient(server.url, "j"),
                          JudgeCache(cache_file))
    assert len(cache_file.read_text().splitlines()) == 2  # the two good judgments are kept
    resumed = judge_predictions(items, answers, _predictions(real_testbed), JudgeClient(server.url, "j"),
                                JudgeCache(cache_file))
    assert resumed.cached == 2 and resumed.judge_calls == len(items) - 3


def test_answers_without_open_fields_are_refused(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"id": 1, "correct_option_letter": "A", "answer_text": "x"}]))
    with pytest.raises(ValueError, match=r"a.json, row 0, field 'detailed_answer'"):
        load_open_answers(path)


def test_openqa_cli_on_existing_predictions(real_testbed, stand_in, tmp_path, capsys):
    server = stand_in(_mark_from_prediction)
    preds = tmp_path / "open.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in _predictions(real_testbed).values()))
    out = tmp_path / "out"
    args = ["evaluate", "egocross", "openqa", "--testbed", str(real_testbed / TESTBED), "--answers",
            str(real_testbed / ANSWERS), "--predictions", str(preds), "--out", str(out), "--judge-url", server.url,
            "--judge-model", "local-judge", "--quiet"]
    assert cli(args) == 0
    results = json.loads((out / "openqa_results.json").read_text())
    n = len(load_testbed(real_testbed / TESTBED))
    assert results["micro"] == round(100 * 3 / n, 2) and results["judge_calls"] == n - 1
    assert results["judge_model"] == "local-judge" and (out / "results_openqa.md").exists()
    assert cli(args) == 0 and json.loads((out / "openqa_results.json").read_text())["judge_calls"] == 0
    down = stand_in(lambda body: (503, "down"))
    args[args.index(server.url)] = down.url
    args[args.index(str(out))] = str(tmp_path / "out2")
    assert cli([*args, "--judge-retries", "1"]) == 1
    assert "HTTP 503" in capsys.readouterr().err
    assert not (tmp_path / "out2" / "openqa_results.json").exists()


def test_openqa_cli_generates_with_the_open_prompt(real_testbed, stand_in, tiny_qwen3_vl, tmp_path):
    server = stand_in(_mark_from_prediction)
    out = tmp_path / "out"
    assert cli(["evaluate", "egocross", "openqa", "--model", str(tiny_qwen3_vl), "--testbed",
                str(real_testbed / TESTBED), "--answers", str(real_testbed / ANSWERS), "--media-dir",
                str(real_testbed), "--out", str(out), "--judge-url", server.url, "--judge-model", "j", "--limit",
                "2", "--max-new-tokens", "6", "--max-pixels", "16384", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["protocol"] for r in records] == ["openqa", "openqa"]
    assert json.loads((out / "openqa_results.json").read_text())["per_domain"]["Surgery"]["total"] == 2


def test_a_question_without_an_open_answer_is_named(real_testbed, tmp_path):
    from egoforge.data.jsonio import DataFormatError

    items = [it for it in load_testbed(real_testbed / TESTBED) if it["id"] == 5]
    answers = load_open_answers(real_testbed / ANSWERS)
    del answers["5"]
    with pytest.raises(DataFormatError, match=r"a.json, field 'id': no answer_text for testbed item '5'"):
        judge_predictions(items, answers, {}, JudgeClient("http://127.0.0.1:9", "j"), JudgeCache(tmp_path / "c"),
                          answers_file=tmp_path / "a.json")


def test_open_prompt_keeps_the_official_quirks():
    from egoforge.eval.egocross_protocol import build_openqa_prompt

    prompt = build_openqa_prompt("Where is the tool?", 25.0, 1.0)
    assert prompt.startswith("Please carefully read the question and the provided context, then provide a clear ")
    # The script joins the FPS sentence to the next one without a space, and prints the json's float as written.
    assert ("Question: Where is the tool?\nThe original FPS of the video is 25.0. This image set is obtained by "
            "sampling at 1.0 fps.Your answer should be reasoned") in prompt
    assert "'prediction' (your answer as text)" in prompt and "Options" not in prompt
    assert prompt.endswith('so 240 / 24 = 10 seconds."\n}\n')


def test_openqa_cli_refuses_partial_predictions_unless_allowed(real_testbed, stand_in, tmp_path, capsys):
    """Judged predictions are held to the same coverage rule as CloseQA scoring: a run that lacks questions is
    refused (before any judge call); ``--allow-partial`` judges it, the missing ones wrong, coverage "n of N"."""
    server = stand_in(_mark_from_prediction)
    predictions = list(_predictions(real_testbed).values())
    n = len(predictions)
    preds = tmp_path / "open.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in predictions[:-2]))  # the last two questions unanswered
    out = tmp_path / "out"
    args = ["evaluate", "egocross", "openqa", "--testbed", str(real_testbed / TESTBED), "--answers",
            str(real_testbed / ANSWERS), "--predictions", str(preds), "--out", str(out), "--judge-url", server.url,
            "--judge-model", "local-judge", "--quiet"]
    assert cli(args) == 2
    assert f"partial run: {n - 2} of the testbed's {n} ids have a prediction" in capsys.readouterr().err
    assert not (out / "openqa_results.json").exists()
    assert cli([*args, "--allow-partial"]) == 0
    results = json.loads((out / "openqa_results.json").read_text())
    assert results["coverage"] == f"{n - 2} of {n}" and f"{n - 2} of {n}" in (out / "results_openqa.md").read_text()
