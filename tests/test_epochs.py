"""--epochs, reducers, task clusters and the stratified --limit, against hand computations and statsmodels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statsmodels.stats.proportion import proportion_confint

from alignbench.run.evaluate import run_eval
from alignbench.run.settings import EvalConfig
from alignbench.stats.intervals import summarize
from alignbench.tasks.limit import stratified_limit
from alignbench.types import Sample

from conftest import REPO, read_jsonl, run_main


def _task(tmp: Path, n: int = 24, cluster: bool = False) -> Path:
    rows = [{"id": f"q{i:02d}", "prompt": f"Request {i} about thing {i * 3 % 7}", "category": "ab"[i % 2],
             "label": "harmful" if i % 3 else "benign", "family": f"f{i // 4}"} for i in range(n)]
    (tmp / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp / "t.yaml"
    y.write_text("name: mini\ndataset:\n  data_files: d.jsonl\n  columns: {id: id, category: category}\n  meta_columns: [label, family]\n"
                 + ("cluster: family\n" if cluster else "") + "judges: [refusal_xstest]\nscorer: harmful_rate\n")
    return y


def _eval(task: Path, out: Path, run_id: str, *extra: str) -> tuple[dict, list[dict]]:
    cache = () if "--cache" in extra else ("--no-cache",)
    r = run_main("eval", "--model", "dummy", "--model-args", "sample=1", "--tasks", str(task), "--output", str(out),
                 "--run-id", run_id, *cache, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((out / run_id / "metrics.json").read_text()), read_jsonl(out / run_id / "samples.jsonl")


def test_epochs_keep_every_response_with_its_own_seed_and_cache_key(tmp_path: Path) -> None:
    task, cache = _task(tmp_path), tmp_path / "cache.sqlite"
    metrics, recs = _eval(task, tmp_path / "out", "r", "--epochs", "3", "--temperature", "0.7", "--cache", str(cache))
    assert len(recs) == 72 and sorted({r["epoch"] for r in recs}) == [0, 1, 2]
    by_prompt: dict[str, list[str]] = {}
    for r in recs:
        by_prompt.setdefault(r["sample_id"], []).append(r["response"])
    assert all(len(v) == 3 for v in by_prompt.values())
    assert any(len(set(v)) > 1 for v in by_prompt.values())  # epochs sample differently
    again, recs2 = _eval(task, tmp_path / "out", "r2", "--epochs", "3", "--temperature", "0.7", "--cache", str(cache))
    assert all(r["cached"] for r in recs2)  # 72 cache entries, one per (prompt, epoch): none collapsed
    key = lambda r: (r["sample_id"], r["epoch"])  # noqa: E731
    assert {key(r): r["response"] for r in recs2} == {key(r): r["response"] for r in recs}
    assert again == metrics


def test_mean_reducer_clusters_by_prompt(tmp_path: Path) -> None:
    metrics, recs = _eval(_task(tmp_path), tmp_path / "out", "r", "--epochs", "4", "--temperature", "1.0")
    m = metrics["mini"]["refusal_rate"]
    vals = [(r["sample_id"], r["metrics"].get("refusal_rate")) for r in recs if r["metrics"].get("refusal_rate") is not None]
    assert m["value"] == pytest.approx(sum(v for _, v in vals) / len(vals))
    assert (m["epochs"], m["reducer"], m["n"], m["n_clusters"]) == (4, "mean", len(vals), 16)
    ref = summarize([v for _, v in sorted(vals)], clusters=[s for s, _ in sorted(vals)])
    assert (m["ci_low"], m["ci_high"], m["stderr"]) == pytest.approx((ref["ci_low"], ref["ci_high"], ref["stderr"]))
    naive = proportion_confint(sum(v for _, v in vals), len(vals), method="wilson")
    assert m["ci_high"] - m["ci_low"] >= naive[1] - naive[0] - 1e-12  # never narrower than independent answers
    assert m["n_eff"] <= m["n"]


@pytest.mark.parametrize("reducer, k", [("any", 1), ("at_least_2", 2), ("at_least_3", 3)])
def test_any_and_at_least_k_reduce_per_prompt(tmp_path: Path, reducer: str, k: int) -> None:
    metrics, recs = _eval(_task(tmp_path), tmp_path / "out", "r", "--epochs", "3", "--temperature", "0.7", "--reducer", reducer)
    per: dict[str, list[float]] = {}
    for r in recs:
        if r["metrics"].get("refusal_rate") is not None:
            per.setdefault(r["sample_id"], []).append(r["metrics"].get("refusal_rate"))
    hits = sum(sum(v) >= k for v in per.values())
    m = metrics["mini"]["refusal_rate"]
    assert (m["reducer"], m["epochs"], m["n"]) == (reducer, 3, len(per)) and m["value"] == pytest.approx(hits / len(per))
    assert (m["ci_low"], m["ci_high"]) == pytest.approx(proportion_confint(hits, len(per), method="wilson"))


def test_gate_pairs_prompts_with_epochs_reduced(tmp_path: Path) -> None:
    task = _task(tmp_path)
    _eval(task, tmp_path / "out", "a", "--epochs", "3", "--temperature", "0.7", "--reducer", "any")
    _eval(task, tmp_path / "out", "b", "--epochs", "3", "--temperature", "0.7", "--reducer", "any", "--seed", "11")
    rules = tmp_path / "g.yaml"
    rules.write_text("gates:\n  - {task: mini, metric: refusal_rate, max_decrease: 1.0}\n")
    r = run_main("gate", "--baseline", str(tmp_path / "out" / "a"), "--candidate", str(tmp_path / "out" / "b"), "--rules", str(rules))
    assert r.returncode == 0, r.stderr
    row = [c.strip() for c in next(x for x in r.stdout.splitlines() if x.startswith("| mini/")).strip("|").split(" | ")]
    assert row[6] == "16"  # 16 harmful prompts paired, not 48 answers
    d = run_main("drift", str(tmp_path / "out" / "a"), str(tmp_path / "out" / "b"), "--output", str(tmp_path / "d"), "--run-id", "d")
    assert d.returncode == 0, d.stderr
    drow = next(x.split("\t") for x in d.stdout.splitlines() if x.startswith("mini\trefusal_rate\t"))
    assert (row[2], row[3], row[4], row[5], row[6]) == tuple(drow[2:7])  # the same per-prompt comparison as drift
    dj = json.loads((tmp_path / "d" / "d" / "drift.json").read_text())["tasks"]["mini"]["metrics"]["refusal_rate"]
    assert dj["test"] == "mcnemar_exact" and dj["n"] == 16  # "any" keeps the per-prompt values 0/1


def test_epochs_resume_redoes_only_missing_epochs(tmp_path: Path) -> None:
    task, out = _task(tmp_path), tmp_path / "out"
    full, recs = _eval(task, out, "r", "--epochs", "3", "--temperature", "0.7")
    lines = (out / "r" / "samples.jsonl").read_text().splitlines(keepends=True)
    (out / "r" / "samples.jsonl").write_text("".join(lines[:50]))
    info = json.loads((out / "r" / "run.json").read_text())
    (out / "r" / "run.json").write_text(json.dumps({**info, "status": "running"}))
    r = run_main("eval", "--model", "dummy", "--model-args", "sample=1", "--tasks", str(task), "--output", str(out), "--run-id", "r",
                 "--epochs", "3", "--temperature", "0.7", "--resume", "--no-cache")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "r" / "run.json").read_text())["model_calls"] == 22
    assert json.loads((out / "r" / "metrics.json").read_text()) == full


def test_epochs_need_sampling_and_a_known_reducer(tmp_path: Path) -> None:
    task = _task(tmp_path)
    r = run_main("eval", "--model", "dummy", "--tasks", str(task), "--output", str(tmp_path), "--epochs", "2", "--no-cache")
    assert r.returncode == 2 and "decodes at temperature 0" in r.stderr and r.stderr.count("\n") == 1
    r = run_main("eval", "--model", "dummy", "--tasks", str(task), "--output", str(tmp_path), "--reducer", "most", "--no-cache")
    assert r.returncode == 2 and "--reducer 'most'" in r.stderr


def test_task_cluster_field_widens_intervals(tmp_path: Path) -> None:
    metrics, recs = _eval(_task(tmp_path, cluster=True), tmp_path / "out", "r")
    assert all(r["cluster"] == f"f{int(r['sample_id'][1:]) // 4}" for r in recs)
    m = metrics["mini"]["refusal_rate"]
    vals = [(r["cluster"], r["metrics"].get("refusal_rate")) for r in recs if r["metrics"].get("refusal_rate") is not None]
    ref = summarize([v for _, v in vals], clusters=[c for c, _ in vals])
    assert m["n_clusters"] == 6 and (m["ci_low"], m["ci_high"]) == pytest.approx((ref["ci_low"], ref["ci_high"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text((tmp_path / "t.yaml").read_text().replace("cluster: family", "cluster: famliy"))
    r = run_main("eval", "--model", "dummy", "--tasks", str(bad), "--output", str(tmp_path / "o2"), "--no-cache")
    assert r.returncode == 2 and "field 'cluster'" in r.stderr and "'famliy'" in r.stderr


def test_drift_perturbation_task_clusters_by_base_prompt(tmp_path: Path) -> None:
    metrics, recs = _eval(REPO / "tasks" / "drift" / "drift_perturb.yaml", tmp_path / "out", "r")
    assert {r["cluster"] for r in recs} == {r["meta"]["base_id"] for r in recs} and len({r["cluster"] for r in recs}) == 16
    assert metrics["drift_perturb"]["perturbation_flip_rate"]["n_clusters"] == 16


# --limit ---------------------------------------------------------------------------------------------
def _samples(spec: list[tuple[str, str]]) -> list[Sample]:
    return [Sample(id=f"s{i}", prompt="p", category=c, meta={"label": lab}) for i, (lab, c) in enumerate(spec)]


def test_stratified_limit_round_robin_in_data_order() -> None:
    # XSTest-like: all safe prompts first, then the unsafe ones
    data = _samples([("safe", "a")] * 6 + [("safe", "b")] * 4 + [("unsafe", "a")] * 5 + [("unsafe", "c")] * 3)
    got = [s.id for s in stratified_limit(data, 7)]
    # strata in first-seen order: safe/a (s0..s5), safe/b (s6..s9), unsafe/a (s10..s14), unsafe/c (s15..s17)
    # round 1: s0 s6 s10 s15; round 2: s1 s7 s11 -> 7, returned in data order
    assert got == ["s0", "s1", "s6", "s7", "s10", "s11", "s15"]
    assert [s.id for s in stratified_limit(data, 3)] == ["s0", "s6", "s10"]
    one = _samples([("x", "a")] * 5)
    assert [s.id for s in stratified_limit(one, 3)] == ["s0", "s1", "s2"]  # one stratum: the first N
    assert stratified_limit(data, 100) == data


def test_limit_on_a_task_keeps_every_label(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "prompt": f"p{i}", "label": "benign", "category": "c"} for i in range(20)] + \
           [{"id": f"h{i}", "prompt": f"h{i}", "label": "harmful", "category": "c"} for i in range(20)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "t.yaml"
    y.write_text("name: mini\ndataset:\n  data_files: d.jsonl\n  columns: {id: id, category: category}\n  meta_columns: [label]\n"
                 "judges: [refusal_xstest]\nscorer: harmful_rate\n")
    run_eval(EvalConfig(model="dummy", tasks=str(y), output=str(tmp_path / "out"), run_id="r", no_cache=True, limit=10))
    recs = read_jsonl(tmp_path / "out" / "r" / "samples.jsonl")
    assert [r["sample_id"] for r in recs] == ["q0", "q1", "q2", "q3", "q4", "h0", "h1", "h2", "h3", "h4"]
    r = run_main("eval", "--help")
    assert "stratified" in r.stdout and "label x category" in r.stdout
