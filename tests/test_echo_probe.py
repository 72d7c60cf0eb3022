"""Before scoring choices on an openai-compatible server, alignbench checks once that the echoed prompt
log-probabilities sit at their own tokens. A local server reproduces llama-cpp-python's one-position
shift (each token carries the distribution of the next one): the run stops with one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from openai_server import OpenAIServer, Reply, default_text

from alignbench.backends._echo_probe import PROBE_TEXT, alignment_counts, is_shifted
from conftest import run_main


def _shifted():
    """Answer echo+logprobs completions as a shifted server would: top_logprobs[i] is the fake model's
    distribution for token i+1, token_logprobs[i] the log-probability of token i under it."""

    def handler(req) -> str | Reply:
        body = req.json
        if not body.get("echo"):
            return default_text(req)
        lp = OpenAIServer._logprobs(req.text, req.text, True, int(body.get("logprobs") or 1))
        tops = lp["top_logprobs"][1:] + [{"<eos>": -0.1}]
        lp["top_logprobs"] = tops
        lp["token_logprobs"] = [None] + [round(-9.0 - 0.1 * i, 3) for i in range(1, len(tops))]
        return {"id": "cmpl-x", "object": "text_completion", "model": body["model"],
                "choices": [{"index": 0, "text": req.text, "finish_reason": "length", "logprobs": lp}],
                "usage": {"prompt_tokens": len(lp["tokens"]), "completion_tokens": 0, "total_tokens": 0}}

    return handler


def _mc(srv: OpenAIServer, out: Path, run_id: str):
    return run_main("eval", "--model", "openai:m", "--model-args", f"base_url={srv.base_url},max_retries=0",
                    "--tasks", "truthfulqa_mc1", "--limit", "3", "--output", out, "--run-id", run_id, "--no-cache")


def test_a_shifted_server_is_refused_before_any_choice_is_scored(tmp_path: Path) -> None:
    with OpenAIServer() as srv:
        srv.handler = _shifted()
        r = _mc(srv, tmp_path, "shifted")
        probes = [q for q in srv.completion_requests() if q.json.get("prompt") == PROBE_TEXT]
        scored = [q for q in srv.completion_requests() if q.json.get("prompt") != PROBE_TEXT]
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: openai server "), r.stderr
    assert "shifted by one position" in lines[0] and "--model default" in lines[0] and "hf:PATH" in lines[0]
    assert len(probes) == 1 and not scored
    samples = tmp_path / "shifted" / "samples.jsonl"
    assert not samples.exists() or samples.read_text() == ""
    assert json.loads((tmp_path / "shifted" / "run.json").read_text())["status"] == "failed"


def test_an_aligned_server_is_probed_once_and_scores(tmp_path: Path) -> None:
    with OpenAIServer() as srv:  # the fake model's top-1 is the token itself at about half the positions
        r = _mc(srv, tmp_path, "ok")
        probes = [q for q in srv.completion_requests() if q.json.get("prompt") == PROBE_TEXT]
    assert r.returncode == 0, r.stderr
    assert len(probes) == 1
    assert len((tmp_path / "ok" / "samples.jsonl").read_text().splitlines()) == 3


def test_counts_on_the_example_of_the_report() -> None:
    # "The capital of France is Paris": a shifted server's top entry at " capital" is " of"
    tokens = ["The", " capital", " of", " France", " is", " Paris"]
    shifted = [None, {" of": -0.5}, {" France": -0.7}, {" is": -0.2}, {" Paris": -0.9}, {".": -0.3}]
    aligned = [None, {" capital": -2.0}, {" of": -0.1}, {" France": -1.2}, {" is": -0.2}, {" Paris": -0.4}]
    as_reply = lambda tops: {"choices": [{"logprobs": {"tokens": tokens, "top_logprobs": tops}}]}  # noqa: E731
    assert alignment_counts(as_reply(shifted)) == (0, 4) and is_shifted(as_reply(shifted))
    assert alignment_counts(as_reply(aligned)) == (5, 0) and not is_shifted(as_reply(aligned))
    assert not is_shifted({"choices": [{"logprobs": None}]})  # cannot tell: no verdict
