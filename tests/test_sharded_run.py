"""`alignbench eval --shards N` (local executor): shard folders, merge, retries, resume, the cache, bad usage.

The same driver runs the shards on Ray (tests/test_ray_executor.py); here they run in this process,
so retry and resume paths are cheap to check. Faults come from the dummy backend's test hook
(ALIGNBENCH_DUMMY_FAIL), which a shard reads from its environment.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import sys
from pathlib import Path

import pytest

from alignbench.run.task_setup import shard_of
from alignbench.scale.sharded import resume_command

from conftest import read_jsonl, run_main

TASKS = "harmful_rate,hhh_alignment"  # generation + multiple choice
COMMON = ("--model", "dummy", "--model-args", "refuse=0.3", "--tasks", TASKS, "--seed", "5")
VICTIM = "b-child-11"  # harmful_rate sample 74 of 74 in shard 1/4: after the first chunk (64 samples) is written
CHUNK = 64


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unsharded")
    rc, _, err = run_main("eval", *COMMON, "--output", out, "--run-id", "full", "--no-cache")
    assert rc == 0, err
    return out / "full"


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def _error_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.startswith("alignbench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_shards_run_merge_and_equal_the_unsharded_run(unsharded: Path, tmp_path: Path) -> None:
    rc, out, err = run_main("eval", *COMMON, "--output", tmp_path, "--run-id", "sh", "--shards", "4", "--no-cache")
    assert rc == 0, err
    merged = tmp_path / "sh"
    assert _metrics(merged) == _metrics(unsharded)  # values, CIs and by_category, exactly
    assert sorted((r["task"], r["sample_id"]) for r in read_jsonl(merged / "samples.jsonl")) == \
        sorted((r["task"], r["sample_id"]) for r in read_jsonl(unsharded / "samples.jsonl"))
    info = _info(merged)
    assert info["status"] == "complete" and info["shard"] is None and info["executor"]["shards"] == 4
    assert [m["shard"] for m in info["merged_from"]] == ["0/4", "1/4", "2/4", "3/4"]
    assert info["model_calls"] == _info(unsharded)["model_calls"]
    # token totals and judge-model calls are the whole run's, not the first shard's
    assert info["tokens"] == _info(unsharded)["tokens"] and info["tokens"]["samples"] == len(read_jsonl(merged / "samples.jsonl"))
    assert info["judge_model_calls"] == _info(unsharded)["judge_model_calls"]
    for k in range(4):  # each shard a normal run folder of its own samples
        shard = tmp_path / "sh.shards" / f"shard-{k}-of-4"
        assert _info(shard)["status"] == "complete" and _info(shard)["shard"] == f"{k}/4"
        recs = read_jsonl(shard / "samples.jsonl")
        assert recs and all(shard_of(r["task"], r["sample_id"], 4) == k for r in recs)
    assert "harmful_rate\tcompliance_rate\t" in out
    progress = [x for x in err.splitlines() if x.startswith("alignbench: shards of sh:")]
    assert progress[0].endswith("0 done, 4 running, 0 failed (of 4)") and progress[-1].endswith("4 done, 0 running, 0 failed (of 4)")


def test_a_failed_shard_is_retried_resuming_its_folder(unsharded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_DUMMY_FAIL", f"{VICTIM}@{tmp_path / 'marks'}")  # fails once
    rc, _, err = run_main("eval", *COMMON, "--output", tmp_path / "out", "--run-id", "r", "--shards", "4", "--no-cache")
    assert rc == 0, err
    k = shard_of("harmful_rate", VICTIM, 4)
    retries = [x for x in err.splitlines() if "retry" in x]
    assert len(retries) == 1 and f"shard {k}/4 failed (BackendError: dummy backend: injected failure" in retries[0]
    assert "retry 1 of 2, resuming its run folder" in retries[0]
    assert _metrics(tmp_path / "out" / "r") == _metrics(unsharded)
    shard = _info(tmp_path / "out" / "r.shards" / f"shard-{k}-of-4")
    assert "resumed" in shard  # the retry resumed the folder: the first chunk (64 samples) was not asked for again
    recs = read_jsonl(tmp_path / "out" / "r.shards" / f"shard-{k}-of-4" / "samples.jsonl")
    fresh = sum(len(r["choices"]) if "choices" in r else 1 for r in recs)  # one request per generation or per choice
    assert shard["model_calls"] == fresh - CHUNK


def test_a_shard_that_keeps_failing_exits_3_and_resume_runs_only_the_rest(unsharded: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_DUMMY_FAIL", VICTIM)  # always
    out = tmp_path / "out"
    rc, _, err = run_main("eval", *COMMON, "--output", out, "--run-id", "r", "--shards", "4", "--no-cache", "--shard-retries", "1")
    assert rc == 3, err
    k = shard_of("harmful_rate", VICTIM, 4)
    assert len(read_jsonl(out / "r.shards" / f"shard-{k}-of-4" / "samples.jsonl")) == CHUNK  # whole chunks kept
    line = _error_line(err)
    assert f"shard {k}/4 failed after 2 attempts: BackendError: dummy backend: injected failure" in line
    assert f"3 finished shard(s) kept in {out / 'r.shards'}" in line
    cmd = line.split("resume with: ", 1)[1]
    assert cmd == shlex.join(["alignbench", "eval", *COMMON, "--output", str(out), "--shards", "4", "--no-cache",
                              "--shard-retries", "1", "--run-id", "r", "--resume"])
    assert not (out / "r").exists()
    status = {j: _info(out / "r.shards" / f"shard-{j}-of-4")["status"] for j in range(4)}
    assert status == {j: ("failed" if j == k else "complete") for j in range(4)}
    before = {j: (out / "r.shards" / f"shard-{j}-of-4" / "run.json").read_text() for j in range(4) if j != k}

    monkeypatch.delenv("ALIGNBENCH_DUMMY_FAIL")
    rc, _, err = run_main(*shlex.split(cmd)[1:])
    assert rc == 0, err
    assert _metrics(out / "r") == _metrics(unsharded)
    assert all((out / "r.shards" / f"shard-{j}-of-4" / "run.json").read_text() == t for j, t in before.items())  # untouched
    assert [x for x in err.splitlines() if "shards of r:" in x][0].endswith("3 done, 1 running, 0 failed (of 4)")
    rc, _, err = run_main(*shlex.split(cmd)[1:])  # once more: nothing to do
    assert rc == 0 and "already complete" in err


def test_shard_caches_merge_into_the_main_cache_and_serve_a_rerun(unsharded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "main.sqlite"
    args = ("eval", *COMMON, "--output", tmp_path, "--shards", "4", "--cache", cache)
    rc, _, err = run_main(*args, "--run-id", "first")
    assert rc == 0, err
    assert not (tmp_path / "first.shards" / "cache").exists()  # copied into the main cache, then removed
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]
    assert n == _info(unsharded)["model_calls"] == _info(tmp_path / "first")["model_calls"] > 0
    rc, _, err = run_main(*args, "--run-id", "again")
    assert rc == 0, err
    assert _info(tmp_path / "again")["model_calls"] == 0
    assert all(_info(tmp_path / "again.shards" / f"shard-{k}-of-4")["model_calls"] == 0 for k in range(4))
    assert _metrics(tmp_path / "again") == _metrics(unsharded)
    assert "(model calls: 0)" in err


@pytest.mark.parametrize("extra, message", [
    (["--executor", "ray"], "--executor ray needs --shards N"),
    (["--ray-gpus-per-shard", "1"], "need --executor ray"),
    (["--shards", "2", "--ray-cpus-per-shard", "2"], "need --executor ray"),
    (["--shards", "2", "--shard", "0/2"], "pass only one of them"),
    (["--shards", "2", "--resume"], "--resume with --shards needs the --run-id"),
    (["--shards", "2", "--resume", "--run-id", "nope"], "no sharded run 'nope'"),
    (["--shards", "2", "--tasks", "no_such_task"], "no_such_task"),
])
def test_bad_usage_is_one_line_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", tmp_path, "--no-cache", *extra)
    assert rc == 2, err
    assert message in _error_line(err)
    assert not any(tmp_path.iterdir())


def test_existing_run_and_other_shard_count_are_refused(tmp_path: Path) -> None:
    args = ("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "8", "--output", tmp_path, "--run-id", "r", "--no-cache")
    assert run_main(*args, "--shards", "2").returncode == 0
    rc, _, err = run_main(*args, "--shards", "2")
    assert rc == 2 and "already exists" in _error_line(err)
    rc, _, err = run_main(*args, "--shards", "3", "--resume")
    assert rc == 2 and "was made with --shards 2, not 3" in _error_line(err)


def test_without_ray_installed_the_ray_executor_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", tmp_path, "--shards", "2",
                          "--executor", "ray", "--no-cache")
    assert rc == 2
    assert _error_line(err) == "alignbench: error: --executor ray needs Ray, which is not installed: pip install 'alignbench[ray]'"


def test_resume_command_replaces_run_id_and_resume() -> None:
    argv = ["alignbench", "eval", "--model", "hf:my model", "--run-id", "old", "--resume", "--run-id=x", "--shards", "4"]
    assert resume_command(argv, "new") == "alignbench eval --model 'hf:my model' --shards 4 --run-id new --resume"


def test_resume_rebuilds_a_merge_cut_short_but_never_removes_another_run(tmp_path: Path) -> None:
    args = ("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "8", "--output", tmp_path, "--run-id", "r",
            "--no-cache", "--shards", "2")
    assert run_main(*args).returncode == 0
    merged = tmp_path / "r"
    want = _metrics(merged)
    info = _info(merged)
    (merged / "run.json").write_text(json.dumps({**info, "status": "running"}))  # killed while merging
    (merged / "metrics.json").unlink()
    rc, _, err = run_main(*args, "--resume")
    assert rc == 0, err
    assert _metrics(merged) == want and _info(merged)["status"] == "complete"

    info = _info(merged)
    del info["merged_from"]
    (merged / "run.json").write_text(json.dumps({**info, "status": "failed"}))  # a run of its own under that name
    rc, _, err = run_main(*args, "--resume")
    assert rc == 2 and "is not this sharded run's merged folder" in _error_line(err)
    assert (merged / "samples.jsonl").is_file()
