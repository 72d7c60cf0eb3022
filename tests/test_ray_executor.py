"""`alignbench eval --executor ray --shards 4` on a real local Ray (2 CPUs), started once for this module.

Each shard runs as a Ray task in a Ray worker process; faults come from the dummy backend's test hook
(ALIGNBENCH_DUMMY_FAIL), which the driver forwards to the shards with alignbench's other settings.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path

import pytest

from alignbench.run.task_setup import shard_of

from conftest import run_main

ray = pytest.importorskip("ray")

COMMON = ("--model", "dummy", "--model-args", "refuse=0.3", "--tasks", "harmful_rate,hhh_alignment", "--seed", "5")
RAY = ("--executor", "ray", "--shards", "4")
FAILS, DIES = "b-child-11", "h-child-11"  # the last harmful_rate samples of shards 1/4 and 3/4 (after their first chunk)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unsharded")
    rc, _, err = run_main("eval", *COMMON, "--output", out, "--run-id", "full", "--no-cache")
    assert rc == 0, err
    return out / "full"


def _read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def test_ray_shards_equal_the_unsharded_run_retry_a_failure_and_share_the_cache(unsharded: Path, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_DUMMY_FAIL", f"{FAILS}@{tmp_path / 'marks'}")  # a backend error once, in a Ray worker
    monkeypatch.setenv("ALIGNBENCH_DUMMY_CRASH", f"{DIES}@{tmp_path / 'marks'}")  # the worker process dies once
    cache = tmp_path / "main.sqlite"
    rc, _, err = run_main("eval", *COMMON, *RAY, "--output", tmp_path, "--run-id", "first", "--cache", cache)
    assert rc == 0, err
    assert _read(tmp_path / "first", "metrics.json") == _read(unsharded, "metrics.json")
    k_fail, k_die = shard_of("harmful_rate", FAILS, 4), shard_of("harmful_rate", DIES, 4)
    assert k_fail != k_die
    retries = sorted(x for x in err.splitlines() if "retry 1 of 2, resuming its run folder" in x)
    assert len(retries) == 2, err
    assert retries[0].startswith(f"alignbench: shard {k_fail}/4 failed (BackendError: dummy backend: injected")
    assert retries[1].startswith(f"alignbench: shard {k_die}/4 failed (") and "Worker" in retries[1]  # Ray's worker-died error
    for k in (k_fail, k_die):
        assert "resumed" in _read(tmp_path / "first.shards" / f"shard-{k}-of-4", "run.json")
    assert [x for x in err.splitlines() if "shards of first:" in x][-1].endswith("4 done, 0 running, 0 failed (of 4)")
    info = _read(tmp_path / "first", "run.json")
    assert info["executor"] == {"name": "ray", "shards": 4, "folder": str(tmp_path / "first.shards"),
                                "cpus_per_shard": 1.0, "gpus_per_shard": 0.0}

    # four workers wrote four cache files at once, reading the main one; the driver merged them
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == _read(unsharded, "run.json")["model_calls"]
    rc, _, err = run_main("eval", *COMMON, *RAY, "--output", tmp_path, "--run-id", "again", "--cache", cache)
    assert rc == 0, err
    assert _read(tmp_path / "again", "run.json")["model_calls"] == 0
    assert _read(tmp_path / "again", "metrics.json") == _read(unsharded, "metrics.json")


def test_ray_shard_that_keeps_failing_exits_3_and_resume_completes(unsharded: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_DUMMY_FAIL", FAILS)
    rc, _, err = run_main("eval", *COMMON, *RAY, "--output", tmp_path, "--run-id", "r", "--no-cache", "--shard-retries", "1")
    assert rc == 3, err
    k = shard_of("harmful_rate", FAILS, 4)
    errors = [x for x in err.splitlines() if x.startswith("alignbench: error:")]
    assert len(errors) == 1 and f"shard {k}/4 failed after 2 attempts" in errors[0]
    statuses = [_read(tmp_path / "r.shards" / f"shard-{j}-of-4", "run.json")["status"] for j in range(4)]
    assert statuses == ["failed" if j == k else "complete" for j in range(4)]

    monkeypatch.delenv("ALIGNBENCH_DUMMY_FAIL")
    rc, _, err = run_main(*shlex.split(errors[0].split("resume with: ", 1)[1])[1:])
    assert rc == 0, err
    assert _read(tmp_path / "r", "metrics.json") == _read(unsharded, "metrics.json")


@pytest.mark.slow
def test_ray_shards_of_a_tiny_hf_model_equal_the_unsharded_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ("eval", "--model", f"hf:{tiny_model_dir}", "--model-args", "device=cpu", "--tasks", "harmful_rate,hhh_alignment",
            "--limit", "12", "--max-new-tokens", "6", "--output", tmp_path, "--no-cache")
    rc, _, err = run_main(*args, "--run-id", "full")
    assert rc == 0, err
    rc, _, err = run_main(*args, *RAY, "--run-id", "sharded")
    assert rc == 0, err
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    assert _read(sharded, "metrics.json") == _read(full, "metrics.json")
    assert _read(sharded, "run.json")["model_fingerprint"] == _read(full, "run.json")["model_fingerprint"]
    by_key = {(r["task"], r["sample_id"]): r for r in map(json.loads, (full / "samples.jsonl").read_text().splitlines())}
    for r in map(json.loads, (sharded / "samples.jsonl").read_text().splitlines()):
        assert r["response"] == by_key[(r["task"], r["sample_id"])]["response"]
        # a shard shares other prompt prefixes than the whole run (backends/_prefix.py): float32 sums of
        # hundreds of nats may differ in the last bits
        expected = by_key[(r["task"], r["sample_id"])].get("loglikelihoods")
        assert r.get("loglikelihoods") == (None if expected is None else pytest.approx(expected, rel=1e-6))


@pytest.mark.slow
def test_cli_starts_a_local_ray_when_ray_address_names_none(tmp_path: Path) -> None:
    """The user's path: a fresh process, no Ray running in it and no RAY_ADDRESS; a local Ray is started and stopped."""
    import os

    from conftest import run_cli

    if os.environ.get("RAY_ADDRESS"):
        pytest.skip("RAY_ADDRESS names a cluster")
    base = ("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "20", "--output", str(tmp_path), "--no-cache", *RAY)
    r = run_cli(*base, "--run-id", "r")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r" / "run.json").read_text())["executor"]["name"] == "ray"
    assert "harmful_rate\trefusal_rate\t" in r.stdout and "4 done, 0 running, 0 failed (of 4)" in r.stderr
    r = run_cli(*base, "--run-id", "gpu", "--ray-gpus-per-shard", "1", env={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 2
    assert "alignbench: error: --ray-gpus-per-shard 1: the local Ray has 0 GPU(s)" in r.stderr and "Traceback" not in r.stderr
