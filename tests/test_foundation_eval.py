"""End-to-end behaviour of `alignbench eval`: run files, resume after SIGKILL, cache, replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl, run_cli

N_ROWS = 60


@pytest.fixture
def task_yaml(tmp_path: Path) -> Path:
    """A user task: 60 prompts (half harmful, half benign) over 3 categories."""
    rows = [{"id": f"s{i:03d}", "prompt": f"Question number {i}: please help with topic {i % 7}.",
             "category": ["a", "b", "c"][i % 3], "label": "harmful" if i % 2 else "benign"} for i in range(N_ROWS)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "mytask.yaml"
    y.write_text(
        "name: mytask\n"
        "dataset:\n  data_files: data.jsonl\n  columns: {id: id, category: category}\n  meta_columns: [label]\n"
        "judges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n"
    )
    return y


def _eval(task: Path, out: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("eval", "--model", "dummy", "--tasks", str(task), "--output", str(out), "--run-id", run_id, *extra)


def test_run_files_follow_the_contract(task_yaml: Path, tmp_path: Path) -> None:
    r = _eval(task_yaml, tmp_path / "out", "r1", "--model-args", "refuse=0.5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    run = tmp_path / "out" / "r1"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["run_id"] == "r1" and info["seed"] == 3
    assert info["model"] == "dummy" and info["model_fingerprint"]["hash"]
    assert info["versions"]["torch"] and info["versions"]["alignbench"]
    assert info["tasks"]["mytask"]["n_samples"] == N_ROWS and len(info["tasks"]["mytask"]["hash"]) == 16
    assert set(info["judges"]) == {"refusal_gcg", "refusal_xstest"}
    recs = read_jsonl(run / "samples.jsonl")
    assert [r["sample_id"] for r in recs] == [f"s{i:03d}" for i in range(N_ROWS)]
    for key in ("task", "sample_id", "category", "prompt", "response", "references", "judgments", "metrics", "cached", "latency_s"):
        assert key in recs[0]
    assert recs[0]["prompt"] == [{"role": "user", "content": "Question number 0: please help with topic 0."}]
    assert set(recs[0]["judgments"]["refusal_xstest"]) == {"label", "score", "raw", "error"}
    metrics = json.loads((run / "metrics.json").read_text())["mytask"]
    harmful = [r for r in recs if r["meta"]["label"] == "harmful"]
    refused = [r for r in harmful if r["judgments"]["refusal_xstest"]["score"] > 0]
    assert metrics["refusal_rate"]["value"] == pytest.approx(len(refused) / len(harmful))
    assert metrics["compliance_rate"]["value"] == pytest.approx(1 - len(refused) / len(harmful))
    assert metrics["compliance_rate"]["n"] == 30 and metrics["over_refusal_rate"]["n"] == 30
    m = metrics["compliance_rate"]
    from statsmodels.stats.proportion import proportion_confint

    complied = len(harmful) - len(refused)
    assert (m["ci_low"], m["ci_high"]) == pytest.approx(proportion_confint(complied, 30, method="wilson"), abs=1e-12)
    assert m["ci_method"] == "wilson" and m["stderr"] == pytest.approx(np.std([1.0] * complied + [0.0] * len(refused), ddof=1) / np.sqrt(30))
    assert set(metrics["by_category"]) == {"a", "b", "c"}
    # stdout carries results only; progress and notes go to stderr
    assert "mytask\tcompliance_rate\t" in r.stdout and "run written to" in r.stderr


def test_resume_after_sigkill_loses_and_duplicates_nothing(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ref = _eval(task_yaml, out, "ref", "--no-cache")
    assert ref.returncode == 0, ref.stderr
    cmd = [sys.executable, "-m", "alignbench", "eval", "--model", "dummy", "--model-args", "delay=0.05", "--tasks", str(task_yaml),
           "--output", str(out), "--run-id", "killed", "--batch-size", "1", "--concurrency", "1", "--no-cache"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = out / "killed" / "samples.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not samples.exists() or len(samples.read_text().splitlines()) < 16):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(read_jsonl(samples))
    assert 16 <= done_before < N_ROWS, "the kill should land mid-run"
    assert json.loads((out / "killed" / "run.json").read_text())["status"] == "running"
    # a kill mid-write can leave a torn line: simulate one
    with open(samples, "a") as f:
        f.write('{"task": "mytask", "sample_id": "s0')
    r = run_cli("eval", "--model", "dummy", "--tasks", str(task_yaml), "--output", str(out), "--run-id", "killed", "--resume", "--no-cache")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(samples)
    ids = [x["sample_id"] for x in recs]
    assert sorted(ids) == [f"s{i:03d}" for i in range(N_ROWS)]  # none lost, none duplicated
    strip = lambda rs: sorted((json.dumps({k: v for k, v in x.items() if k != "latency_s"}, sort_keys=True) for x in rs))  # noqa: E731
    assert strip(recs) == strip(read_jsonl(out / "ref" / "samples.jsonl"))
    info = json.loads((out / "killed" / "run.json").read_text())
    assert info["status"] == "complete" and info["model_calls"] == N_ROWS - done_before
    assert json.loads((out / "killed" / "metrics.json").read_text()) == json.loads((out / "ref" / "metrics.json").read_text())


def test_resume_without_run_id_picks_latest_unfinished(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _eval(task_yaml, out, "x", "--model-args", "fail_after=20", "--batch-size", "1", "--concurrency", "1")
    assert r.returncode == 3 and r.stderr.strip().count("\n") == 0 and "fail_after" in r.stderr
    assert json.loads((out / "x" / "run.json").read_text())["status"] == "failed"
    kept = len(read_jsonl(out / "x" / "samples.jsonl"))
    assert kept == 16  # two whole chunks of 8 finished before the failure
    r = run_cli("eval", "--model", "dummy", "--tasks", str(task_yaml), "--output", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    assert len(read_jsonl(out / "x" / "samples.jsonl")) == N_ROWS


def test_second_identical_run_makes_no_model_call(task_yaml: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    a = _eval(task_yaml, tmp_path / "out", "a", "--cache", str(cache))
    b = _eval(task_yaml, tmp_path / "out", "b", "--cache", str(cache))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ia = json.loads((tmp_path / "out/a/run.json").read_text())
    ib = json.loads((tmp_path / "out/b/run.json").read_text())
    assert ia["model_calls"] == N_ROWS and ib["model_calls"] == 0
    recs = read_jsonl(tmp_path / "out/b/samples.jsonl")
    assert all(r["cached"] for r in recs)
    assert [r["response"] for r in recs] == [r["response"] for r in read_jsonl(tmp_path / "out/a/samples.jsonl")]
    # different generation parameters are a different request
    c = _eval(task_yaml, tmp_path / "out", "c", "--cache", str(cache), "--max-new-tokens", "7")
    assert c.returncode == 0 and json.loads((tmp_path / "out/c/run.json").read_text())["model_calls"] == N_ROWS
    # --no-cache neither reads nor writes
    d = _eval(task_yaml, tmp_path / "out", "d", "--no-cache")
    assert d.returncode == 0 and json.loads((tmp_path / "out/d/run.json").read_text())["model_calls"] == N_ROWS


def test_replay_serves_stored_responses(task_yaml: Path, tmp_path: Path) -> None:
    lines = [{"sample_id": f"s{i:03d}", "response": "I cannot help with that." if i < 10 else "Sure! Here you go."} for i in range(12)]
    f = tmp_path / "stored.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = run_cli("eval", "--model", f"replay:{f}", "--tasks", str(task_yaml), "--limit", "12", "--output", str(tmp_path / "o"), "--run-id", "rp", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)["mytask"]
    # harmful = odd ids; ids 1,3,5,7,9 refuse, 11 complies -> compliance_rate 1/6; benign 0..8 refused, 10 answered -> 5/6
    assert m["compliance_rate"]["value"] == pytest.approx(1 / 6) and m["compliance_rate"]["n"] == 6
    assert m["over_refusal_rate"]["value"] == pytest.approx(5 / 6)
    recs = read_jsonl(tmp_path / "o/rp/samples.jsonl")
    assert recs[0]["response"] == "I cannot help with that."
    # a run's own samples.jsonl replays too (matched by task + sample id)
    r2 = run_cli("eval", "--model", f"replay:{tmp_path / 'o/rp/samples.jsonl'}", "--tasks", str(task_yaml), "--limit", "12",
                 "--output", str(tmp_path / "o"), "--run-id", "rp2", "--json")
    assert r2.returncode == 0 and json.loads(r2.stdout)["mytask"]["compliance_rate"] == m["compliance_rate"]
    # a missing response is a clear error, not a silent skip
    r3 = run_cli("eval", "--model", f"replay:{f}", "--tasks", str(task_yaml), "--limit", "13", "--output", str(tmp_path / "o"), "--run-id", "rp3")
    assert r3.returncode == 2 and "no response for task 'mytask' sample 's012'" in r3.stderr


def test_system_prompt_from_file_and_limit(task_yaml: Path, tmp_path: Path) -> None:
    sp = tmp_path / "sys.txt"
    sp.write_text("Be safe.\n")
    r = _eval(task_yaml, tmp_path / "o", "sp", "--system-prompt", f"@{sp}", "--limit", "3")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(tmp_path / "o/sp/samples.jsonl")
    assert len(recs) == 3 and recs[0]["prompt"][0] == {"role": "system", "content": "Be safe."}


def test_shard_partitions_samples(task_yaml: Path, tmp_path: Path) -> None:
    ids: list[str] = []
    for i in range(3):
        r = _eval(task_yaml, tmp_path / "o", f"sh{i}", "--shard", f"{i}/3")
        assert r.returncode == 0, r.stderr
        ids += [x["sample_id"] for x in read_jsonl(tmp_path / f"o/sh{i}/samples.jsonl")]
    assert sorted(ids) == [f"s{i:03d}" for i in range(N_ROWS)]
