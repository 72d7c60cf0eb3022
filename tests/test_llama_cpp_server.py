"""The openai backend against llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``,
``pip install "llama-cpp-python[server]"``), serving the GGUF that ``--model default`` runs.

* Its echoed prompt log-probabilities are shifted by one position: the probe finds it, and a
  multiple-choice task stops with one line (exit 2) instead of scoring every choice wrong.
* Its sampling defaults differ from the default backend's (repeat_penalty 1.1): pinned with
  ``--model-args repeat_penalty=1.0``, greedy answers equal ``--model default``'s; run.json records
  every decoding field sent; a re-run is served from the cache and ``--resume`` asks only for what is missing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import read_jsonl, run_main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")


# ``python -m llama_cpp.server`` with the weights in plain CPU buffers, as the default backend loads them
# (the server has no flag for it): the same numbers, and no AMX kernels on a VM that advertises AMX without enabling it.
SERVE_PLAIN_BUFFERS = """
import runpy, sys
import llama_cpp.llama_cpp as low
defaults = low.llama_model_default_params
def plain():
    params = defaults()
    params.use_extra_bufts = False
    return params
low.llama_model_default_params = plain
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from alignbench.backends.default import packaged_gguf

    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", SERVE_PLAIN_BUFFERS, "--model", str(packaged_gguf()), "--model_alias", "smol",
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
                                stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_probe_finds_the_shift_and_multiple_choice_stops(server: str, tmp_path: Path) -> None:
    from alignbench.backends._echo_probe import alignment_counts, probe_body

    data = httpx.post(f"{server}/completions", json=probe_body("smol"), timeout=60).json()
    same, nxt = alignment_counts(data)
    assert nxt >= 10 and same == 0, (same, nxt)  # every top-1 is the next token
    r = run_main("eval", "--model", "openai:smol", "--model-args", f"base_url={server}", "--tasks", "truthfulqa_mc1",
                 "--limit", "2", "--output", tmp_path, "--no-cache")
    assert r.returncode == 2 and "shifted by one position" in r.stderr and len(r.stderr.strip().split("\n")) == 1, r.stderr


def test_eval_cache_and_resume_through_the_server_match_the_default_backend(server: str, tmp_path: Path) -> None:
    common = ["--tasks", "harmful_rate", "--limit", "4", "--max-new-tokens", "24", "--output", tmp_path]
    ref = run_main("eval", "--model", "default", "--model-args", "n_threads=2", *common, "--run-id", "ref", "--no-cache")
    assert ref.returncode == 0, ref.stderr
    srv = ["--model", "openai:smol", "--model-args", f"base_url={server},repeat_penalty=1.0"]
    cache = ["--cache", str(tmp_path / "c.sqlite")]
    r = run_main("eval", *srv, *common, "--run-id", "a", *cache)
    assert r.returncode == 0, r.stderr
    texts = lambda run: {x["sample_id"]: x["response"] for x in read_jsonl(tmp_path / run / "samples.jsonl")}  # noqa: E731
    assert texts("a") == texts("ref")  # greedy, same weights, same sampling settings
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["tasks"]["harmful_rate"]["decoding"] == {"max_tokens": 24, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                                                         "repeat_penalty": 1.0}
    assert info["model_calls"] == 4
    recs = read_jsonl(tmp_path / "a" / "samples.jsonl")
    assert all(x["tokens_in"] > 0 and x["finish_reason"] in ("stop", "length") for x in recs)
    # the same run again: every answer from the cache
    r = run_main("eval", *srv, *common, "--run-id", "b", *cache)
    assert r.returncode == 0 and json.loads((tmp_path / "b" / "run.json").read_text())["model_calls"] == 0, r.stderr
    # killed after two samples: --resume asks the server for the two missing ones only
    samples = tmp_path / "a" / "samples.jsonl"
    samples.write_text("".join(samples.read_text().splitlines(keepends=True)[:2]))
    r = run_main("eval", *srv, *common, "--run-id", "a", "--no-cache", "--resume")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "a" / "run.json").read_text())["model_calls"] == 2
    assert texts("a") == texts("ref")


def test_without_pinning_the_servers_defaults_change_greedy_answers(server: str, tmp_path: Path) -> None:
    common = ["--tasks", "harmful_rate", "--limit", "6", "--max-new-tokens", "48", "--output", tmp_path, "--no-cache"]
    assert run_main("eval", "--model", "default", "--model-args", "n_threads=2", *common, "--run-id", "ref").returncode == 0
    r = run_main("eval", "--model", "openai:smol", "--model-args", f"base_url={server}", *common, "--run-id", "loose")
    assert r.returncode == 0, r.stderr
    texts = lambda run: [x["response"] for x in read_jsonl(tmp_path / run / "samples.jsonl")]  # noqa: E731
    assert texts("loose") != texts("ref")  # llama.cpp's repeat_penalty 1.1 applies unless pinned
