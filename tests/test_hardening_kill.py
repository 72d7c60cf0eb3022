"""SIGKILL at random points of `alignbench eval`, then `--resume`: nothing lost, nothing duplicated.

Each trial starts a real ``alignbench eval`` subprocess (dummy backend with a small per-request delay,
a generation task and a multiple-choice task), kills it with SIGKILL at a seeded random point (after
a random number of finished samples plus a random sub-chunk delay, so kills land before, between and
inside chunk writes), may kill the resumed process again, and finally resumes to completion. The
finished run must hold exactly the samples of an uninterrupted reference run, byte-for-byte equal
apart from the timing and cache flags, and the same metrics.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alignbench.cli import main
from conftest import read_jsonl

N_GEN = 24
N_MC = 16
TOTAL = N_GEN + N_MC


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("killtasks")
    gen = [{"id": f"g{i:02d}", "prompt": f"Request {i}: how do I do thing {i % 5}?", "category": "abc"[i % 3],
            "label": "harmful" if i % 2 else "benign"} for i in range(N_GEN)]
    (d / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gen))
    (d / "gen.yaml").write_text(
        "name: killgen\ndataset:\n  data_files: gen.jsonl\n  columns: {id: id, category: category}\n  meta_columns: [label]\n"
        "judges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    mc = [{"id": f"m{i:02d}", "question": f"Which is right for item {i}?", "choices": ["alpha", "beta", "gamma", f"delta {i}"],
           "target": i % 4} for i in range(N_MC)]
    (d / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (d / "mc.yaml").write_text(
        "name: killmc\noutput_type: multiple_choice\ndataset:\n  data_files: mc.jsonl\n"
        "  columns: {id: id, prompt: question, choices: choices, target: target}\n")
    return d


def _tasks(d: Path) -> str:
    return f"{d / 'gen.yaml'},{d / 'mc.yaml'}"


def _args(tasks_dir: Path, out: Path, run_id: str, cache: Path | None, delay: float) -> list[str]:
    args = ["eval", "--model", "dummy", "--model-args", f"delay={delay}", "--tasks", _tasks(tasks_dir), "--output", str(out),
            "--run-id", run_id, "--batch-size", "1", "--concurrency", "1"]
    return args + (["--cache", str(cache)] if cache else ["--no-cache"])


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_and_kill(argv: list[str], progress: Path, rng: random.Random, total: int = TOTAL, by_time_share: float = 0.3,
                  max_jitter: float = 0.05, timeout: float = 60, by_time: bool | None = None) -> int | None:
    """Start the CLI, SIGKILL it once ``progress`` has a random number of lines (+ jitter), or, for a share
    ``by_time_share`` of kills (or always with ``by_time=True``), at a random time since start (start-up,
    loading, first chunk). Returns the exit code if it finished first, else None."""
    if by_time is None:
        by_time = by_time_share > 0 and rng.random() < by_time_share
    target = rng.randrange(0, total)
    jitter = rng.uniform(0.0, max_jitter)
    proc = subprocess.Popen([sys.executable, "-m", "alignbench", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        if by_time:
            time.sleep(rng.uniform(0.05, 1.2))
        else:
            while time.time() < deadline and proc.poll() is None and _lines(progress) < target:
                time.sleep(0.003)
            time.sleep(jitter)
        if proc.poll() is not None:
            return proc.returncode
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _comparable(recs: list[dict]) -> list[str]:
    """Records with the fields that legitimately differ between runs (timing, cache hit) removed, in a stable order."""
    return sorted(json.dumps({k: v for k, v in r.items() if k not in ("latency_s", "cached")}, sort_keys=True) for r in recs)


@pytest.fixture(scope="module")
def reference(tasks_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    assert main(_args(tasks_dir, out, "ref", None, 0.0)) == 0
    return out / "ref"


def _trial(seed: int, tasks_dir: Path, reference: Path, tmp: Path, use_cache: bool | None = None,
           by_time: bool | None = None) -> int:
    """One kill-and-resume trial; ``use_cache`` / ``by_time`` fix what the seed would otherwise draw.
    Returns the number of kills."""
    rng = random.Random(seed)
    draw = rng.random() < 0.5
    use_cache = draw if use_cache is None else use_cache
    cache = tmp / "cache.sqlite" if use_cache else None
    out = tmp / "out"
    run = out / "r"
    samples = run / "samples.jsonl"
    argv = _args(tasks_dir, out, "r", cache, delay=0.01)
    rc = _run_and_kill(argv, samples, rng, by_time=by_time)
    kills = 0 if rc is not None else 1
    if rc is None and rng.random() < 0.5 and (run / "run.json").exists():  # kill the resumed process too
        rc = _run_and_kill(argv + ["--resume"], samples, rng)
        kills += rc is None
    if rc is None:
        kept = read_jsonl(samples) if samples.exists() else []
        missing_gen = N_GEN - len({x["sample_id"] for x in kept if x["task"] == "killgen"})
        missing_mc = N_MC - len({x["sample_id"] for x in kept if x["task"] == "killmc"})
        resume = ["--resume"] if (run / "run.json").exists() else []  # killed before the run folder existed: start again
        r = subprocess.run([sys.executable, "-m", "alignbench", *argv, *resume], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (seed, r.stderr)
        assert "Traceback" not in r.stderr
        info = json.loads((run / "run.json").read_text())
        if not use_cache and resume:  # without a cache the resumed run asks the model for exactly the missing samples (4 choices each)
            assert info["model_calls"] == missing_gen + 4 * missing_mc, (seed, info["model_calls"], missing_gen, missing_mc)
        elif resume:  # with one, never more than that
            assert info["model_calls"] <= missing_gen + 4 * missing_mc
    else:
        assert rc == 0, seed
    recs = read_jsonl(samples)
    keys = [(r["task"], r["sample_id"]) for r in recs]
    assert len(keys) == len(set(keys)), f"seed {seed}: duplicated samples after {kills} kill(s)"
    ref = read_jsonl(reference / "samples.jsonl")
    assert sorted(keys) == sorted((r["task"], r["sample_id"]) for r in ref), f"seed {seed}: lost samples after {kills} kill(s)"
    assert _comparable(recs) == _comparable(ref), f"seed {seed}: records differ from the uninterrupted run"
    assert json.loads((run / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    return kills


@pytest.mark.parametrize("seed, use_cache, by_time", [(11, False, False), (12, True, False), (13, False, True)],
                         ids=["no-cache-by-progress", "cache-by-progress", "no-cache-by-time"])
def test_sigkill_then_resume_matches_uninterrupted_run(seed: int, use_cache: bool, by_time: bool, tasks_dir: Path,
                                                       reference: Path, tmp_path: Path) -> None:
    """Both cache modes and a kill at a random time since start (start-up included), each killed at least once."""
    assert _trial(seed, tasks_dir, reference, tmp_path, use_cache=use_cache, by_time=by_time) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 110))
def test_sigkill_then_resume_many_seeds(seed: int, tasks_dir: Path, reference: Path, tmp_path: Path) -> None:
    _trial(seed, tasks_dir, reference, tmp_path)


# `alignbench judge`: SIGKILL, then --resume ---------------------------------------------------------

N_JUDGE = 150


@pytest.fixture(scope="module")
def judge_server():
    from openai_server import OpenAIServer

    # a slow judge model (every request takes 20 ms) whose verdict depends only on the response
    with OpenAIServer(lambda req: f"ok\nVERDICT: {1 + sum(map(ord, req.text)) % 5}", delay=0.02) as srv:
        yield srv


@pytest.fixture(scope="module")
def judge_files(tmp_path_factory: pytest.TempPathFactory, judge_server) -> Path:
    d = tmp_path_factory.mktemp("judgekill")
    rows = [{"id": f"j{i:03d}", "prompt": f"Question {i}?", "response": f"Answer {i} " + "word " * (i % 7),
             "references": [f"Answer {i}"], "extra": {"k": i}} for i in range(N_JUDGE)]
    (d / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "rubric.j2").write_text("Rate 1-5.\n{{ prompt }}\n{{ response }}\nEnd with 'VERDICT: <1-5>'.")
    (d / "jury.yaml").write_text(f"name: slowjury\nkind: llm_rubric\nparams:\n  models: [openai:judge-a]\n"
                                 f"  model_args: {{base_url: '{judge_server.base_url}', max_retries: 0}}\n  template: rubric.j2\n"
                                 f"  scale: '1-5'\n  cache: false\n  concurrency: 4\n")
    assert main(["judge", "--judges", f"bleu,{d / 'jury.yaml'}", "--input", str(d / "in.jsonl"), "--output", str(d / "ref.jsonl")]) == 0
    return d


def _settled_count(srv, quiet: float = 1.0, limit: float = 20.0) -> int:
    """Requests the server has seen once none has arrived for ``quiet`` seconds: a request the killed
    process sent just before the kill may reach the server's thread a moment later."""
    n, since, end = len(srv.completion_requests()), time.time(), time.time() + limit
    while time.time() - since < quiet and time.time() < end:
        time.sleep(0.05)
        if (m := len(srv.completion_requests())) != n:
            n, since = m, time.time()
    return n


def _judge_trial(seed: int, d: Path, tmp: Path, srv) -> None:
    rng = random.Random(seed)
    out = tmp / "out.jsonl"
    partial = tmp / "out.jsonl.partial"
    argv = ["judge", "--judges", f"bleu,{d / 'jury.yaml'}", "--input", str(d / "in.jsonl"), "--output", str(out)]
    rc = None
    for _ in range(rng.randint(1, 2)):  # killed once or twice
        rc = _run_and_kill(argv + (["--resume"] if partial.exists() else []), partial, rng, total=N_JUDGE, by_time_share=0, max_jitter=0.3)
        if rc is not None:
            break
    if rc is None and out.exists() and not partial.exists():  # killed while exiting, after the complete output was written
        rc = 0
    if rc is None:
        assert not out.exists()  # the output appears only when every line is judged
        kept = partial.read_bytes().count(b"\n") if partial.exists() else 0
        before = _settled_count(srv)
        r = subprocess.run([sys.executable, "-m", "alignbench", *argv, "--resume"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert len(srv.completion_requests()) - before == N_JUDGE - kept  # only the lines not yet written are judged again
    assert not partial.exists()
    got = read_jsonl(out)
    ref = read_jsonl(d / "ref.jsonl")
    assert [x["id"] for x in got] == [x["id"] for x in ref], f"seed {seed}: lines lost, duplicated or reordered"
    assert got == ref, f"seed {seed}: judgments differ from the uninterrupted run"


@pytest.mark.parametrize("seed", [21])
def test_judge_sigkill_then_resume_matches_uninterrupted_run(seed: int, judge_files: Path, judge_server, tmp_path: Path) -> None:
    _judge_trial(seed, judge_files, tmp_path, judge_server)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 206))
def test_judge_sigkill_then_resume_many_seeds(seed: int, judge_files: Path, judge_server, tmp_path: Path) -> None:
    _judge_trial(seed, judge_files, tmp_path, judge_server)


def test_judge_resume_refuses_a_partial_file_of_other_input(judge_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.jsonl"
    (tmp_path / "o.jsonl.partial").write_text(json.dumps({"id": "other", "prompt": "x", "response": "y", "judgments": {}}) + "\n")
    rc = main(["judge", "--judges", "bleu", "--input", str(judge_files / "in.jsonl"), "--output", str(out), "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "is not input line 1 judged by bleu" in err and len(err.strip().splitlines()) == 1
    # without --resume the partial file (judged lines) is kept and the command refused; --overwrite discards it, with a note
    before = (tmp_path / "o.jsonl.partial").read_bytes()
    rc = main(["judge", "--judges", "bleu", "--input", str(judge_files / "in.jsonl"), "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "o.jsonl.partial holds the lines of an interrupted run" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "o.jsonl.partial").read_bytes() == before and not out.exists()
    rc = main(["judge", "--judges", "bleu", "--input", str(judge_files / "in.jsonl"), "--output", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 0 and "discarding" in err and len(read_jsonl(out)) == N_JUDGE
