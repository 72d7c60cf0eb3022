"""The ``openai`` backend against a real HTTP server on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from alignbench.backends.base import BackendOptions, load_backend
from alignbench.errors import BackendError, UsageError
from alignbench.types import GenerationParams, GenerationRequest, LoglikelihoodRequest
from conftest import read_jsonl, run_cli
from openai_server import OpenAIServer, Reply, greedy_token, openai_server, token_logprob, tokenize  # noqa: F401

KEY = "sk-test-9f8e7d6c5b4a-SECRET"


def backend(srv: OpenAIServer, concurrency: int = 4, **args):
    return load_backend("openai:test-model", {"base_url": srv.base_url, "backoff": 0.01, **args}, BackendOptions(concurrency=concurrency))


def req(text: str, **params) -> GenerationRequest:
    return GenerationRequest(prompt=[{"role": "user", "content": text}], params=GenerationParams(**params))


# generation ---------------------------------------------------------------------------------------
def test_chat_request_carries_the_generation_parameters(openai_server: OpenAIServer) -> None:
    b = backend(openai_server)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one two STOP three"}]
    out = b.generate([GenerationRequest(prompt=msgs, params=GenerationParams(max_new_tokens=7, temperature=0.3, top_p=0.9,
                                                                              stop=("STOP",), seed=11))])
    assert out[0].text == "Echo: one two " and out[0].num_tokens == len(tokenize("Echo: one two "))
    body = openai_server.completion_requests()[0].json
    assert openai_server.completion_requests()[0].path == "/v1/chat/completions"
    assert body["messages"] == msgs and body["model"] == "test-model"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop"], body["seed"]) == (7, 0.3, 0.9, ["STOP"], 11)


def test_completions_endpoint_for_string_prompts_chat_for_conversations(openai_server: OpenAIServer) -> None:
    b = backend(openai_server, endpoint="completions", top_k=20)
    out = b.generate([GenerationRequest(prompt="plain text prompt"), req("a chat prompt")])
    assert [g.text for g in out] == ["Echo: plain text prompt", "Echo: a chat prompt"]
    paths = sorted((r.path, r.json.get("prompt")) for r in openai_server.completion_requests())
    assert paths == [("/v1/chat/completions", None), ("/v1/completions", "plain text prompt")]
    assert all(r.json["top_k"] == 20 for r in openai_server.completion_requests())  # extra model args pass through
    chat = backend(openai_server)  # default endpoint=chat wraps a string prompt as a user message
    chat.generate([GenerationRequest(prompt="hi")])
    assert openai_server.completion_requests()[-1].json["messages"] == [{"role": "user", "content": "hi"}]


def test_results_come_back_in_request_order_under_concurrency() -> None:
    def handler(r):  # later requests answer sooner
        time.sleep(0.01 * (20 - int(r.text.split()[-1])))
        return f"answer to {r.text}"

    with OpenAIServer(handler) as srv:
        out = backend(srv, concurrency=8).generate([req(f"question {i}") for i in range(20)])
        assert [g.text for g in out] == [f"answer to question {i}" for i in range(20)]
        assert 1 < srv.max_in_flight <= 8


def test_concurrency_overlaps_requests() -> None:
    n, d, conc = 24, 0.25, 8
    with OpenAIServer(delay=d) as srv:
        b = backend(srv, concurrency=conc)
        b.fingerprint()  # /v1/models outside the timing
        t0 = time.monotonic()
        b.generate([req(f"q{i}") for i in range(n)])
        elapsed = time.monotonic() - t0
        assert srv.max_in_flight == conc
    ideal, serial = n * d / conc, n * d  # 0.75 s vs 6 s
    assert ideal * 0.95 <= elapsed < serial / 3, elapsed


# retries ----------------------------------------------------------------------------------------
def test_429_retry_after_is_honoured(openai_server: OpenAIServer) -> None:
    openai_server.fail(429, retry_after=0.6)
    t0 = time.monotonic()
    assert backend(openai_server).generate([req("x")])[0].text == "Echo: x"
    assert time.monotonic() - t0 >= 0.6
    first, second = openai_server.completion_requests()
    assert second.arrived - first.arrived >= 0.58  # backoff alone would be ~0.01 s


def test_500_then_success(openai_server: OpenAIServer) -> None:
    openai_server.fail(500, times=2)
    assert backend(openai_server).generate([req("x")])[0].text == "Echo: x"
    assert len(openai_server.completion_requests()) == 3


def test_slow_response_times_out_and_is_retried(openai_server: OpenAIServer) -> None:
    openai_server.slow(5.0)
    t0 = time.monotonic()
    assert backend(openai_server, timeout=0.3).generate([req("x")])[0].text == "Echo: x"
    assert time.monotonic() - t0 < 3.0
    assert len(openai_server.completion_requests()) == 2


@pytest.mark.parametrize("fault", ["malformed", "drop"])
def test_malformed_json_and_dropped_connections_are_retried(openai_server: OpenAIServer, fault: str) -> None:
    getattr(openai_server, fault)(times=2)
    assert backend(openai_server).generate([req("x")])[0].text == "Echo: x"
    assert len(openai_server.completion_requests()) == 3


def test_exhausted_retries_and_rejections_are_one_line_backend_errors(openai_server: OpenAIServer) -> None:
    openai_server.fail(503, times=3, message="overloaded")
    with pytest.raises(BackendError, match=r"HTTP 503: overloaded; gave up after 2 retries") as e:
        backend(openai_server, max_retries=2).generate([req("x")])
    assert "\n" not in str(e.value)
    openai_server.fail(404, message="The model `test-model` does not exist.")
    with pytest.raises(BackendError, match=r"rejected a generation request .* HTTP 404: The model `test-model` does not exist"):
        backend(openai_server).generate([req("x")])
    assert len(openai_server.completion_requests()) == 4  # a 404 is not retried


def test_unreachable_server_fails_with_exit_3_message() -> None:
    with OpenAIServer() as srv:
        url = srv.base_url
    b = load_backend("openai:m", {"base_url": url, "max_retries": 1, "backoff": 0.01})
    with pytest.raises(BackendError, match=r"connection failed .*gave up after 1 retries; is the server running at http://127"):
        b.fingerprint()


def test_model_args_are_checked() -> None:
    with pytest.raises(UsageError, match="OPENAI_API_KEY only"):
        load_backend("openai:m", {"api_key": "sk-x"})
    with pytest.raises(UsageError, match="endpoint must be 'chat' or 'completions'"):
        load_backend("openai:m", {"endpoint": "responses"})
    with pytest.raises(UsageError, match="cannot be overridden"):
        load_backend("openai:m", {"echo": True})


def test_fingerprint_names_model_and_server_and_is_stable(openai_server: OpenAIServer) -> None:
    a, b = backend(openai_server).fingerprint(), backend(openai_server).fingerprint()
    assert a["id"] == f"openai:test-model@{openai_server.base_url}" and a["hash"] == b["hash"]
    assert a["server_model"]["owned_by"] == "openai-server-test"
    other = load_backend("openai:other-model", {"base_url": openai_server.base_url}).fingerprint()
    assert other["hash"] != a["hash"] and other["server_model"] is None


# log-likelihoods -----------------------------------------------------------------------------------
def _expected(context: str, continuation: str) -> tuple[float, bool, int]:
    """Sum over the fake model's tokens that end after the context (straddling tokens count)."""
    full = context + continuation
    toks = [(t, o) for t, o in tokenize(full) if o + len(t) > len(context)]
    return (sum(token_logprob(full[:o], t) for t, o in toks), all(greedy_token(full[:o], t) for t, o in toks), len(toks))


@pytest.mark.parametrize("context,continuation", [
    ("Question: is the sky blue? Answer:", " yes"),
    ("Question: is the sky blue? Answer:", " no, it is green today"),
    ("The answer is: ye", "s indeed"),  # the boundary falls inside a token
])
def test_loglikelihood_from_echoed_logprobs(openai_server: OpenAIServer, context: str, continuation: str) -> None:
    [ll] = backend(openai_server).loglikelihood([LoglikelihoodRequest(context, continuation)])
    lp, greedy, n = _expected(context, continuation)
    assert ll.logprob == pytest.approx(lp, abs=1e-12) and ll.is_greedy == greedy and ll.num_tokens == n
    probe, scored = openai_server.completion_requests()  # first the echo-alignment probe, then the request itself
    assert probe.json["echo"] is True and probe.json["prompt"] != context + continuation
    body = scored.json
    assert body["prompt"] == context + continuation and body["echo"] is True and body["logprobs"] == 1
    assert body["temperature"] == 0.0 and body["max_tokens"] == 1


def test_loglikelihood_batch_keeps_order(openai_server: OpenAIServer) -> None:
    pairs = [(f"Context {i}: pick one.", f" choice {c}") for i in range(5) for c in "ABCD"]
    lls = backend(openai_server, concurrency=6).loglikelihood([LoglikelihoodRequest(c, x) for c, x in pairs])
    assert [ll.logprob for ll in lls] == pytest.approx([_expected(c, x)[0] for c, x in pairs], abs=1e-12)


def test_loglikelihood_unsupported_is_a_clear_usage_error() -> None:
    with OpenAIServer(logprobs=False) as srv:  # the server refuses echo/logprobs (400)
        with pytest.raises(UsageError, match=r"HTTP 400: echo and logprobs are not supported.*prompt log-probabilities"):
            backend(srv).loglikelihood([LoglikelihoodRequest("a b", " c")])
    no_lp = {"choices": [{"index": 0, "text": "a b c", "logprobs": None, "finish_reason": "length"}]}
    with OpenAIServer(lambda r: no_lp) as srv:  # the server answers, but without logprobs
        with pytest.raises(UsageError, match=r"returned no prompt log-probabilities .*echo=true, logprobs=1"):
            backend(srv).loglikelihood([LoglikelihoodRequest("a b", " c")])
        assert len(srv.completion_requests()) == 1  # not retried


# through the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def task_yaml(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i:03d}", "prompt": f"Question number {i}: please help.", "label": "harmful" if i % 2 else "benign"}
            for i in range(60)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "mytask.yaml"
    y.write_text("name: mytask\ndataset:\n  data_files: data.jsonl\n  columns: {id: id}\n  meta_columns: [label]\n"
                 "scorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    return y


def _eval(srv: OpenAIServer, task: Path, out: Path, *extra: str, env: dict | None = None, args: str = ""):
    cache = () if "--no-cache" in extra else ("--cache", str(out.parent / "cache.sqlite"))
    return run_cli("eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url},backoff=0.01{args}",
                   "--tasks", str(task), "--output", str(out), "--run-id", "r", *cache, *extra, env=env)


def test_exhausted_retries_exit_3_and_keep_every_finished_request(task_yaml: Path, tmp_path: Path) -> None:
    served = {"n": 0}

    def handler(r):  # 40 good answers, then the server breaks
        served["n"] += 1
        return "Echo: " + r.text if served["n"] <= 40 else Reply(500, {"error": {"message": "GPU fell off the bus"}})

    with OpenAIServer(handler) as srv:
        # backoff 0.3 s: the good answers still in flight are surely in before the failing request gives up
        r = _eval(srv, task_yaml, tmp_path / "out", "--concurrency", "2", args=",max_retries=1,backoff=0.3")
        assert r.returncode == 3, r.stderr
        assert "Traceback" not in r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("alignbench: error: openai server http://127.0.0.1:") and "HTTP 500: GPU fell off the bus; gave up after 1 retries" in last
        run = tmp_path / "out" / "r"
        recs = read_jsonl(run / "samples.jsonl")
        # the first chunk (32 = preferred_chunk) and the 8 answers of the next chunk, judged and scored
        assert [x["sample_id"] for x in recs] == [f"s{i:03d}" for i in range(40)]
        assert all(x["response"] == f"Echo: Question number {int(x['sample_id'][1:])}: please help." for x in recs)
        assert all("refusal_xstest" in x["judgments"] and x["metrics"] for x in recs)
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "failed" and "GPU fell off the bus" in info["error"]

        served["n"] = -1000  # healthy again: resume pays only for what samples.jsonl does not hold
        r = _eval(srv, task_yaml, tmp_path / "out", "--concurrency", "2", "--resume")
        assert r.returncode == 0, r.stderr
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "complete" and info["model_calls"] == 60 - 40
        assert [x["sample_id"] for x in read_jsonl(run / "samples.jsonl")] == [f"s{i:03d}" for i in range(60)]


def test_finished_requests_reach_samples_without_the_cache(task_yaml: Path, tmp_path: Path) -> None:
    """A run that fails after 12 of 40 requests keeps those 12 with --no-cache, inside one chunk."""
    served = {"n": 0}

    def handler(r):
        served["n"] += 1
        return "Echo: " + r.text if served["n"] <= 12 else Reply(500, {"error": {"message": "overloaded"}})

    with OpenAIServer(handler) as srv:
        r = _eval(srv, task_yaml, tmp_path / "out", "--concurrency", "1", "--limit", "40", "--no-cache",
                  args=",max_retries=0")
        assert r.returncode == 3 and "overloaded" in r.stderr.strip().splitlines()[-1], r.stderr
        recs = read_jsonl(tmp_path / "out" / "r" / "samples.jsonl")
        assert [x["sample_id"] for x in recs] == [f"s{i:03d}" for i in range(12)]
        served["n"] = -1000
        r = _eval(srv, task_yaml, tmp_path / "out", "--concurrency", "1", "--limit", "40", "--no-cache", "--resume")
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / "out" / "r" / "run.json").read_text())["model_calls"] == 28


def test_requests_keep_flowing_across_chunk_boundaries(task_yaml: Path, tmp_path: Path) -> None:
    """With 4 slots and 32-sample chunks, the next chunk's requests start while the current chunk's last
    request is still being answered (it is slow here), instead of after the whole chunk is judged."""
    next_chunk = {"n": 0}
    eight_arrived = threading.Event()
    lock = threading.Lock()

    def handler(r):
        if "number 31:" in r.text:  # held until 8 of the next chunk arrived (or 10 s: the assertion below then fails)
            eight_arrived.wait(10)
        elif int(r.text.split("number ")[1].split(":")[0]) >= 32:
            with lock:
                next_chunk["n"] += 1
                if next_chunk["n"] >= 8:
                    eight_arrived.set()
        time.sleep(0.01)
        return "Echo: " + r.text

    with OpenAIServer(handler) as srv:
        r = _eval(srv, task_yaml, tmp_path / "out", "--concurrency", "4", "--no-cache")
        assert r.returncode == 0, r.stderr
        reqs = sorted(srv.completion_requests(), key=lambda x: int(x.json["messages"][-1]["content"].split()[2][:-1]))
    assert len(reqs) == 60 and srv.max_in_flight == 4
    slow = reqs[31]  # the last sample of the first chunk
    assert sum(x.arrived < slow.finished for x in reqs[32:]) >= 8  # the other slots went on with the next chunk


def test_api_key_is_sent_but_never_written(task_yaml: Path, tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": KEY}
    with OpenAIServer(api_key=KEY) as srv:
        r = _eval(srv, task_yaml, tmp_path / "out", "--limit", "5", env=env)
        assert r.returncode == 0, r.stderr
        assert all(x.headers["authorization"] == f"Bearer {KEY}" for x in srv.requests)
    # a server that echoes the key in its error message: the message is shown, the key is not
    leaky = {"error": {"message": f"Incorrect API key provided: {KEY}. You can find your key at ..."}}
    with OpenAIServer(lambda req: Reply(401, leaky)) as srv:
        r2 = _eval(srv, task_yaml, tmp_path / "out2", "--limit", "5", env=env)
        assert r2.returncode == 3 and "Incorrect API key provided: ***" in r2.stderr and "check OPENAI_API_KEY" in r2.stderr
    r3 = run_cli("eval", "--model", "openai:m", "--model-args", f"api_key={KEY}", "--tasks", str(task_yaml),
                 "--output", str(tmp_path / "out3"))
    assert r3.returncode == 2 and "OPENAI_API_KEY only" in r3.stderr
    for proc in (r, r2, r3):
        assert KEY not in proc.stdout + proc.stderr
        assert KEY[-10:] not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "data.jsonl"]
    assert any(p.name == "samples.jsonl" for p in files) and any(p.name.startswith("cache.sqlite") for p in files)
    for p in files:
        assert KEY.encode() not in p.read_bytes(), p


def test_multiple_choice_task_through_completions(tmp_path: Path) -> None:
    rows = [{"id": str(i), "question": f"Is {i} even?", "choices": ["yes", "no"], "target": i % 2} for i in range(4)]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "mc.yaml"
    y.write_text("name: mc\noutput_type: multiple_choice\ndataset:\n  data_files: mc.jsonl\n"
                 "  columns: {id: id, prompt: question, choices: choices, target: target}\nprompt:\n  chat: false\n")
    with OpenAIServer() as srv:
        r = _eval(srv, y, tmp_path / "out")
        assert r.returncode == 0, r.stderr
        recs = read_jsonl(tmp_path / "out" / "r" / "samples.jsonl")
        assert recs[1]["loglikelihoods"] == pytest.approx([_expected("Is 1 even?", " yes")[0], _expected("Is 1 even?", " no")[0]])
    with OpenAIServer(logprobs=False) as srv:
        r = _eval(srv, y, tmp_path / "out2")
        assert r.returncode == 2 and "prompt log-probabilities" in r.stderr.strip().splitlines()[-1]
