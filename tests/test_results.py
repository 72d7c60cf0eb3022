"""alignbench.results: tidy run and sample tables from run folders."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from alignbench.errors import UsageError
from alignbench.results import JUDGE_COLUMNS, RUN_COLUMNS, load_runs, load_samples, per_sample_values

from runs_factory import CATEGORIES, make_run, rewrite_samples, write_task


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    task = write_task(root / "task", n=40)
    make_run(task, root / "runs", "low", 0.9)
    make_run(task, root / "runs", "high", 0.3)
    (root / "runs" / "notes").mkdir()  # a stray folder among runs is ignored
    return root / "runs"


def test_load_runs_is_tidy_and_matches_metrics_json(out: Path) -> None:
    df = load_runs(out)
    assert list(df.columns) == RUN_COLUMNS + JUDGE_COLUMNS
    assert sorted(df.run_id.unique()) == ["high", "low"]
    assert not df.duplicated(["run_id", "task", "metric", "breakdown", "category"]).any()
    for rid in ("low", "high"):
        metrics = json.loads((out / rid / "metrics.json").read_text())["hr"]
        info = json.loads((out / rid / "run.json").read_text())
        mine = df[df.run_id == rid]
        overall = mine[mine.category.isna()].set_index("metric")
        assert sorted(overall.index) == ["compliance_rate", "harm_judge_failures", "harmful_rate", "over_refusal_rate", "refusal_rate"]
        for metric, row in overall.iterrows():
            rec = metrics[metric]
            assert row.value == pytest.approx(rec["value"]) and row.n == rec["n"]
            if rec["ci_low"] is None:  # a count (harm_judge_failures) has no interval
                assert pd.isna(row.ci_low) and pd.isna(row.ci_high) and pd.isna(row.stderr)
            else:
                assert row.ci_low == pytest.approx(rec["ci_low"]) and row.ci_high == pytest.approx(rec["ci_high"])
                assert row.stderr == pytest.approx(rec["stderr"])
            assert row.model == "dummy" and row.status == "complete" and row.created == info["created"]
            assert row.model_fingerprint == info["model_fingerprint"]["hash"] and row.task == "hr"
        cats = mine[mine.breakdown == "category"]
        assert set(cats.category) == set(CATEGORIES)
        for _, row in cats.iterrows():
            assert row.value == pytest.approx(metrics["by_category"][row.category][row.metric]["value"])
        assert len(cats) == sum(len(v) for v in metrics["by_category"].values())
    assert df.value.dtype == float and str(df.n.dtype) == "Int64"
    # the same table from a list of run folders, or from one run folder
    both = load_runs([out / "low", out / "high"])
    assert list(both.run_id.unique()) == ["low", "high"] and len(both) == len(df)
    assert set(load_runs(out / "low").run_id) == {"low"}
    # how each metric was decided and its corrected rate travel with it (metrics.json's judge / corrected)
    for rid in ("low", "high"):
        metrics = json.loads((out / rid / "metrics.json").read_text())["hr"]
        overall = df[(df.run_id == rid) & df.category.isna()].set_index("metric")
        rec = metrics["refusal_rate"]
        row = overall.loc["refusal_rate"]
        assert row.judge == rec["judge"] and row.ci_method == rec.get("ci_method")
        assert row.corrected == pytest.approx(rec["corrected"]["value"])
        assert (row.corrected_ci_low, row.corrected_ci_high) == pytest.approx((rec["corrected"]["ci_low"], rec["corrected"]["ci_high"]))
        assert row.judge_sensitivity == pytest.approx(rec["judge_validity"]["sensitivity"]["value"])
        assert row.judge_specificity == pytest.approx(rec["judge_validity"]["specificity"]["value"])
        assert pd.isna(overall.loc["harm_judge_failures"].corrected)  # a count: nothing to correct
    # pivot: runs as columns, as the notebook does
    piv = df[df.category.isna()].pivot_table(index=["task", "metric"], columns="run_id", values="value")
    assert piv.loc[("hr", "harmful_rate"), "high"] > piv.loc[("hr", "harmful_rate"), "low"]


def test_non_run_paths_are_usage_errors(out: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no such run folder"):
        load_runs(tmp_path / "missing")
    with pytest.raises(UsageError, match=r"not a run folder \(no run.json\) and holds no run folders"):
        load_runs(tmp_path)
    with pytest.raises(UsageError, match="no run folders given"):
        load_runs([])
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UsageError, match="x.txt: not a run folder"):
        load_runs(tmp_path / "x.txt")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    with pytest.raises(UsageError, match="run.json: invalid JSON"):
        load_runs(broken)


def test_incomplete_runs_error_when_named_and_are_skipped_in_a_parent(out: Path, tmp_path: Path) -> None:
    parent = tmp_path / "runs"
    shutil.copytree(out / "low", parent / "low")
    shutil.copytree(out / "high", parent / "running")
    (parent / "running" / "metrics.json").unlink()
    with pytest.warns(UserWarning, match="running: no metrics.json"):
        df = load_runs(parent)
    assert set(df.run_id) == {"low"}
    with pytest.raises(UsageError, match=r"no metrics.json \(run incomplete\?\)"):
        load_runs(parent / "running")


def test_generic_tasks_and_other_breakdowns(tmp_path: Path) -> None:
    """Any task/metric works; by_<x> groups become breakdown x; non-metric extras are skipped."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "r", "model": "hf:m", "status": "complete", "created": "t",
                                              "model_fingerprint": {"id": "m", "hash": "abc"}}))
    rec = lambda v, n: {"value": v, "stderr": None, "ci_low": None, "ci_high": None, "n": n}  # noqa: E731
    (run / "metrics.json").write_text(json.dumps({
        "compression": {"constraint_compliance": rec(0.7, 50), "kappa": rec(float("nan"), 0), "curve": [1, 2, 3],
                        "by_level": {"0.5": {"constraint_compliance": rec(0.4, 10)}}, "by_category": {}},
        "honesty": {"mc1": rec(0.3, 20)}}))
    df = load_runs(run)
    assert len(df) == 4
    lvl = df[df.breakdown == "level"].iloc[0]
    assert (lvl.task, lvl.metric, lvl.category, lvl.value) == ("compression", "constraint_compliance", "0.5", 0.4)
    assert math.isnan(df[df.metric == "kappa"].value.iloc[0])
    assert df[df.metric == "mc1"].model_fingerprint.iloc[0] == "abc"


def test_load_samples_flattens_judgments_metrics_and_meta(out: Path) -> None:
    s = load_samples(out / "high")
    recs = [json.loads(x) for x in (out / "high" / "samples.jsonl").read_text().splitlines()]
    assert len(s) == len(recs) == 40
    assert (s.run_id == "high").all() and (s.model == "dummy").all()
    for col in ("task", "sample_id", "category", "prompt", "prompt_text", "response", "judge.refusal_xstest.label",
                "judge.refusal_xstest.score", "judge.refusal_xstest.error", "judge.refusal_gcg.label",
                "metric.harmful_rate", "metric.over_refusal_rate", "meta.label"):
        assert col in s.columns, col
    first = s.iloc[0]
    assert first.sample_id == recs[0]["sample_id"] and first.prompt_text == recs[0]["prompt"][-1]["content"]
    assert first["judge.refusal_xstest.label"] == recs[0]["judgments"]["refusal_xstest"]["label"]
    assert s["metric.harmful_rate"].dtype == float
    harmful = s[s["meta.label"] == "harmful"]
    assert harmful["metric.harmful_rate"].notna().all() and harmful["metric.over_refusal_rate"].isna().all()
    assert harmful["metric.harmful_rate"].mean() == pytest.approx(json.loads((out / "high" / "metrics.json").read_text())["hr"]["harmful_rate"]["value"])
    both = load_samples(out)
    assert len(both) == 80 and set(both.run_id) == {"low", "high"}
    assert len(load_samples(out / "high", task="nope")) == 0
    vals = per_sample_values(s, "hr", "harmful_rate")
    assert len(vals) == 40 and vals["s001"] is None and vals["s000"] in (0.0, 1.0)


def test_load_samples_keeps_judge_errors(out: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(out / "low", run)
    from alignbench.records.files import RunDir

    def fail_one(r):
        if r["sample_id"] == "s002":
            r["judgments"]["refusal_xstest"] = {"label": None, "score": None, "raw": None, "error": "TimeoutError: judge"}
            r["metrics"] = {"harmful_rate": None, "refusal_rate": None}
        return r

    rewrite_samples(RunDir(run), fail_one)
    s = load_samples(run).set_index("sample_id")
    assert s.loc["s002", "judge.refusal_xstest.error"] == "TimeoutError: judge"
    assert pd.isna(s.loc["s002", "metric.harmful_rate"])
    assert s["judge.refusal_xstest.error"].notna().sum() == 1


def test_corrected_columns_read_a_hand_written_record(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "r", "status": "complete", "model": "m"}))
    rec = {"value": 0.3, "stderr": 0.05, "ci_low": 0.21, "ci_high": 0.4, "n": 100, "ci_method": "wilson", "judge": "j",
           "judge_validity": {"sensitivity": {"value": 0.9, "x": 90, "n": 100}, "specificity": {"value": 0.8, "x": 80, "n": 100}},
           "corrected": {"value": 1 / 7, "ci_low": 0.01, "ci_high": 0.3, "method": "rogan_gladen_mc"}}
    # (0.3 + 0.8 - 1) / (0.9 + 0.8 - 1) = 0.1 / 0.7; a record the card cannot correct keeps value None
    odd = {"value": 0.5, "n": 10, "judge": "k", "corrected": {"value": None, "ci_low": None, "ci_high": None, "reason": "sens+spec<=1"}}
    (run / "metrics.json").write_text(json.dumps({"t": {"refusal_rate": rec, "other": odd, "plain": {"value": 1.0, "n": 3}}}))
    df = load_runs(run).set_index("metric")
    r = df.loc["refusal_rate"]
    assert (r.judge, r.ci_method, r.corrected, r.corrected_ci_low, r.corrected_ci_high) == ("j", "wilson", pytest.approx(0.142857, abs=1e-6), 0.01, 0.3)
    assert (r.judge_sensitivity, r.judge_specificity) == (0.9, 0.8)
    assert df.loc["other"].judge == "k" and pd.isna(df.loc["other"].corrected) and pd.isna(df.loc["other"].judge_sensitivity)
    assert pd.isna(df.loc["plain"].judge) and pd.isna(df.loc["plain"].corrected) and df.corrected.dtype == float
