"""Server faults end-to-end through `alignbench eval --model openai:...` with seeded random fault schedules.

A real OpenAI-compatible server (tests/openai_server.py) answers a generation task (chat) and a
multiple-choice task (completions with echoed log-probabilities). A seeded schedule injects 429s with
Retry-After, 500/503s, timeouts, dropped connections and malformed JSON at random request indices.

* At most ``max_retries`` faults in the whole run: every request can be retried past all of them, so the
  run must succeed, equal a fault-free run, and the server must have seen exactly one extra request per
  fault.
* A fault storm longer than ``(max_retries + 1) * chunk`` consecutive requests: some request
  surely runs out of retries, so the run must exit 3 with one line on stderr, keep whole finished
  chunks (equal to the fault-free run's records), mark run.json failed, and a ``--resume`` against the
  healed server must complete the run to equal the fault-free one, paying only for what is missing.
"""

from __future__ import annotations

import json
import random
import re
import threading
from pathlib import Path

import pytest

from conftest import read_jsonl
from conftest import run_main
from openai_server import OpenAIServer, Reply, default_text

N_GEN = 40
N_MC = 6
N_CHOICES = 3
REQUESTS = N_GEN + N_MC * N_CHOICES + 1  # completion requests of a fault-free run (+1: the echo-alignment probe before the first choice)
MAX_RETRIES = 3
STORM_RETRIES = 1
CONCURRENCY = 4
KINDS = ["429", "500", "503", "timeout", "drop", "malformed"]


def cli(*argv: str) -> tuple[int, str, str]:
    rc, out, err = run_main(*argv)
    return rc, out, _without_server_noise(err)


def _without_server_noise(err: str) -> str:
    """Drop what the in-process test server's threads print (socketserver reports a client that hung up as
    a dashed block with a traceback); everything else on stderr is alignbench's."""
    blocks = re.split(r"-{40}\n", err)
    return "".join(b for b in blocks if not b.startswith("Exception occurred during processing of request"))


class Faulty:
    """Handler: the completion request number k (0-based, in arrival order) gets ``faults[k]`` if scheduled."""

    def __init__(self, faults: dict[int, str]) -> None:
        self.faults = dict(faults)
        self.n = 0
        self.injected = 0
        self.lock = threading.Lock()

    def __call__(self, req) -> str | Reply:
        with self.lock:
            k = self.n
            self.n += 1
            kind = self.faults.get(k)
            self.injected += kind is not None
        if kind is None:
            return default_text(req)
        if kind == "429":
            return Reply(429, {"error": {"message": "Rate limit reached", "type": "rate_limit", "code": 429}},
                         headers={"Retry-After": "0.01"})
        if kind in ("500", "503"):
            return Reply(int(kind), {"error": {"message": f"server error {kind}", "type": "server_error", "code": int(kind)}})
        if kind == "timeout":
            return Reply(delay=0.6, json={"choices": []})  # the client gives up after 0.25 s
        if kind == "drop":
            return Reply(drop=True)
        return Reply(200, body=b'{"choices": [{"message": {"content": "trunc')  # malformed JSON


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("faulttasks")
    rows = [{"id": f"g{i:02d}", "prompt": f"Request {i}: tell me about {i % 5}.", "label": "harmful" if i % 2 else "benign"}
            for i in range(N_GEN)]
    (d / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "gen.yaml").write_text("name: fgen\ndataset:\n  data_files: gen.jsonl\n  columns: {id: id}\n  meta_columns: [label]\n"
                                "scorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    mc = [{"id": f"m{i}", "q": f"Pick one for {i}:", "choices": ["red", "green", f"blue {i}"], "target": i % 3} for i in range(N_MC)]
    (d / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (d / "mc.yaml").write_text("name: fmc\noutput_type: multiple_choice\nprompt: {chat: false}\ndataset:\n  data_files: mc.jsonl\n"
                               "  columns: {id: id, prompt: q, choices: choices, target: target}\n")
    return f"{d / 'gen.yaml'},{d / 'mc.yaml'}"


def _eval(srv: OpenAIServer, tasks: str, out: Path, *extra: str, retries: int = MAX_RETRIES) -> tuple[int, str, str]:
    args = f"base_url={srv.base_url},endpoint=completions,timeout=0.25,max_retries={retries},backoff=0.005,max_backoff=0.02"
    return cli("eval", "--model", "openai:test-model", "--model-args", args, "--tasks", tasks, "--output", str(out), "--run-id", "r",
               "--concurrency", str(CONCURRENCY), "--cache", str(out / "cache.sqlite"), *extra)


def _comparable(recs: list[dict]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in r.items() if k not in ("latency_s", "cached")}, sort_keys=True) for r in recs)


@pytest.fixture(scope="module")
def reference(tasks: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faultref")
    with OpenAIServer() as srv:
        rc, _, err = _eval(srv, tasks, out)
    assert rc == 0, err
    return out / "r"


def _check_equal(run: Path, reference: Path) -> None:
    recs = read_jsonl(run / "samples.jsonl")
    keys = [(r["task"], r["sample_id"]) for r in recs]
    assert len(keys) == len(set(keys)), "duplicated samples"
    assert _comparable(recs) == _comparable(read_jsonl(reference / "samples.jsonl"))
    assert json.loads((run / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def _recoverable(seed: int, tasks: str, reference: Path, tmp: Path) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, MAX_RETRIES)
    faults = {k: rng.choice(KINDS) for k in rng.sample(range(REQUESTS), n)}
    handler = Faulty(faults)
    with OpenAIServer(handler) as srv:
        rc, out, err = _eval(srv, tasks, tmp)
        assert rc == 0, (seed, faults, err)
        assert handler.injected == n and len(srv.completion_requests()) == REQUESTS + n, (seed, faults)
    assert "Traceback" not in err
    _check_equal(tmp / "r", reference)


def _storm(seed: int, tasks: str, reference: Path, tmp: Path) -> None:
    rng = random.Random(seed)
    start = rng.randrange(0, REQUESTS - 1)
    # A request holds a concurrency slot only while it is on the wire, not while it backs off, so up to a whole
    # chunk (32 requests) can be between attempts at once: a storm of (STORM_RETRIES + 1) * 32 consecutive failed
    # attempts surely exhausts some request's retries.
    length = (STORM_RETRIES + 1) * 32 + rng.randrange(0, 8)
    handler = Faulty({k: rng.choice(KINDS) for k in range(start, start + length)})
    run = tmp / "r"
    with OpenAIServer(handler) as srv:
        rc, out, err = _eval(srv, tasks, tmp, retries=STORM_RETRIES)
        assert rc == 3, (seed, start, err)
        assert "Traceback" not in err and out == ""
        errors = [x for x in err.strip().splitlines() if "error" in x]
        assert len(errors) == 1 and errors[0].startswith("alignbench: error: openai server http://127.0.0.1:"), err
        assert f"gave up after {STORM_RETRIES} retries" in errors[0]
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "failed" and info["error"]
        kept = read_jsonl(run / "samples.jsonl") if (run / "samples.jsonl").exists() else []
        ref = {(r["task"], r["sample_id"]): r for r in read_jsonl(reference / "samples.jsonl")}
        kept_keys = [(r["task"], r["sample_id"]) for r in kept]
        assert len(kept_keys) == len(set(kept_keys)), "duplicated samples"
        assert _comparable(kept) == _comparable([ref[k] for k in kept_keys]), "kept records differ from the fault-free run"
        need = sum(1 if t == "fgen" else N_CHOICES for t, sid in ref if (t, sid) not in set(kept_keys))
        assert need > 0

        handler.faults.clear()  # the server heals; same server, so the same model fingerprint and cache keys
        rc, _, err = _eval(srv, tasks, tmp, "--resume")
        assert rc == 0, (seed, err)
    info = json.loads((run / "run.json").read_text())
    assert info["model_calls"] <= need  # the finished part of the failed chunk came from the cache
    _check_equal(run, reference)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_faults_within_the_retry_budget_change_nothing(seed: int, tasks: str, reference: Path, tmp_path: Path) -> None:
    _recoverable(seed, tasks, reference, tmp_path)


@pytest.mark.parametrize("seed", [1, 2])
def test_fault_storm_exits_3_keeps_finished_work_and_resumes(seed: int, tasks: str, reference: Path, tmp_path: Path) -> None:
    _storm(seed, tasks, reference, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 112))
def test_many_fault_schedules(seed: int, tasks: str, reference: Path, tmp_path: Path) -> None:
    _recoverable(seed, tasks, reference, tmp_path / "a")
    _storm(seed, tasks, reference, tmp_path / "b")
