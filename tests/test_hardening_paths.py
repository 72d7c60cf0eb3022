"""Path traversal: a task YAML reads only inside its own folder; run ids never leave --output.

A task's ``dataset.data_files`` are resolved against the YAML's folder and must stay inside it (after
following symlinks); ``dataset.hub`` is a hub id, never a local path; prompt templates are sandboxed;
``--run-id`` is a plain folder name for new and resumed runs alike. Each rejection is a one-line exit 2
and nothing outside is read (the secret never shows up in any output).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import run_main as cli

SECRET = "TOP-SECRET-3141"



@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp/secret/{data.jsonl, dir/} outside; tmp/tasks/ holds the task YAMLs and its own data."""
    (tmp_path / "secret" / "dir").mkdir(parents=True)
    row = '{"id": "s", "prompt": "%s"}\n' % SECRET
    (tmp_path / "secret" / "data.jsonl").write_text(row)
    (tmp_path / "secret" / "dir" / "data.jsonl").write_text(row)
    (tmp_path / "tasks" / "sub").mkdir(parents=True)
    (tmp_path / "tasks" / "own.jsonl").write_text('{"id": "o", "prompt": "own data"}\n')
    (tmp_path / "tasks" / "sub" / "own.jsonl").write_text('{"id": "o2", "prompt": "own data 2"}\n')
    return tmp_path


def _rejected(layout: Path, dataset: str, *needles: str, cwd: Path | None = None) -> None:
    y = layout / "tasks" / "t.yaml"
    y.write_text(f"name: t\ndataset: {dataset}\n")
    old = os.getcwd()
    os.chdir(cwd or layout / "tasks")
    try:
        rc, out, err = cli("eval", "--model", "dummy", "--tasks", str(y), "--output", str(layout / "out"), "--run-id", "r", "--no-cache")
    finally:
        os.chdir(old)
    assert rc == 2, (rc, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("alignbench: error: "), err
    for n in needles:
        assert n in err, (n, err)
    assert SECRET not in out + err
    assert not (layout / "out" / "r").exists(), "nothing may be written for a rejected task"


@pytest.mark.parametrize("spec", [
    "../secret/data.jsonl",
    "sub/../../secret/data.jsonl",
    "./../secret/data.jsonl",
    "sub/./../../secret/dir/data.jsonl",
    "[own.jsonl, ../secret/data.jsonl]",
])
def test_relative_data_files_escaping_the_task_folder(layout: Path, spec: str) -> None:
    _rejected(layout, "{data_files: %s}" % (spec if spec.startswith("[") else repr(spec)), "dataset.data_files", "outside the task's folder")


def test_symlinked_file_pointing_outside(layout: Path) -> None:
    (layout / "tasks" / "link.jsonl").symlink_to(layout / "secret" / "data.jsonl")
    _rejected(layout, "{data_files: link.jsonl}", "outside the task's folder")


def test_symlinked_folder_pointing_outside(layout: Path) -> None:
    (layout / "tasks" / "linkdir").symlink_to(layout / "secret" / "dir", target_is_directory=True)
    _rejected(layout, "{data_files: linkdir/data.jsonl}", "outside the task's folder")


def test_symlink_inside_the_folder_is_fine(layout: Path) -> None:
    (layout / "tasks" / "alias.jsonl").symlink_to(layout / "tasks" / "sub" / "own.jsonl")
    (layout / "tasks" / "t.yaml").write_text("name: t\ndataset: {data_files: [own.jsonl, alias.jsonl], columns: {id: id}}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(layout / "tasks" / "t.yaml"), "--output", str(layout / "out"),
                     "--run-id", "ok", "--no-cache")
    assert rc == 0, err
    ids = [line.split('"sample_id": "')[1].split('"')[0] for line in (layout / "out/ok/samples.jsonl").read_text().splitlines()]
    assert ids == ["o", "o2"]


@pytest.mark.parametrize("hub", ["../secret", "../secret/dir", "/etc", "~/x", "./secret", "a/../../secret", "a/b/c", ""])
def test_hub_id_that_is_a_path(layout: Path, hub: str) -> None:
    _rejected(layout, "{hub: %r}" % hub, "dataset.hub")


def test_hub_id_that_names_a_local_folder(layout: Path) -> None:
    """A well-formed id that is also a folder in the working directory would make `datasets` read it."""
    _rejected(layout, "{hub: secret}", "dataset.hub", "is a local path", cwd=layout)


def test_absolute_and_cli_paths_stay_allowed(layout: Path) -> None:
    """An absolute data_files path and --data-files are the user's explicit choice."""
    y = layout / "tasks" / "t.yaml"
    y.write_text(f"name: t\ndataset: {{data_files: {layout / 'tasks' / 'own.jsonl'}}}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(y), "--output", str(layout / "out"), "--run-id", "a", "--no-cache")
    assert rc == 0, err
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(y), "--data-files", f"t={layout / 'secret' / 'data.jsonl'}",
                     "--output", str(layout / "out"), "--run-id", "b", "--no-cache")
    assert rc == 0, err


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.getcwd() }}",
    "{{ prompt.__class__.__base__.__subclasses__() }}",
])
def test_prompt_template_is_sandboxed(layout: Path, template: str) -> None:
    y = layout / "tasks" / "t.yaml"
    y.write_text(f"name: t\ndataset: {{data_files: own.jsonl}}\nprompt: {{template: {template!r}}}\n")
    rc, out, err = cli("eval", "--model", "dummy", "--tasks", str(y), "--output", str(layout / "out"), "--run-id", "r", "--no-cache")
    assert rc == 2 and "prompt.template" in err and "unsafe" in err, err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("run_id", ["../x", "..", "a/b", "/abs", "x/../../y", ".", "a\\b", "~"])
@pytest.mark.parametrize("resume", [False, True])
def test_run_id_cannot_leave_the_output_folder(layout: Path, run_id: str, resume: bool) -> None:
    # a finished run one level up that a traversing --resume would otherwise find and append to
    (layout / "x").mkdir()
    (layout / "x" / "run.json").write_text('{"model": "dummy", "status": "running"}')
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--output", str(layout / "out"), "--run-id", run_id,
                     "--no-cache", *(["--resume"] if resume else []))
    assert rc == 2 and "--run-id" in err, err
    assert not (layout / "x" / "samples.jsonl").exists()
    assert not (layout / "out").exists() or not any((layout / "out").iterdir())


@pytest.mark.parametrize("command", ["shards", "merge", "drift"])
def test_every_command_that_names_a_folder_checks_the_run_id_alike(layout: Path, command: str) -> None:
    """eval --shards, merge and drift create folders from --run-id too: the same one check, the same line."""
    from runs_factory import make_run, write_task

    task = write_task(layout / "t")
    runs = [make_run(task, layout / "runs", rid, 0.9, 20).path for rid in ("a", "b")]
    argv = {"shards": ["eval", "--model", "dummy", "--tasks", str(task), "--shards", "2", "--output", str(layout / "out")],
            "merge": ["merge", *map(str, runs), "--output", str(layout / "out")],
            "drift": ["drift", *map(str, runs), "--output", str(layout / "out")]}[command]
    rc, out, err = cli(*argv, "--run-id", "../x")
    assert (rc, out) == (2, "") and err == "alignbench: error: --run-id '../x': use letters, digits, '.', '_' and '-' only\n"
    assert not (layout / "x").exists() and not (layout / "out").exists()


def test_task_names_cannot_steer_report_files(layout: Path) -> None:
    """A task named like a path: the report's figures still land beside the report, nowhere else."""
    (layout / "tasks" / "t.yaml").write_text("name: ../../../evil/x\ndataset: {data_files: own.jsonl, columns: {id: id}}\n"
                                             "judges: [refusal_gcg]\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(layout / "tasks" / "t.yaml"), "--output", str(layout / "out"),
                     "--run-id", "r", "--no-cache")
    assert rc == 0, err
    before = {p for p in layout.rglob("*")}
    rep = layout / "rep" / "report.md"
    rc, _, err = cli("report", str(layout / "out" / "r"), "--out", str(rep))
    assert rc == 0, err
    new = {p for p in layout.rglob("*")} - before
    assert new and all(p == rep.parent or p.parent == rep.parent for p in new), sorted(map(str, new))
    assert not (layout.parent / "evil").exists()
