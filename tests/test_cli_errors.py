"""Bad input exits 2 with one clear line on stderr (DESIGN §3, §8); `list` shows the registries."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli


def _task(tmp_path: Path, body: str, data: str | None = '{"id": "1", "prompt": "hi"}\n', name: str = "t.yaml") -> Path:
    if data is not None:
        (tmp_path / "d.jsonl").write_text(data)
    p = tmp_path / name
    p.write_text(body)
    return p


def _fails(args: list[str], *needles: str, code: int = 2) -> str:
    r = run_cli(*args)
    err = r.stderr.strip()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "\n" not in err, f"expected one line, got: {err!r}"
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in err, (n, err)
    return err


def test_unknown_task_suggests_a_close_name(tmp_path: Path) -> None:
    _fails(["eval", "--model", "dummy", "--tasks", "harmfull_rate", "--output", str(tmp_path)], "unknown task 'harmfull_rate'", "did you mean 'harmful_rate'")


def test_unknown_backend_and_judge(tmp_path: Path) -> None:
    _fails(["eval", "--model", "dumy:x", "--tasks", "harmful_rate", "--output", str(tmp_path)], "unknown backend 'dumy'", "did you mean 'dummy'")
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--judges", "refusal_gcgg", "--output", str(tmp_path)],
           "unknown judge 'refusal_gcgg'", "did you mean 'refusal_gcg'")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset: {data_files: d.jsonl\n")
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], str(y), "malformed YAML", "line")


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset:\n  data_files: d.jsonl\n  colums: {prompt: prompt}\n")
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], str(y), "field 'dataset.colums'", "unknown field; did you mean 'columns'?")
    y2 = _task(tmp_path, "name: t\ndataset: {data_files: d.jsonl}\ngeneration: {max_new_tokens: 0}\n", name="t2.yaml")
    _fails(["eval", "--model", "dummy", "--tasks", str(y2), "--output", str(tmp_path)], "field 'generation.max_new_tokens'")


def test_missing_data_file(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset: {data_files: nope.jsonl}\n", data=None)
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], "data file", "nope.jsonl", "not found")
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--data-files", "harmful_rate=/no/such.csv", "--output", str(tmp_path)],
           "/no/such.csv", "not found")


def test_missing_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset: {data_files: d.jsonl, columns: {category: topic}}\n")
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], "missing column(s) ['topic']", "'id', 'prompt'")


def test_unreadable_data(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset: {data_files: d.jsonl}\n", data='{"prompt": "ok"}\n{"prompt": \n')
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], "d.jsonl", "line 2", "invalid JSON")


def test_data_path_escaping_the_task_folder_is_rejected(tmp_path: Path) -> None:
    sub = tmp_path / "tasks"
    sub.mkdir()
    (tmp_path / "secret.jsonl").write_text('{"prompt": "x"}\n')
    y = _task(sub, "name: t\ndataset: {data_files: ../secret.jsonl}\n", data=None)
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], "points outside the task's folder")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--model-args", "dtype"], "--model-args: expected key=value"),
        (["--shard", "3/3"], "expected I/N with 0 <= I < N"),
        (["--limit", "0"], "expected a positive integer"),
        (["--batch-size", "many"], "expected a positive integer"),
        (["--system-prompt", "@/no/such/file"], "--system-prompt @/no/such/file: cannot read"),
        (["--data-files", "xstest=/tmp/x.csv"], "not being run"),
        (["--model-args", "bogus=1"], "--model-args: backend 'dummy' has no option 'bogus'"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], needle: str) -> None:
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", str(tmp_path), *args], needle)


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    r = run_cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "2", "--output", str(tmp_path), "--run-id", "r")
    assert r.returncode == 0, r.stderr
    before = (tmp_path / "r" / "samples.jsonl").read_bytes()
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", str(tmp_path), "--run-id", "r"], "already exists", "--resume")
    assert (tmp_path / "r" / "samples.jsonl").read_bytes() == before
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", str(tmp_path), "--run-id", "../evil"], "--run-id")
    _fails(["eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", str(tmp_path), "--run-id", "nope", "--resume"], "no run 'nope'")


def test_missing_required_flag_is_one_line() -> None:
    _fails(["eval", "--tasks", "harmful_rate"], "the following arguments are required: --model")
    _fails(["frobnicate"], "invalid choice")


def test_list_commands() -> None:
    tasks = run_cli("list", "tasks")
    assert tasks.returncode == 0 and "harmful_rate\t" in tasks.stdout and "advbench\t" in tasks.stdout
    judges = run_cli("list", "judges")
    assert judges.returncode == 0 and "refusal_gcg\trefusal_prefix" in judges.stdout
    backends = run_cli("list", "backends")
    assert backends.returncode == 0 and "replay\t" in backends.stdout and "dummy\t" in backends.stdout


def test_hub_dataset_offline_is_a_clear_error(tmp_path: Path) -> None:
    _fails(["eval", "--model", "dummy", "--tasks", "advbench", "--output", str(tmp_path)], "cannot load hub dataset 'walledai/AdvBench'",
           "--data-files advbench=PATH")


def test_unknown_scorer_argument_is_named(tmp_path: Path) -> None:
    y = _task(tmp_path, "name: t\ndataset: {data_files: d.jsonl}\nscorer: harmful_rate\nscorer_args: {refusal_jugde: refusal_gcg}\n")
    _fails(["eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path)], str(y), "field 'scorer_args'", "'refusal_jugde'")


def test_replay_file_that_is_not_text(tmp_path: Path) -> None:
    f = tmp_path / "bin.jsonl"
    f.write_bytes(b"\xff\xfe\x00bad")
    _fails(["eval", "--model", f"replay:{f}", "--tasks", "harmful_rate", "--output", str(tmp_path)], "replay file", "not UTF-8 text")
