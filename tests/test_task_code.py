"""A task YAML's dataset.hook / loader: alignbench's own hooks and Python files beside the task run by
default; any other code only with --trust-task-code, and the refusal runs none of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_main

HOOKS = '''
from pathlib import Path
from alignbench.types import Sample

MARK = Path(__file__).with_name("ran-" + Path(__file__).stem)


def samples(rows, cfg):
    MARK.write_text("ran")
    return [Sample(id=str(r["id"]), prompt=r["prompt"].upper()) for r in rows]


def rows(cfg, paths):
    MARK.write_text("ran")
    return [{"id": "x", "prompt": "from the loader"}]
'''


def _task(folder: Path, dataset: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.jsonl").write_text('{"id": "1", "prompt": "hi"}\n{"id": "2", "prompt": "ho"}\n')
    p = folder / "t.yaml"
    p.write_text(f"name: t\ndataset: {{data_files: d.jsonl, {dataset}}}\n")
    return p


def _eval(task: Path, out: Path, *extra: str):
    return run_main("eval", "--model", "dummy", "--tasks", task, "--output", out, "--run-id", "r", "--no-cache", *extra)


def _prompts(out: Path) -> list[str]:
    import json

    return [json.loads(line)["prompt"][-1]["content"] for line in (out / "r" / "samples.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("field, spec", [("hook", "their_hooks:samples"), ("loader", "their_loaders:rows")])
def test_code_from_elsewhere_needs_trust_task_code(tmp_path, monkeypatch, field, spec) -> None:
    elsewhere = tmp_path / "site"  # an importable module outside alignbench and outside the task's folder
    elsewhere.mkdir()
    module = spec.split(":")[0]
    (elsewhere / f"{module}.py").write_text(HOOKS)
    monkeypatch.syspath_prepend(str(elsewhere))
    task = _task(tmp_path / "task", f"{field}: '{spec}'")
    r = _eval(task, tmp_path / "out")
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr == (f"alignbench: error: {task}: field 'dataset.{field}': '{spec}' is code from outside alignbench's "
                        "task hooks and the task's folder; pass --trust-task-code to run it\n")
    assert not (elsewhere / f"ran-{module}").exists()  # refused before it ran, not after
    r = _eval(task, tmp_path / "out2", "--trust-task-code")
    assert r.returncode == 0, r.stderr
    assert (elsewhere / f"ran-{module}").read_text() == "ran"
    assert _prompts(tmp_path / "out2") == (["HI", "HO"] if field == "hook" else ["from the loader"])


def test_file_beside_the_task_runs_by_default(tmp_path) -> None:
    folder = tmp_path / "task"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "my_hooks.py").write_text(HOOKS)
    for spec in ("sub/my_hooks.py:samples", "sub.my_hooks:samples"):
        task = _task(folder, f"hook: '{spec}'")
        out = tmp_path / spec.replace("/", "_")
        r = _eval(task, out)
        assert r.returncode == 0, r.stderr
        assert _prompts(out) == ["HI", "HO"]
    assert (folder / "sub" / "ran-my_hooks").exists()


def test_file_outside_the_folder_and_non_hook_names_are_refused(tmp_path) -> None:
    (tmp_path / "up_hooks.py").write_text(HOOKS)
    task = _task(tmp_path / "task", "hook: '../up_hooks.py:samples'")
    r = _eval(task, tmp_path / "out")
    assert r.returncode == 2 and "pass --trust-task-code to run it" in r.stderr
    assert not (tmp_path / "ran-up_hooks").exists()
    # alignbench's own hook modules: only the public functions they define, not what they import
    task = _task(tmp_path / "task", "hook: 'alignbench.tasks.hooks.safety_sets:load_rows'")
    r = _eval(task, tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "'alignbench.tasks.hooks.safety_sets:load_rows' is not a hook function of alignbench.tasks.hooks.safety_sets" in r.stderr
    task = _task(tmp_path / "task", "hook: 'alignbench.tasks.hooks.nope:samples'")
    r = _eval(task, tmp_path / "out")
    assert r.returncode == 2 and "cannot import 'alignbench.tasks.hooks.nope:samples' (ModuleNotFoundError" in r.stderr


def test_a_broken_hook_file_is_one_line(tmp_path) -> None:
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    r = _eval(_task(folder, "hook: 'broken.py:samples'"), tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "cannot import 'broken.py:samples' (ModuleNotFoundError: No module named 'not_a_module_anywhere')" in r.stderr
