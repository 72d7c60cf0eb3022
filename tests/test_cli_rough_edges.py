"""Bad input a new user types, each a one-line exit 2 in plain words; and the conveniences they expect
(globs in --tasks, `list tasks GROUP`, header rows, repeated --data-files)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from conftest import read_jsonl, run_cli, run_main


def _fails(r, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert re.match(r"alignbench( \w+)?: error: ", lines[0]), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _eval(tmp_path: Path, *args: str, tasks: str = "harmful_rate"):
    return run_main("eval", "--model", "dummy", "--tasks", tasks, "--limit", "2", "--output", tmp_path / "out", "--no-cache", *args)


def _task(folder: Path, data: bytes, *, name: str = "t", extra: str = "") -> Path:
    (folder / "d.jsonl").write_bytes(data)
    y = folder / f"{name}.yaml"
    y.write_text(f"name: {name}\ndataset:\n  data_files: d.jsonl\n{extra}")
    return y


# 7 -------------------------------------------------------------------------------------------------
def test_output_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a,b\n")
    _fails(run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "1", "--output", tmp_path / "rows.csv"),
           "--output", "is a file, not a folder")
    _fails(run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "1", "--output", tmp_path / "rows.csv" / "sub"),
           "cannot write the run folder")
    assert (tmp_path / "rows.csv").read_text() == "a,b\n"


# 8 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "-0.5"])
def test_non_finite_temperature_is_refused(tmp_path: Path, value: str) -> None:
    _fails(_eval(tmp_path, f"--temperature={value}"), "--temperature", "finite number >= 0")
    assert not (tmp_path / "out").exists()


def test_non_finite_numbers_are_refused_in_task_yaml_model_args_sample_meta_and_gates(tmp_path: Path) -> None:
    y = _task(tmp_path, b'{"id": "1", "prompt": "hi"}\n', extra="generation:\n  temperature: .inf\n")
    _fails(_eval(tmp_path, tasks=str(y)), "generation.temperature")
    y = _task(tmp_path, b'{"id": "1", "prompt": "hi", "meta": {"generation": {"temperature": NaN}}}\n',
              extra="  meta_columns: [meta]\n")
    (tmp_path / "d.jsonl").write_text('{"id": "1", "prompt": "hi", "generation": {"temperature": NaN}}\n')
    y.write_text("name: t\ndataset:\n  data_files: d.jsonl\n  meta_columns: [generation]\n")
    _fails(_eval(tmp_path, tasks=str(y)), "meta.generation", "'temperature' must be a number")
    _fails(_eval(tmp_path, "--model-args", "refuse=nan"), "--model-args", "not a finite number")
    rules = tmp_path / "gates.yaml"
    rules.write_text("gates:\n  - {task: harmful_rate, metric: harmful_rate, max: .nan}\n")
    assert _eval(tmp_path, "--run-id", "a").returncode == 0
    _fails(run_main("gate", "--baseline", tmp_path / "out" / "a", "--candidate", tmp_path / "out" / "a", "--rules", rules), "max")


def test_run_json_is_strict_json(tmp_path: Path) -> None:
    assert _eval(tmp_path, "--run-id", "a", "--temperature", "0.7").returncode == 0
    json.loads((tmp_path / "out" / "a" / "run.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in run.json"))


# 9 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,args,needles", [
    ("default", "n_ctx=999999", ["n_ctx=999999", "from 16 to 8192"]),
    ("default", "n_thread=2", ["backend 'default' has no option 'n_thread'", "did you mean 'n_threads'?"]),
    ("dummy", "refuze=0.5", ["backend 'dummy' has no option 'refuze'", "did you mean 'refuse'?"]),
    ("hf:/no/such/model", "dtyp=float32", ["backend 'hf' has no option 'dtyp'", "did you mean 'dtype'?"]),
    ("openai:m", "base_ur=http://127.0.0.1:1/v1", ["backend 'openai' has no option 'base_ur'", "did you mean 'base_url'?"]),
    ("replay:x.jsonl", "nope=1", ["backend 'replay' has no option 'nope'"]),
])
def test_backend_args_are_checked_with_did_you_mean(tmp_path: Path, spec: str, args: str, needles: list[str]) -> None:
    err = _fails(run_main("eval", "--model", spec, "--model-args", args, "--tasks", "harmful_rate", "--limit", "1",
                          "--output", tmp_path, "--no-cache"), *needles)
    assert "unexpected keyword argument" not in err


def test_openai_passes_other_names_on_to_the_server() -> None:
    from alignbench.backends.base import check_model_args
    from alignbench.registry import backends

    check_model_args(backends.get("openai"), "openai", {"repeat_penalty": 1.0, "top_k": 1})  # server fields: no error


# 10 ------------------------------------------------------------------------------------------------
def _labelled(tmp_path: Path) -> Path:
    rows = [{"prompt": "q", "response": "I'm sorry, I can't.", "label": "refusal"},
            {"prompt": "q", "response": "Sure, here it is.", "label": "compliance"}]
    p = tmp_path / "lab.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_judge_eval_map_key_must_be_a_judge_label(tmp_path: Path) -> None:
    _fails(run_main("judge-eval", "--judge", "refusal_xstest", "--input", _labelled(tmp_path),
                    "--map", "full_refusal=refusal,full_complaince=compliance"),
           "--map", "'full_complaince' is not one of judge refusal_xstest's labels", "full_compliance")


def test_judge_eval_warns_when_labels_share_no_value(tmp_path: Path) -> None:
    r = run_main("judge-eval", "--judge", "refusal_xstest", "--input", _labelled(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "share no value" in r.stderr and "--map" in r.stderr
    r = run_main("judge-eval", "--judge", "refusal_xstest", "--input", _labelled(tmp_path),
                 "--map", "full_refusal=refusal,full_compliance=compliance")
    assert r.returncode == 0 and "share no value" not in r.stderr, r.stderr


# 11 ------------------------------------------------------------------------------------------------
def test_error_after_a_progress_bar_starts_its_own_line_and_the_bar_is_not_redrawn(tmp_path: Path) -> None:
    r = run_cli("eval", "--model", "dummy", "--model-args", "fail_after=3", "--tasks", "harmful_rate", "--limit", "20",
                "--batch-size", "1", "--output", str(tmp_path), "--no-cache", env={"ALIGNBENCH_NO_PROGRESS": "0"})
    assert r.returncode == 3, r.stderr
    assert "it/s]" in r.stderr  # a bar was drawn
    lines = r.stderr.split("\n")
    errors = [i for i, line in enumerate(lines) if "alignbench: error" in line]
    assert errors and all(lines[i].startswith("alignbench: error: ") for i in errors), r.stderr
    assert all(not line.strip() for line in lines[errors[-1] + 1:]), r.stderr  # nothing drawn after it


# 12 ------------------------------------------------------------------------------------------------
def test_hub_model_and_dataset_fail_fast_without_a_network(tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "", "HF_DATASETS_OFFLINE": "", "TRANSFORMERS_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9",
           "HF_HOME": str(tmp_path / "hf")}
    for args in (["--model", "hf:someone/no-such-model", "--tasks", "harmful_rate"], ["--model", "dummy", "--tasks", "advbench"]):
        t0 = time.monotonic()
        r = run_cli("eval", *args, "--limit", "1", "--output", str(tmp_path), "--no-cache", env=env, timeout=120)
        took = time.monotonic() - t0
        _fails(r, "the Hugging Face Hub is unreachable")
        assert took < 40, took  # without the probe, each took about a minute of retries


# 13 ------------------------------------------------------------------------------------------------
def test_repeated_data_files_are_all_kept(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _task(tmp_path / name, "".join(json.dumps({"id": f"{name}{i}", "prompt": f"{name} {i}"}) + "\n" for i in range(2)).encode(),
              name=name, extra="  columns: {id: id}\n")
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "a9", "prompt": "more"}) + "\n")
    tasks = f"{tmp_path / 'a' / 'a.yaml'},{tmp_path / 'b' / 'b.yaml'}"
    r = run_main("eval", "--model", "dummy", "--tasks", tasks, "--output", tmp_path / "out", "--run-id", "r", "--no-cache",
                 "--data-files", f"a={tmp_path / 'a' / 'd.jsonl'}", "--data-files", f"b={tmp_path / 'b' / 'd.jsonl'}",
                 "--data-files", f"a={extra}")
    assert r.returncode == 0, r.stderr
    got = [(x["task"], x["sample_id"]) for x in read_jsonl(tmp_path / "out" / "r" / "samples.jsonl")]
    assert got == [("a", "a0"), ("a", "a1"), ("a", "a9"), ("b", "b0"), ("b", "b1")]


# 14 ------------------------------------------------------------------------------------------------
def test_did_you_mean_lists_each_name_once_and_no_far_off_names(tmp_path: Path) -> None:
    err = _fails(_eval(tmp_path, tasks="harmful_rat"), "did you mean")
    names = re.findall(r"'([^']+)'", err.split("did you mean")[1])
    assert "harmful_rate" in names and len(names) == len(set(names)), err
    from alignbench.registry import did_you_mean, judge_kinds

    assert "cosine" not in did_you_mean("nosuchkind", judge_kinds.names())
    assert "did you mean 'cosine'" in did_you_mean("cosin", judge_kinds.names())


def test_tasks_dir_pointing_nowhere_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "1", "--output", str(tmp_path),
                env={"ALIGNBENCH_TASKS_DIR": "/nope"})
    _fails(r, "ALIGNBENCH_TASKS_DIR=/nope", "no such folder")


@pytest.mark.parametrize("value", ["-1/3", "-2/-3", "1/-3"])
def test_negative_shard_gets_the_shard_message(tmp_path: Path, value: str) -> None:
    _fails(_eval(tmp_path, "--shard", value), "--shard", "expected I/N with 0 <= I < N", value)


def test_non_utf8_data_names_the_encoding_option(tmp_path: Path) -> None:
    data = '{"id": "1", "prompt": "caf\u00e9 cr\u00e8me"}\n'.encode("latin-1")
    y = _task(tmp_path, data)
    _fails(_eval(tmp_path, tasks=str(y)), "not utf-8 text", "encoding: latin-1")
    y.write_text(y.read_text() + "  encoding: latin-1\n")
    r = _eval(tmp_path, "--run-id", "ok", tasks=str(y))
    assert r.returncode == 0, r.stderr
    assert read_jsonl(tmp_path / "out" / "ok" / "samples.jsonl")[0]["prompt"][-1]["content"] == "caf\u00e9 cr\u00e8me"
    y.write_text(y.read_text().replace("latin-1", "klingon"))
    _fails(_eval(tmp_path, tasks=str(y)), "dataset.encoding", "unknown text encoding 'klingon'")


# 15 ------------------------------------------------------------------------------------------------
def test_glob_in_tasks(tmp_path: Path) -> None:
    r = _eval(tmp_path, "--run-id", "g", tasks="truthfulqa_mc*")
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "out" / "g" / "run.json").read_text())
    assert list(info["tasks"]) == ["truthfulqa_mc1", "truthfulqa_mc2"]
    _fails(_eval(tmp_path, tasks="nosuch_*"), "'nosuch_*' matches no task")


def test_list_tasks_of_a_group_and_header_rows() -> None:
    r = run_main("list", "tasks", "honesty")
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.strip().split("\n")]
    assert rows[0] == ["task", "groups", "description"]
    assert sorted(x[0] for x in rows[1:]) == ["known_unknown", "truthfulqa_gen", "truthfulqa_mc1", "truthfulqa_mc2"]
    assert [x[0] for x in [line.split("\t") for line in run_main("list", "tasks", "truthfulqa_*").stdout.split("\n")[1:] if line]] == [
        "truthfulqa_gen", "truthfulqa_mc1", "truthfulqa_mc2"]
    for what, header in (("tasks", "task\tgroups\tdescription"), ("judges", "judge\tkind\tdescription"), ("backends", "backend\tdescription")):
        assert run_main("list", what).stdout.split("\n")[0] == header
    _fails(run_main("list", "tasks", "honsty"), "unknown task 'honsty'", "did you mean 'honesty'")
    _fails(run_main("list", "judges", "x"), "takes no NAME")
