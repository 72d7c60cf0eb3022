"""Degenerate input: a one-line exit 2, a warning, or the right result; never an internal error or a silent guess.

JUnit XML with control characters in a gate's name or category, a run given twice to report, a model arg
that is not a number, a gate limit that is not a number, a gate of a run against itself, the wording of a
failing rule, task file globs, a task file named like a built-in, a task file reading data outside its
folder, judge-eval labels judge-train refuses, and --map naming a label twice.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import run_main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from runs_factory import make_run, write_task

    d = tmp_path_factory.mktemp("degenerate")
    task = write_task(d / "t", n=40)
    return {"a": make_run(task, d / "runs", "a", 0.6).path, "b": make_run(task, d / "runs", "b", 0.3).path, "dir": d}


def _rules(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "g.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_junit_is_valid_xml_whatever_a_gate_is_called(runs: dict, tmp_path: Path) -> None:
    rules = _rules(tmp_path, json.dumps({"gates": [
        {"task": "hr", "metric": "compliance_rate", "name": "bell\u0007 and \u001b[31mescape\u0000", "max": 0.01},
        {"task": "hr", "metric": "compliance_rate", "by_category": True, "max": 1.0}]}))
    junit = tmp_path / "j.xml"
    rc, _, err = run_main("gate", "--candidate", str(runs["b"]), "--rules", str(rules), "--junit", str(junit))
    assert rc == 1, err
    root = ET.fromstring(junit.read_bytes())  # parses
    names = [tc.get("name") for tc in root.iter("testcase")]
    assert names[0] == "bell\ufffd and \ufffd[31mescape\ufffd" and len(names) == 5  # 1 + the 4 categories


def test_xml_text_keeps_what_xml_allows() -> None:
    from alignbench.gate.output import xml_text

    assert xml_text("tab\tnewline\ncr\r é ✓ 𝄞") == "tab\tnewline\ncr\r é ✓ 𝄞"
    assert xml_text("\x00\x08\x0b\x0c\x1f\ufffe") == "\ufffd" * 6


def test_report_of_the_same_run_twice_shows_it_once(runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    rc, _, err = run_main("report", str(runs["a"]), str(runs["a"]), str(runs["a"]) + "/", "--out", str(out))
    assert rc == 0, err
    assert "a#2" not in out.read_text()  # one run, one label


@pytest.mark.parametrize("args,needle", [
    ("refuse=abc", "--model-args refuse: expected a number in [0, 1], got 'abc'"),
    ("refuse=2", "--model-args refuse: expected a number in [0, 1], got 2"),
    ("delay=-1", "--model-args delay: expected a number >= 0, got -1"),
    ("sample=yes", "--model-args sample: expected 0 or 1, got 'yes'"),
    ("fail_after=x", "--model-args fail_after: expected an integer >= 0, got 'x'"),
])
def test_dummy_model_args_that_are_not_numbers(tmp_path: Path, args: str, needle: str) -> None:
    rc, _, err = run_main("eval", "--model", "dummy", "--model-args", args, "--tasks", "harmful_rate", "--limit", "2", "--output",
                          str(tmp_path), "--no-cache")
    assert rc == 2 and needle in _one_line(err), err


@pytest.mark.parametrize("value", ["true", "yes", "'0.05'", "[0.1]", "{a: 1}"])
@pytest.mark.parametrize("field", ["max", "min", "max_increase", "alpha"])
def test_a_gate_limit_that_is_not_a_number_is_refused(runs: dict, tmp_path: Path, field: str, value: str) -> None:
    extra = ", max_increase: 0.1" if field == "alpha" else ""
    rules = _rules(tmp_path, f"gates:\n  - {{task: hr, metric: compliance_rate, {field}: {value}{extra}}}\n")
    rc, _, err = run_main("gate", "--baseline", str(runs["a"]), "--candidate", str(runs["b"]), "--rules", str(rules))
    assert rc == 2 and f"field 'gates.0.{field}'" in _one_line(err), err


def test_a_gate_of_a_run_against_itself_warns(runs: dict, tmp_path: Path) -> None:
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: compliance_rate, max_increase: 0.0}\n")
    rc, _, err = run_main("gate", "--baseline", str(runs["a"]), "--candidate", str(runs["a"]) + "/", "--rules", str(rules))
    assert rc == 0 and "warning: --baseline and --candidate are the same run" in err


def test_a_failing_rule_never_says_its_limit_is_not_enforced(runs: dict, tmp_path: Path) -> None:
    """20 paired samples cannot detect a change of 0.01; an increase of 0.4 still fails the rule, and its line says why,
    without calling the limit that failed it unenforced. A rule that passes keeps the warning."""
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: compliance_rate, max_increase: 0.01}\n"
                             "  - {task: hr, metric: compliance_rate, max_decrease: 0.01}\n")
    rc, out, err = run_main("gate", "--baseline", str(runs["a"]), "--candidate", str(runs["b"]), "--rules", str(rules))
    assert rc == 1, err
    failing, passing = [line for line in out.splitlines() if line.startswith("| hr/compliance_rate")]
    assert "FAIL" in failing and "increase 0.4000 > max_increase 0.01" in failing and "not enforced" not in failing
    assert "the eval set is small for max_increase 0.01" in failing
    assert "pass" in passing and "max_decrease 0.01 is not enforced" in passing


def test_tasks_take_a_file_glob(tmp_path: Path) -> None:
    for name in ("t_one", "t_two"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"id": "a", "prompt": "hi"}) + "\n")
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\ndataset: {{data_files: {name}.jsonl, columns: {{id: id}}}}\n"
                                               "judges: [refusal_gcg]\n")
    rc, out, err = run_main("eval", "--model", "dummy", "--tasks", str(tmp_path / "t_*.yaml"), "--output", str(tmp_path / "o"),
                            "--no-cache", "--json")
    assert rc == 0, err
    assert sorted(json.loads(out)) == ["t_one", "t_two"]
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", str(tmp_path / "z_*.yaml"), "--output", str(tmp_path / "o"), "--no-cache")
    assert rc == 2 and "matches no file" in _one_line(err)


def test_a_task_file_named_like_a_built_in_warns(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "a", "prompt": "hi", "label": "harmful"}) + "\n")
    (tmp_path / "mine.yaml").write_text("name: advbench\ndataset: {data_files: d.jsonl, columns: {id: id}, "
                                        "meta_columns: [label]}\njudges: [refusal_gcg]\n")
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", str(tmp_path / "mine.yaml"), "--output", str(tmp_path / "o"), "--no-cache")
    assert rc == 0, err
    assert "warning: task file" in err and "is named 'advbench' like the built-in task" in err


def test_a_task_file_reads_data_outside_its_folder_only_when_trusted(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    secret = tmp_path / "elsewhere" / "data.jsonl"
    secret.write_text(json.dumps({"id": "a", "prompt": "the secret line"}) + "\n")
    (tmp_path / "tasks").mkdir()
    y = tmp_path / "tasks" / "t.yaml"
    y.write_text(f"name: t\ndataset: {{data_files: {secret}, columns: {{id: id}}}}\njudges: [refusal_gcg]\n")
    base = ["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path / "o"), "--no-cache"]
    rc, _, err = run_main(*base, "--run-id", "no")
    assert rc == 2 and "points outside the task's folder" in _one_line(err) and "--trust-task-code" in err
    assert not (tmp_path / "o" / "no").exists()
    rc, _, err = run_main(*base, "--run-id", "yes", "--trust-task-code")
    assert rc == 0, err
    assert "the secret line" in (tmp_path / "o" / "yes" / "samples.jsonl").read_text()


@pytest.mark.parametrize("label", [True, False, None, [], "", "  ", {"x": 1}])
def test_judge_eval_refuses_labels_judge_train_refuses(tmp_path: Path, label) -> None:
    rows = [{"prompt": "q", "response": "I can't help.", "label": "refusal"}, {"prompt": "q", "response": "Sure.", "label": label}]
    (tmp_path / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for cmd in (["judge-eval", "--judge", "refusal_gcg"], ["judge-train", "--output", str(tmp_path / "j")]):
        rc, _, err = run_main(*cmd, "--input", str(tmp_path / "l.jsonl"))
        assert rc == 2, (cmd[0], err)
    rc, _, err = run_main("judge-eval", "--judge", "refusal_gcg", "--input", str(tmp_path / "l.jsonl"))
    line = _one_line(err)
    assert ("line 2: label" in line and "does not parse" in line) or "missing field 'label'" in line, line


def test_judge_eval_map_naming_a_label_twice_is_refused(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "response": "I can't help.", "label": "no"}, {"prompt": "q", "response": "Sure.", "label": "yes"}]
    (tmp_path / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, _, err = run_main("judge-eval", "--judge", "refusal_gcg", "--input", str(tmp_path / "l.jsonl"), "--map",
                          "refusal=no,compliance=yes,refusal=yes")
    assert rc == 2 and "--map: judge label 'refusal' is given twice ('no' and 'yes')" in _one_line(err)
