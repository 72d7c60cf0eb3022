"""Tampered or clashing files give a one-line exit 2, never wrong numbers or lost data.

Learned-judge weights with NaN, a pairs.jsonl edited by hand, a run re-made under the id a compare kept,
NaN in data headed for JSON; and outputs that would replace data: report --out over a run's file,
judge-train over a judge or a run folder, judge-eval --card over a shipped card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, read_jsonl, run_main

SHIPPED_CLF = REPO / "judges" / "models" / "refusal_clf"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: "), err
    return lines[0]


def _task(folder: Path, n: int = 8, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i}", "prompt": f"Request {i}", "label": "harmful" if i % 2 else "benign"} for i in range(n)]
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = folder / "t.yaml"
    y.write_text("name: t\ndataset:\n  data_files: d.jsonl\n  columns: {id: id}\n  meta_columns: [label]\n"
                 f"judges: [refusal_gcg]\nscorer: harmful_rate\n{extra}")
    return y


# learned judges and NaN ----------------------------------------------------------------------------

def _judge_copy(tmp_path: Path, edit_w=None, edit_spec=None) -> Path:
    folder = tmp_path / "myclf"
    shutil.copytree(SHIPPED_CLF, folder)
    if edit_w is not None:
        with np.load(folder / "weights.npz") as z:
            W, b = z["W"].copy(), z["b"].copy()
        np.savez(folder / "weights.npz", W=edit_w(W), b=b)
    if edit_spec is not None:
        spec = json.loads((folder / "judge.json").read_text())
        (folder / "judge.json").write_text(json.dumps(edit_spec(spec)))
    return folder


def test_learned_judge_with_nan_weights_is_refused_at_load(tmp_path: Path) -> None:
    def nan(W):
        W[3, 0] = np.nan
        return W

    folder = _judge_copy(tmp_path, edit_w=nan)
    task = _task(tmp_path / "t")
    rc, out, err = run_main("eval", "--model", "dummy", "--tasks", str(task), "--refusal-judge", str(folder), "--output",
                            str(tmp_path / "o"), "--no-cache")
    assert rc == 2 and "weights.npz 'W' holds 1 NaN or infinite value(s)" in _one_line(err) and out == ""
    assert not (tmp_path / "o").exists()
    (tmp_path / "in.jsonl").write_text(json.dumps({"prompt": "q", "response": "Sure."}) + "\n")
    rc, _, err = run_main("judge", "--judges", str(folder), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "j.jsonl"))
    assert rc == 2 and "NaN or infinite" in _one_line(err) and not (tmp_path / "j.jsonl").exists()


def test_nan_is_never_written_into_json(tmp_path: Path) -> None:
    """JSON has no NaN: a data value that is NaN (a JSON file's ``NaN`` literal) stops the run at the one JSON writer,
    naming the field, instead of a samples.jsonl line that a strict reader cannot parse."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "d.jsonl").write_text('{"id": "a", "prompt": "x", "weight": 1.5}\n{"id": "b", "prompt": "y", "weight": NaN}\n')
    (folder / "t.yaml").write_text("name: t\ndataset:\n  data_files: d.jsonl\n  columns: {id: id}\n  meta_columns: [weight]\n"
                                   "judges: [refusal_gcg]\n")
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", str(folder / "t.yaml"), "--output", str(tmp_path / "o"),
                          "--run-id", "r", "--no-cache")
    assert rc == 2 and "task 't' sample 'b': meta.weight is nan (not a number JSON can hold)" in _one_line(err), err
    for f in (tmp_path / "o" / "r").iterdir():
        json.loads(f.read_text()) if f.suffix == ".json" else [json.loads(x) for x in f.read_text().splitlines()]  # strict readers
        assert "NaN" not in f.read_text()


def test_a_file_replaced_in_one_step_keeps_the_permissions_a_new_file_gets(tmp_path: Path) -> None:
    """The JSON writer writes a private temporary file and renames it into place: the file it leaves must be readable
    as any file the process writes (umask), and a file it replaces keeps its own permissions."""
    import os

    from alignbench.jsonl import write_json, write_lines

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        write_lines(tmp_path / "s.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644 and (tmp_path / "s.jsonl").stat().st_mode & 0o777 == 0o644
    (tmp_path / "m.json").chmod(0o600)
    write_json(tmp_path / "m.json", {"a": 2})
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o600 and json.loads((tmp_path / "m.json").read_text()) == {"a": 2}


def test_a_judge_score_that_is_not_finite_is_a_failed_judgment() -> None:
    from alignbench.judges.base import Judge
    from alignbench.types import JudgeInput, Judgment

    class Broken(Judge):
        kind = "broken"

        def judge_batch(self, items):
            return [Judgment(label="x", score=float("nan")), Judgment(label="y", score=0.5, raw={"p": float("inf")}),
                    Judgment(label="z", score=1.0)]

    got = Broken().judge([JudgeInput(prompt="p", response="r")] * 3)
    assert [j.error is not None for j in got] == [True, True, False] and "non-finite nan" in got[0].error
    assert got[2].score == 1.0


# pairs.jsonl ---------------------------------------------------------------------------------------

@pytest.fixture
def compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two runs and a finished compare of them by a tiny reward model."""
    from compare_factory import make_runs
    from tiny_model import build_tiny_reward_model

    monkeypatch.chdir(tmp_path)
    a, b = make_runs(tmp_path, {"short": lambda i: 2 + i % 3, "long": lambda i: 8 + i % 5}, n=10)
    rm = build_tiny_reward_model(tmp_path / "rm", seed=3)
    args = ["compare", str(a), str(b), "--judge", "skywork_reward", "--judge-model", f"skywork_reward={rm}", "--output",
            str(tmp_path / "cmp"), "--run-id", "c"]
    rc, _, err = run_main(*args)
    assert rc == 0, err
    return {"a": a, "b": b, "cmp": tmp_path / "cmp" / "c", "rm": rm, "args": args}  # type: ignore[dict-item]


@pytest.mark.parametrize("edit,needle", [
    (lambda lines: [{**lines[0], "winner": "zzz", "score": 7}] + lines[1:], "line 1: winner 'zzz' is not a, b, tie or null"),
    (lambda lines: [{**lines[0], "winner": "a", "score": 7}] + lines[1:], "line 1: score 7 does not go with winner 'a'"),
    (lambda lines: [[1, 2, 3]] + lines[1:], "line 1: expected a JSON object, got list"),
    (lambda lines: lines[:2] + [None] + lines[2:], "line 3: expected a JSON object, got null"),
    (lambda lines: lines + [lines[4]], "is also on line 5"),
    (lambda lines: [{**lines[0], "sample_id": 3}] + lines[1:], "line 1: field 'sample_id' must be a non-empty string"),
])
def test_a_tampered_pairs_file_is_refused_by_compare_and_report(compared: dict, edit, needle: str) -> None:
    pairs = compared["cmp"] / "pairs.jsonl"
    lines = [json.loads(x) for x in pairs.read_text().splitlines()]
    pairs.write_text("".join(json.dumps(x) + "\n" for x in edit(lines)))
    before = pairs.read_bytes()
    rc, _, err = run_main(*compared["args"], "--resume")
    assert rc == 2 and needle in _one_line(err), err
    assert pairs.read_bytes() == before
    rc, _, err = run_main("report", str(compared["cmp"]), "--out", str(compared["cmp"].parent / "r.md"))
    assert rc == 2 and needle in _one_line(err), err


def test_win_rates_are_counted_from_the_winner(compared: dict) -> None:
    from alignbench.compare.summary import pair_table

    lines = read_jsonl(compared["cmp"] / "pairs.jsonl")
    table = pair_table(lines, [("short", "long")], seed=0)[0]
    decided = [ln for ln in lines if ln["winner"] is not None]
    assert table["wins"] == sum(ln["winner"] == "a" for ln in decided)
    assert table["win_rate"] == pytest.approx((table["wins"] + table["ties"] / 2) / len(decided))
    assert 0.0 <= table["ci_low"] <= table["ci_high"] <= 1.0


# compare: runs that changed, unfinished runs, paths ----------------------------------------------------

def test_compare_resume_refuses_a_run_made_again_under_the_same_id(compared: dict, tmp_path: Path) -> None:
    from compare_factory import make_runs

    shutil.rmtree(compared["a"])
    (tmp_path / "again").mkdir()
    redo = make_runs(tmp_path / "again", {"short": lambda i: 3 + i % 4}, n=10)[0]  # other answers, the same run id
    shutil.copytree(redo, compared["a"])
    rc, _, err = run_main(*compared["args"], "--resume")
    line = _one_line(err)
    assert rc == 2 and f"run {compared['a'].resolve()} changed since" in line and "pass --overwrite" in line, err
    assert run_main(*compared["args"], "--overwrite").returncode == 0


def test_compare_resume_takes_the_same_runs_by_another_spelling(compared: dict, tmp_path: Path) -> None:
    import os

    rel = [os.path.relpath(compared["a"]), os.path.relpath(compared["b"])]
    args = [*compared["args"][:1], *rel, *compared["args"][3:]]
    rc, _, err = run_main(*args, "--resume")
    assert rc == 0 and "0 to go" in err, err


def test_compare_refuses_an_unfinished_run_unless_asked(compared: dict, tmp_path: Path) -> None:
    info = json.loads((compared["a"] / "run.json").read_text())
    (compared["a"] / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    args = [*compared["args"][:-2], "--run-id", "c2"]
    rc, _, err = run_main(*args)
    assert rc == 2 and "run status is 'failed', not 'complete'" in _one_line(err) and "--allow-incomplete" in err
    assert not (compared["cmp"].parent / "c2").exists()
    rc, _, err = run_main(*args, "--allow-incomplete")
    assert rc == 0, err
    info = json.loads((compared["cmp"].parent / "c2" / "compare.json").read_text())
    assert info["settings"]["allow_incomplete"] is True and info["settings"]["runs"][0]["status"] == "failed"


# outputs that would replace data -----------------------------------------------------------------------

def test_report_out_never_replaces_a_runs_data(compared: dict) -> None:
    for name in ("samples.jsonl", "metrics.json", "run.json"):
        target = compared["a"] / name
        before = target.read_bytes()
        rc, _, err = run_main("report", str(compared["a"]), "--out", str(target))
        assert rc == 2 and f"{name} is the name of a run's data file" in _one_line(err)
        assert target.read_bytes() == before
    target = compared["cmp"] / "pairs.jsonl"
    before = target.read_bytes()
    assert run_main("report", str(compared["cmp"]), "--out", str(target)).returncode == 2 and target.read_bytes() == before


def _labelled(path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "response": ("I can't help with that." if i % 2 else f"Here is how to do {i}."),
             "label": "refusal" if i % 2 else "compliance"} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_judge_train_never_writes_over_a_judge_a_run_or_the_package(tmp_path: Path, compared: dict) -> None:
    data = _labelled(tmp_path / "labels.jsonl")
    train = ["judge-train", "--input", str(data), "--folds", "2", "--min-per-class", "2"]
    rc, _, err = run_main(*train, "--output", str(tmp_path / "j"))
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in (tmp_path / "j").iterdir()}
    rc, _, err = run_main(*train, "--output", str(tmp_path / "j"))
    assert rc == 2 and "a judge folder already exists; pass --overwrite" in _one_line(err)
    assert {p.name: p.read_bytes() for p in (tmp_path / "j").iterdir()} == before
    run_files = {p.name: p.read_bytes() for p in compared["a"].iterdir()}
    for flags in ([], ["--overwrite"]):
        rc, _, err = run_main(*train, "--output", str(compared["a"]), *flags)
        assert rc == 2 and "is a run folder" in _one_line(err)
    assert {p.name: p.read_bytes() for p in compared["a"].iterdir()} == run_files
    shipped = {p.name: p.read_bytes() for p in SHIPPED_CLF.iterdir()}
    rc, _, err = run_main(*train, "--output", str(SHIPPED_CLF), "--overwrite")
    assert rc == 2 and "inside alignbench's own files" in _one_line(err)
    assert {p.name: p.read_bytes() for p in SHIPPED_CLF.iterdir()} == shipped
    assert run_main(*train, "--output", str(tmp_path / "j"), "--overwrite").returncode == 0


def test_judge_eval_card_goes_where_the_user_says_never_over_a_shipped_card(tmp_path: Path) -> None:
    from test_judge_eval_sets import xstest_folder

    shipped = REPO / "judges" / "cards" / "xstest_strmatch.json"
    before = shipped.read_bytes()
    args = ["judge-eval", "--judge", "xstest_strmatch", "--input", f"xstest_human:{xstest_folder(tmp_path)}"]
    rc, _, err = run_main(*args, "--card")  # no path: no default into the package
    assert rc == 2 and "--card: expected one argument" in err
    rc, _, err = run_main(*args, "--card", str(shipped), "--overwrite")
    assert rc == 2 and "the shipped judge cards are read-only data" in _one_line(err)
    assert shipped.read_bytes() == before
    card = tmp_path / "mine" / "cards" / "xstest_strmatch.json"
    rc, _, err = run_main(*args, "--card", str(card))
    assert rc == 0 and json.loads(card.read_text())["n"] == 6, err
    card.write_text("{}")
    rc, _, err = run_main(*args, "--card", str(card))
    assert rc == 2 and "already exists; pass --overwrite" in _one_line(err) and card.read_text() == "{}"
    assert run_main(*args, "--card", str(card), "--overwrite").returncode == 0 and json.loads(card.read_text())["n"] == 6
    assert shipped.read_bytes() == before


def test_judge_without_resume_keeps_an_interrupted_runs_lines(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"prompt": f"q{i}", "response": "Sure."}) + "\n" for i in range(3)))
    partial = tmp_path / "o.jsonl.partial"
    partial.write_text(json.dumps({"prompt": "q0", "response": "Sure.", "judgments": {"refusal_gcg": {"label": "x"}}}) + "\n")
    rc, _, err = run_main("judge", "--judges", "refusal_gcg", "--input", str(inp), "--output", str(tmp_path / "o.jsonl"))
    assert rc == 2 and "holds the lines of an interrupted run; pass --resume" in _one_line(err)
    assert partial.exists() and not (tmp_path / "o.jsonl").exists()


def test_missing_values_of_a_parquet_file_are_null_not_nan(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "t"
    folder.mkdir()
    pd.DataFrame({"id": ["a", "b"], "prompt": ["x", "y"], "weight": [1.5, None], "note": ["n", None]}).to_parquet(folder / "d.parquet")
    (folder / "t.yaml").write_text("name: t\ndataset:\n  data_files: d.parquet\n  columns: {id: id}\n  meta_columns: [weight, note]\n"
                                   "judges: [refusal_gcg]\n")
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", str(folder / "t.yaml"), "--output", str(tmp_path / "o"),
                          "--run-id", "r", "--no-cache")
    assert rc == 0, err
    metas = [r["meta"] for r in read_jsonl(tmp_path / "o" / "r" / "samples.jsonl")]
    assert metas == [{"weight": 1.5, "note": "n"}, {"weight": None, "note": None}]
