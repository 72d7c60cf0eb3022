"""Where the built-in task and judge definitions live.

In a source checkout (``pip install -e .``) they are the top-level ``tasks/`` and ``judges/`` folders;
an installed wheel carries copies of them as ``alignbench/_builtin/{tasks,judges}`` (see setup.py).
``ALIGNBENCH_TASKS_DIR`` / ``ALIGNBENCH_JUDGES_DIR`` (os.pathsep-separated) add more folders.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGED = Path(__file__).resolve().parent / "_builtin"


def _dirs(builtin: str, env: str) -> list[Path]:
    """The built-in folder, then each folder named in ``env``; one of those that is no folder is a usage error."""
    from alignbench.errors import UsageError

    in_checkout = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / builtin).is_dir()
    out = [d for d in [REPO_ROOT / builtin if in_checkout else PACKAGED / builtin] if d.is_dir()]
    for p in os.environ.get(env, "").split(os.pathsep):
        if p and not Path(p).expanduser().is_dir():
            raise UsageError(f"{env}={p}: no such folder")
        if p:
            out.append(Path(p).expanduser())
    return out


def task_dirs() -> list[Path]:
    return _dirs("tasks", "ALIGNBENCH_TASKS_DIR")


def judge_dirs() -> list[Path]:
    return _dirs("judges", "ALIGNBENCH_JUDGES_DIR")


def shipped_dirs() -> list[Path]:
    """The folders that ship with alignbench: the package itself and its built-in task and judge definitions (in a
    source checkout the top-level ``tasks/`` and ``judges/``). They are read-only data: no command writes there."""
    package = Path(__file__).resolve().parent
    out = [package]
    if (REPO_ROOT / "pyproject.toml").is_file():
        out += [REPO_ROOT / "tasks", REPO_ROOT / "judges"]
    return out


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` lies inside a folder that ships with alignbench (``shipped_dirs``)."""
    p = Path(path).expanduser().resolve()
    return any(p == d or d in p.parents for d in shipped_dirs())
