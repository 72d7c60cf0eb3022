"""Built-in task and judge definitions are found in a source checkout and in an installed wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from alignbench import paths

REPO = Path(__file__).resolve().parent.parent


def test_checkout_folders_are_used_in_a_source_tree() -> None:
    assert paths.task_dirs()[0] == REPO / "tasks" and paths.judge_dirs()[0] == REPO / "judges"


def test_packaged_copies_are_used_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site-packages"
    (site / "tasks").mkdir(parents=True)  # some other distribution's top-level folder must not be taken
    packaged = site / "alignbench" / "_builtin"
    (packaged / "tasks").mkdir(parents=True)
    (packaged / "judges").mkdir()
    monkeypatch.setattr(paths, "REPO_ROOT", site)
    monkeypatch.setattr(paths, "PACKAGED", packaged)
    extra = tmp_path / "mine"
    extra.mkdir()
    monkeypatch.setenv("ALIGNBENCH_TASKS_DIR", str(extra))
    assert paths.task_dirs() == [packaged / "tasks", extra]
    assert paths.judge_dirs() == [packaged / "judges"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True)
    return next(out.glob("alignbench-*.whl"))


@pytest.mark.slow
def test_wheel_carries_tasks_and_judges(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "alignbench/_builtin/tasks/harmful_rate/harmful_rate.jsonl" in names
    assert "alignbench/_builtin/tasks/harmful_rate/harmful_rate.yaml" in names
    assert "alignbench/_builtin/judges/refusal_xstest.yaml" in names
    assert "alignbench/_builtin/judges/templates/rubric_multi_aspect.j2" in names
    assert "alignbench/cli.py" in names and not any(n.startswith("tests/") for n in names)


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_lists_its_tasks(wheel: Path, tmp_path: Path) -> None:
    """The wheel alone, installed in a new venv, runs ``alignbench list tasks`` from its own copy, outside any checkout.

    The venv reads its dependencies (and pip) from the environment running this test, by a .pth file that
    lists that environment's site-packages: offline and fast, and the same on every machine. (A venv with
    system site-packages would read the base interpreter's, which may hold none of them.)"""
    import os
    import site
    import sysconfig
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # nothing points at this checkout
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True, env=env).stdout.strip()
    running = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(purelib, "running_env.pth").write_text("".join(f"{p}\n" for p in running))
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True, capture_output=True,
                   env=env, cwd=tmp_path)
    where = subprocess.run([str(py), "-c", "import alignbench, alignbench.paths as p; print(alignbench.__file__); print(p.task_dirs()[0])"],
                           check=True, capture_output=True, text=True, env=env, cwd=tmp_path).stdout.splitlines()
    assert Path(where[0]).is_relative_to(env_dir) and Path(where[1]).is_relative_to(env_dir), where  # the venv's copy, not the checkout
    assert where[1].endswith(os.path.join("alignbench", "_builtin", "tasks"))
    r = subprocess.run([str(bindir / "alignbench"), "list", "tasks"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"harmful_rate", "truthfulqa_mc1", "hhh_alignment", "compression"} <= listed, r.stdout
