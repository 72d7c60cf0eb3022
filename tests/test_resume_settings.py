"""`eval --resume` may only add what a run is missing: every setting that changes what a sample is must
match the stored run, or the resume is a one-line exit 2 naming the stored value and touches no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignbench.run.settings import EvalConfig

from conftest import read_jsonl, run_main


@pytest.fixture
def task_yaml(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i}", "prompt": f"Question {i}?", "label": "harmful" if i % 2 else "benign"} for i in range(8)]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "other.jsonl").write_text("".join(json.dumps({**r, "prompt": r["prompt"] + "!"}) + "\n" for r in rows))
    y = tmp_path / "mytask.yaml"
    y.write_text("name: mytask\ndataset:\n  data_files: data.jsonl\n  columns: {id: id}\n  meta_columns: [label]\n"
                 "judges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    return y


BASE = ["--limit", "4", "--seed", "1", "--max-new-tokens", "16", "--temperature", "0.5", "--system-prompt", "be brief",
        "--judges", "refusal_xstest", "--model-args", "refuse=0.5", "--shard", "0/2"]


def _eval(out: Path, *args: str):
    return run_main("eval", "--model", "dummy", "--output", out, "--run-id", "A", "--no-cache", *args)


def _set(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


CHANGES = [  # (what the resume passes instead, text that names the stored value)
    (lambda a, t: ["--tasks", "harmful_rate", *a], "--tasks mytask"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--limit", "3")], "--limit 4"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--seed", "2")], "--seed 1"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--shard", "1/2")], "--shard [0, 2]"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--max-new-tokens", "17")], "--max-new-tokens 16"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--temperature", "0.6")], "--temperature 0.5"),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--system-prompt", "be long")], '--system-prompt "be brief"'),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--judges", "bleu")], '--judges ["refusal_xstest"]'),
    (lambda a, t: ["--tasks", str(t), *_set(a, "--model-args", "refuse=0.9")], '--model-args {"refuse": 0.5}'),
    (lambda a, t: ["--tasks", str(t), *a, "--data-files", f"mytask={t.parent / 'other.jsonl'}"], "--data-files {}"),
    (lambda a, t: ["--tasks", str(t), *[x for x in a if x not in ("--system-prompt", "be brief")]], '--system-prompt "be brief"'),
]


@pytest.mark.parametrize("change,stored", CHANGES, ids=["tasks", "limit", "seed", "shard", "max_new_tokens", "temperature",
                                                        "system_prompt", "judges", "model_args", "data_files", "dropped_flag"])
def test_resume_with_a_changed_setting_is_refused_and_touches_nothing(task_yaml: Path, tmp_path: Path, change, stored: str) -> None:
    out = tmp_path / "out"
    r = _eval(out, "--tasks", str(task_yaml), *BASE)
    assert r.returncode == 0, r.stderr
    before = _files(out / "A")
    r = _eval(out, *change(BASE, task_yaml), "--resume")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: --resume: run A was made with "), r.stderr
    assert stored in lines[0], lines[0]
    assert _files(out / "A") == before  # run.json, samples.jsonl and metrics.json untouched


def test_the_issue_reproduction_keeps_the_first_run_whole(tmp_path: Path) -> None:
    out = tmp_path / "R"
    assert _eval(out, "--tasks", "harmful_rate", "--limit", "2").returncode == 0
    r = _eval(out, "--tasks", "known_unknown", "--limit", "2", "--resume")
    assert r.returncode == 2 and "--tasks harmful_rate" in r.stderr, r.stderr
    assert set(json.loads((out / "A" / "metrics.json").read_text())) == {"harmful_rate"}
    assert {rec["task"] for rec in read_jsonl(out / "A" / "samples.jsonl")} == {"harmful_rate"}


def test_a_task_edited_since_the_run_is_refused(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _eval(out, "--tasks", str(task_yaml), *BASE).returncode == 0
    rows = (task_yaml.parent / "data.jsonl").read_text().replace("Question 0?", "Question zero?")
    (task_yaml.parent / "data.jsonl").write_text(rows)
    r = _eval(out, "--tasks", str(task_yaml), *BASE, "--resume")
    assert r.returncode == 2 and "task 'mytask' changed since run A was made" in r.stderr, r.stderr


def test_same_settings_resume_adds_only_the_missing_samples(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--tasks", str(task_yaml), "--limit", "8", "--seed", "1"]
    assert _eval(out, *args).returncode == 0
    samples = out / "A" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:3]))  # as if killed after 3 samples
    # settings that do not change a sample (batch size, concurrency, cache) may differ; the task spec may be spelt differently
    r = _eval(out, "--tasks", f"{task_yaml},", "--limit", "8", "--seed", "1", "--batch-size", "2", "--concurrency", "3", "--resume")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(samples)
    assert [x["sample_id"] for x in recs] == [f"s{i}" for i in range(8)]
    assert json.loads((out / "A" / "run.json").read_text())["model_calls"] == 5


def test_a_run_stored_before_a_setting_existed_counts_as_its_default(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _eval(out, "--tasks", str(task_yaml), "--limit", "4").returncode == 0
    info = json.loads((out / "A" / "run.json").read_text())
    del info["config"]["system_prompt"]  # an older alignbench did not store it
    (out / "A" / "run.json").write_text(json.dumps(info))
    assert _eval(out, "--tasks", str(task_yaml), "--limit", "4", "--resume").returncode == 0
    r = _eval(out, "--tasks", str(task_yaml), "--limit", "4", "--system-prompt", "x", "--resume")
    assert r.returncode == 2 and "--system-prompt (not set)" in r.stderr, r.stderr


def test_every_listed_setting_is_a_config_field() -> None:
    from alignbench.run.resume import SAMPLE_SETTINGS

    names = set(EvalConfig.__dataclass_fields__)
    assert set(SAMPLE_SETTINGS) <= names, set(SAMPLE_SETTINGS) - names


def test_runtime_only_backend_args_may_differ(task_yaml: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _eval(out, "--tasks", str(task_yaml), "--limit", "4", "--model-args", "refuse=0.5,delay=0.01").returncode == 0
    r = _eval(out, "--tasks", str(task_yaml), "--limit", "4", "--model-args", "refuse=0.5", "--resume")  # a delay changes no answer
    assert r.returncode == 0, r.stderr
    r = _eval(out, "--tasks", str(task_yaml), "--limit", "4", "--model-args", "refuse=0.6,delay=0.01", "--resume")
    assert r.returncode == 2 and '{"refuse": 0.5}' in r.stderr, r.stderr
