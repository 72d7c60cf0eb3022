"""--shard I/N splits the samples; `alignbench merge` joins the shards into the unsharded run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignbench.run.task_setup import select_samples, shard_of
from alignbench.types import Sample

from conftest import read_jsonl, run_cli

N_ROWS = 60


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsharded run and 3 shards of the same eval: the harmful_rate task plus a 60-sample user task."""
    root = tmp_path_factory.mktemp("shards")
    rows = [{"id": f"q{i}", "prompt": f"Request {i}: please help with topic {i % 7}.", "category": "abc"[i % 3],
             "label": "harmful" if i % 2 else "benign"} for i in range(N_ROWS)]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "mytask.yaml").write_text(
        "name: mytask\ndataset:\n  data_files: data.jsonl\n  columns: {id: id, category: category}\n  meta_columns: [label]\n"
        "judges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    common = ["eval", "--model", "dummy", "--model-args", "refuse=0.4", "--tasks", f"harmful_rate,{root / 'mytask.yaml'}",
              "--seed", "7", "--output", str(root / "out"), "--no-cache",
              "--refusal-judge", "refusal_xstest", "--harm-judge", "none"]  # judges that load in no time: merging is the subject
    for run_id, extra in [("full", []), ("s0", ["--shard", "0/3"]), ("s1", ["--shard", "1/3"]), ("s2", ["--shard", "2/3", "--concurrency", "3"])]:
        r = run_cli(*common, "--run-id", run_id, *extra)
        assert r.returncode == 0, r.stderr
    return root / "out"


def _keys(run: Path) -> list[tuple[str, str]]:
    return [(r["task"], r["sample_id"]) for r in read_jsonl(run / "samples.jsonl")]


def test_shards_partition_the_samples(runs: Path) -> None:
    full = set(_keys(runs / "full"))
    parts = [set(_keys(runs / f"s{i}")) for i in range(3)]
    assert all(parts) and sum(len(p) for p in parts) == len(full) and set().union(*parts) == full
    for i in range(3):
        info = json.loads((runs / f"s{i}" / "run.json").read_text())
        assert info["shard"] == f"{i}/3" and info["config"]["shard"] == [i, 3]
        assert sum(t["n_samples"] for t in info["tasks"].values()) == len(parts[i])
        assert all(shard_of(t, s, 3) == i for t, s in parts[i])
    assert json.loads((runs / "full" / "run.json").read_text())["shard"] is None


def test_shard_of_is_stable_and_independent_of_order() -> None:
    samples = [Sample(id=str(i), prompt="p") for i in range(100)]
    picked = [{s.id for s in select_samples(samples, "t", None, (i, 4))} for i in range(4)]
    assert sum(map(len, picked)) == 100 and all(15 <= len(p) <= 35 for p in picked)
    assert {s.id for s in select_samples(samples[::-1], "t", None, (2, 4))} == picked[2]
    limited = [{s.id for s in select_samples(samples, "t", 10, (i, 4))} for i in range(4)]
    assert set().union(*limited) == {str(i) for i in range(10)}  # --limit first, then the shard


def test_merge_equals_the_unsharded_run(runs: Path, tmp_path: Path) -> None:
    r = run_cli("merge", str(runs / "s2"), str(runs / "s0"), str(runs / "s1"), "--output", str(tmp_path), "--run-id", "merged")
    assert r.returncode == 0, r.stderr
    merged, full = tmp_path / "merged", runs / "full"
    m_full = json.loads((full / "metrics.json").read_text())
    m_merged = json.loads((merged / "metrics.json").read_text())
    assert m_merged == m_full  # values, stderr, bootstrap CIs and by_category, exactly
    assert m_full["mytask"]["compliance_rate"]["ci_low"] < m_full["mytask"]["compliance_rate"]["ci_high"]  # a real CI
    assert sorted(_keys(merged)) == sorted(_keys(full))
    by_key = {(x["task"], x["sample_id"]): x for x in read_jsonl(full / "samples.jsonl")}
    for rec in read_jsonl(merged / "samples.jsonl"):
        assert rec["response"] == by_key[(rec["task"], rec["sample_id"])]["response"]
        assert rec["metrics"] == by_key[(rec["task"], rec["sample_id"])]["metrics"]
    info = json.loads((merged / "run.json").read_text())
    assert info["status"] == "complete" and info["run_id"] == "merged" and info["shard"] is None
    assert [m["shard"] for m in info["merged_from"]] == ["0/3", "1/3", "2/3"]
    assert info["tasks"]["mytask"]["n_samples"] == N_ROWS
    assert info["model_fingerprint"] == json.loads((full / "run.json").read_text())["model_fingerprint"]
    assert "compliance_rate" in r.stdout and "merged 3 shards" in r.stderr


def _merge_error(tmp_path: Path, *dirs: Path) -> str:
    r = run_cli("merge", *map(str, dirs), "--output", str(tmp_path / "m"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
    return r.stderr


def test_merge_refuses_duplicate_shards(runs: Path, tmp_path: Path) -> None:
    assert "shard 1/3 given twice" in _merge_error(tmp_path, runs / "s0", runs / "s1", runs / "s1", runs / "s2")
    copy = tmp_path / "copy_of_s1"
    shutil.copytree(runs / "s1", copy)
    assert "shard 1/3 given twice" in _merge_error(tmp_path, runs / "s0", runs / "s1", copy, runs / "s2")


def test_merge_refuses_overlapping_samples(runs: Path, tmp_path: Path) -> None:
    s0 = tmp_path / "s0"
    shutil.copytree(runs / "s0", s0)
    stolen = read_jsonl(runs / "s1" / "samples.jsonl")[0]
    with open(s0 / "samples.jsonl", "a") as f:
        f.write(json.dumps(stolen) + "\n")
    err = _merge_error(tmp_path, s0, runs / "s1", runs / "s2")
    assert f"duplicate sample {stolen['task']}/{stolen['sample_id']}" in err and "shards overlap" in err


def test_merge_refuses_missing_incomplete_and_mismatched_shards(runs: Path, tmp_path: Path) -> None:
    assert "shard(s) 2/3 missing" in _merge_error(tmp_path, runs / "s0", runs / "s1")
    assert "not a sharded run" in _merge_error(tmp_path, runs / "full", runs / "s1")

    failed = tmp_path / "failed"
    shutil.copytree(runs / "s2", failed)
    info = json.loads((failed / "run.json").read_text())
    (failed / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    assert "status is 'failed'" in _merge_error(tmp_path, runs / "s0", runs / "s1", failed)

    short = tmp_path / "short"
    shutil.copytree(runs / "s2", short)
    lines = (short / "samples.jsonl").read_text().splitlines(keepends=True)
    (short / "samples.jsonl").write_text("".join(lines[:-1]))
    assert "incomplete shard" in _merge_error(tmp_path, runs / "s0", runs / "s1", short)

    reseeded = tmp_path / "reseeded"
    shutil.copytree(runs / "s2", reseeded)
    info["config"]["seed"] = 8
    (reseeded / "run.json").write_text(json.dumps(info))
    assert "differs from" in _merge_error(tmp_path, runs / "s0", runs / "s1", reseeded) and "config.seed" in \
        _merge_error(tmp_path, runs / "s0", runs / "s1", reseeded)



def test_aggregation_does_not_depend_on_record_order() -> None:
    """Shards arrive in any order; bootstrap CIs depend on the order of values, so aggregation sorts."""
    import random

    from alignbench.scorers.base import Scorer, aggregate_records
    from alignbench.stats.intervals import summarize

    rng = random.Random(0)
    recs = [{"task": "t", "sample_id": f"s{i}", "category": "ab"[i % 2], "metrics": {"x": rng.random()}} for i in range(40)]
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    values = [r["metrics"]["x"] for r in recs]
    assert summarize(values, seed=7) != summarize([r["metrics"]["x"] for r in shuffled], seed=7)  # order matters...
    assert aggregate_records(shuffled, Scorer(), seed=7) == aggregate_records(recs, Scorer(), seed=7)  # ...but not here
