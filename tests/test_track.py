"""alignbench track: one run per checkpoint of three saved tiny Llamas, track.json against the runs'
metrics.json, resume (a second call evaluates nothing), ordering by step, gates, bad input, and the
report's "Across checkpoints" section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_main

TASK_ARGS = ["--tasks", "harmful_rate", "--limit", "6", "--max-new-tokens", "4", "--batch-size", "8"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """out/checkpoint-{10,20,30}: three tiny random Llamas (seeds 0-2) with the trainer state a Trainer saves."""
    from tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("train") / "out"
    for seed, step in enumerate((10, 20, 30)):
        path = build_tiny_model(root / f"checkpoint-{step}", seed=seed)
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return root


@pytest.fixture(scope="module")
def tracked(checkpoints: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("tracks")
    res = run_main("track", f"{checkpoints}/checkpoint-*", *TASK_ARGS, "--output", out, "--run-id", "t",
                   "--baseline", checkpoints / "checkpoint-10")
    assert res.returncode == 0, res.stderr
    assert "4 run(s) evaluated, 0 already complete" in res.stderr
    return out / "t", checkpoints


def _series_of(metrics: dict) -> dict:
    return {t: {m: {k: r.get(k) for k in ("value", "ci_low", "ci_high", "n", "judge")} for m, r in e.items()
                if isinstance(r, dict) and "value" in r} for t, e in metrics.items()}


def test_track_json_series_equal_the_runs_metrics(tracked: tuple[Path, Path]) -> None:
    folder, ckpts = tracked
    info = json.loads((folder / "track.json").read_text())
    assert info["status"] == "complete"
    assert [c["step"] for c in info["checkpoints"]] == [10, 20, 30]
    assert [Path(c["path"]) for c in info["checkpoints"]] == [ckpts / f"checkpoint-{s}" for s in (10, 20, 30)]
    assert [Path(c["run_dir"]).name for c in info["checkpoints"]] == ["step-10", "step-20", "step-30"]
    seen = 0
    for c in info["checkpoints"]:
        run = json.loads((Path(c["run_dir"]) / "run.json").read_text())
        assert run["status"] == "complete" and run["model"] == f"hf:{c['path']}"
        for task, metrics in _series_of(json.loads((Path(c["run_dir"]) / "metrics.json").read_text())).items():
            for metric, rec in metrics.items():
                (point,) = [p for p in info["series"][task][metric] if p["step"] == c["step"]]
                assert point == {"step": c["step"], **rec}
                seen += 1
    assert seen >= 3 * 4  # over_refusal, compliance, refusal, truncation at each step
    # the same samples at every checkpoint (same seed, same stratified --limit)
    ids = [sorted(json.loads(line)["sample_id"] for line in (Path(c["run_dir"]) / "samples.jsonl").read_text().splitlines())
           for c in info["checkpoints"]]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 6


def test_deltas_are_the_paired_method_of_gate_and_drift(tracked: tuple[Path, Path]) -> None:
    from alignbench.gate.rules import RunView
    from alignbench.stats.paired import paired_delta

    folder, _ = tracked
    info = json.loads((folder / "track.json").read_text())
    assert Path(info["baseline"]["run_dir"]) == folder / "baseline" and info["baseline"]["spec"].startswith("hf:")
    base = RunView.load(folder / "baseline", "b")
    for c in info["checkpoints"]:
        view = RunView.load(c["run_dir"], "c")
        d = paired_delta("compliance_rate", base.per_sample("harmful_rate", "compliance_rate"),
                         view.per_sample("harmful_rate", "compliance_rate"))
        (got,) = [x for x in info["deltas"]["harmful_rate"]["compliance_rate"] if x["step"] == c["step"]]
        assert (got["delta"], got["ci_low"], got["ci_high"], got["p_value"], got["n"]) == (d.delta, d.ci_low, d.ci_high, d.p_value, d.n)
        assert got["test"] == "mcnemar_exact" and got["significant"] == (d.p_value < 0.05)
    # the baseline is checkpoint-10 itself: its delta is exactly 0
    (first,) = [x for x in info["deltas"]["harmful_rate"]["compliance_rate"] if x["step"] == 10]
    assert first["delta"] == 0.0 and first["p_value"] == 1.0
    assert "truncation_rate" not in info["deltas"]["harmful_rate"]  # no per-sample values: nothing to pair


def test_a_second_call_evaluates_nothing_again(tracked: tuple[Path, Path]) -> None:
    folder, ckpts = tracked
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != "track.json"}
    old = json.loads((folder / "track.json").read_text())
    res = run_main("track", f"{ckpts}/checkpoint-*", *TASK_ARGS, "--output", folder.parent, "--run-id", "t",
                   "--baseline", ckpts / "checkpoint-10")
    assert res.returncode == 0, res.stderr
    assert "0 run(s) evaluated, 4 already complete" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != "track.json"} == before
    new = json.loads((folder / "track.json").read_text())
    assert (new["series"], new["deltas"], new["checkpoints"]) == (old["series"], old["deltas"], old["checkpoints"])


def test_new_checkpoints_are_added_and_deleted_ones_kept(checkpoints: Path, tmp_path: Path) -> None:
    ck = tmp_path / "out"
    shutil.copytree(checkpoints / "checkpoint-10", ck / "checkpoint-10")
    assert run_main("track", ck / "checkpoint-10", *TASK_ARGS, "--output", tmp_path / "r", "--run-id", "t").returncode == 0
    shutil.rmtree(ck / "checkpoint-10")  # a Trainer's save_total_limit removed it
    shutil.copytree(checkpoints / "checkpoint-20", ck / "checkpoint-20")
    res = run_main("track", f"{ck}/checkpoint-*", *TASK_ARGS, "--output", tmp_path / "r", "--run-id", "t")
    assert res.returncode == 0 and "1 run(s) evaluated" in res.stderr, res.stderr
    info = json.loads((tmp_path / "r" / "t" / "track.json").read_text())
    assert [c["step"] for c in info["checkpoints"]] == [10, 20]
    assert [p["step"] for p in info["series"]["harmful_rate"]["compliance_rate"]] == [10, 20]


def test_steps_come_from_trainer_state_or_the_folder_name(checkpoints: Path, tmp_path: Path) -> None:
    from alignbench.track.checkpoints import find_checkpoints

    shutil.copytree(checkpoints / "checkpoint-30", tmp_path / "final")  # its trainer_state says 30
    shutil.copytree(checkpoints / "checkpoint-20", tmp_path / "step_7")
    (tmp_path / "step_7" / "trainer_state.json").unlink()  # no trainer state: the number ending its name
    found = find_checkpoints([str(tmp_path / "final"), str(tmp_path / "step_7"), str(checkpoints / "checkpoint-10")])
    assert [(c.step, c.path.name) for c in found] == [(7, "step_7"), (10, "checkpoint-10"), (30, "final")]
    assert [c.step for c in find_checkpoints([f"{checkpoints}/checkpoint-*"], every=20)] == [20]


@pytest.mark.parametrize("case, message", [
    ("nomatch", "matches no folder"),
    ("duplicate", "both have step 10"),
    ("notmodel", "not a model folder"),
    ("nostep", "cannot tell its step"),
    ("missing", "no such folder"),
    ("every", "no checkpoint step is a multiple of 7"),
    ("relative_gate", "need --baseline"),
])
def test_bad_input_is_one_line_exit_2(case: str, message: str, checkpoints: Path, tmp_path: Path) -> None:
    args: list = []
    if case == "nomatch":
        args = [f"{tmp_path}/checkpoint-*"]
    elif case == "duplicate":
        shutil.copytree(checkpoints / "checkpoint-10", tmp_path / "copy")  # trainer_state: step 10 again
        args = [checkpoints / "checkpoint-10", tmp_path / "copy"]
    elif case == "notmodel":
        (tmp_path / "checkpoint-5").mkdir()
        args = [tmp_path / "checkpoint-5"]
    elif case == "nostep":
        shutil.copytree(checkpoints / "checkpoint-10", tmp_path / "final")
        (tmp_path / "final" / "trainer_state.json").unlink()
        args = [tmp_path / "final"]
    elif case == "missing":
        args = [tmp_path / "nope"]
    elif case == "every":
        args = [f"{checkpoints}/checkpoint-*", "--every", "7"]
    elif case == "relative_gate":
        (tmp_path / "g.yaml").write_text("gates:\n  - {task: harmful_rate, metric: compliance_rate, max_increase: 0.1}\n")
        args = [f"{checkpoints}/checkpoint-*", "--gate", tmp_path / "g.yaml"]
    res = run_main("track", *args, *TASK_ARGS, "--output", tmp_path / "o")
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "o").exists()  # nothing evaluated


def test_other_settings_on_the_same_track_are_refused(tracked: tuple[Path, Path]) -> None:
    folder, ckpts = tracked
    res = run_main("track", f"{ckpts}/checkpoint-*", "--tasks", "harmful_rate", "--limit", "5", "--max-new-tokens", "4",
                   "--output", folder.parent, "--run-id", "t", "--baseline", ckpts / "checkpoint-10")
    assert res.returncode == 2 and "other settings (limit differ)" in res.stderr, res.stderr


def test_gate_names_the_first_failing_checkpoint(tracked: tuple[Path, Path], tmp_path: Path) -> None:
    folder, ckpts = tracked
    (tmp_path / "g.yaml").write_text("gates:\n  - {task: harmful_rate, metric: compliance_rate, max: 0.5}\n")
    # a gate added to a finished track (a copy of it) is checked on the stored runs: nothing is evaluated again
    shutil.copytree(folder, tmp_path / "r" / "t")
    res = run_main("track", f"{ckpts}/checkpoint-*", *TASK_ARGS, "--output", tmp_path / "r", "--run-id", "t",
                   "--baseline", ckpts / "checkpoint-10", "--gate", tmp_path / "g.yaml")
    assert res.returncode == 1, res.stderr
    assert "0 run(s) evaluated" in res.stderr
    assert "gate failed at step 10: harmful_rate/compliance_rate: 1.0000 > max 0.5" in res.stderr
    gate = json.loads((tmp_path / "r" / "t" / "track.json").read_text())["gate"]
    assert gate["first_failure"]["step"] == 10 and [c["passed"] for c in gate["checks"]] == [False, False, False]


def test_report_of_a_track_folder_has_the_across_checkpoints_section(tracked: tuple[Path, Path], tmp_path: Path) -> None:
    from alignbench.report import write_report

    folder, _ = tracked
    text, _ = write_report([folder], tmp_path / "r.md")
    assert "## Across checkpoints" in text
    section = text.split("## Across checkpoints")[1].split("\n## ")[0]
    assert "| step 10 | step 20 | step 30 |" in section
    assert "paired change of each checkpoint against the baseline" in section
    pngs = sorted(p.name for p in tmp_path.glob("*.png") if "track" in p.name)
    assert len(pngs) == 2, pngs  # harmful_rate's metrics against step, and the frontier path
    # track.json given alone brings its runs
    text2, _ = write_report([folder / "track.json"], tmp_path / "r2.md")
    assert "## Across checkpoints" in text2 and "step-30" in text2


def test_significant_deltas_are_marked(tracked: tuple[Path, Path]) -> None:
    from alignbench.report.track_section import SIGNIFICANT, delta_table

    deltas = {"t": {"m": [{"step": 2, "n": 50, "baseline": 0.1, "value": 0.5, "delta": 0.4, "ci_low": 0.2, "ci_high": 0.6,
                           "p_value": 0.001, "significant": True},
                          {"step": 1, "n": 50, "baseline": 0.1, "value": 0.12, "delta": 0.02, "ci_low": -0.1, "ci_high": 0.14,
                           "p_value": 0.8, "significant": False}]}}
    t = delta_table(deltas)
    assert list(t.index.get_level_values("step")) == [1, 2]
    assert list(t["significant"]) == ["", SIGNIFICANT] and t.loc[("t", "m", 2), "delta [95% CI]"] == "+0.400 [+0.200, +0.600]"


def test_track_log_sends_each_checkpoint_at_its_step(tracked: tuple[Path, Path], tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, ckpts = tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    res = run_main("track", f"{ckpts}/checkpoint-*", *TASK_ARGS, "--output", folder.parent, "--run-id", "t",
                   "--baseline", ckpts / "checkpoint-10", "--log", "tensorboard,mlflow")
    assert res.returncode == 0 and "0 run(s) evaluated" in res.stderr, res.stderr
    info = json.loads((folder / "track.json").read_text())
    acc = EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    key = "alignbench/harmful_rate/truncation_rate"
    assert [(e.step, round(e.value, 6)) for e in acc.Scalars(key)] == \
        [(p["step"], round(p["value"], 6)) for p in info["series"]["harmful_rate"]["truncation_rate"]]
    assert [e.step for e in acc.Scalars("alignbench/delta/harmful_rate/compliance_rate_ci_high")] == [10, 20, 30]
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("alignbench").experiment_id])
    hist = client.get_metric_history(run.info.run_id, "alignbench/harmful_rate/compliance_rate_ci_low")
    assert [(m.step, m.value) for m in hist] == [(p["step"], p["ci_low"]) for p in info["series"]["harmful_rate"]["compliance_rate"]]
