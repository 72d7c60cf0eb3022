"""Which Python a task YAML may run: its ``dataset.hook`` / ``dataset.loader`` ``MODULE:FUNCTION``.

A task file from someone else must not run arbitrary code just by being evaluated, so by default a
hook is one of:

* alignbench's own hooks, ``alignbench.tasks.hooks.NAME:FUNCTION`` (a public function defined there);
* a Python file beside the task, ``FILE.py:FUNCTION`` or ``FILE:FUNCTION`` (``sub/FILE.py`` is fine),
  inside the YAML's folder: the code travels with the task the user chose to run.

Anything else (an installed package, a module on ``sys.path``) runs only with ``--trust-task-code``
(``EvalConfig.trust_task_code``), as transformers asks for ``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError

OWN_HOOKS = "alignbench.tasks.hooks"
TRUST_FLAG = "--trust-task-code"


def _beside(module: str, cfg: TaskConfig) -> Path | None:
    """The file ``module`` names inside the task's folder, or None."""
    if not cfg.source:
        return None
    folder = Path(cfg.source).resolve().parent
    rel = module if module.endswith(".py") else module.replace(".", "/") + ".py"
    path = (folder / rel).resolve()
    return path if path.is_file() and folder in path.parents else None


def _load_file(path: Path) -> ModuleType:
    name = f"alignbench_task_code_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def task_function(spec: str, cfg: TaskConfig, field: str, trust: bool = False) -> Callable[..., Any]:
    """The callable a task's ``field`` (``dataset.hook`` / ``dataset.loader``) names; a one-line
    UsageError when it cannot be imported or is not allowed without ``--trust-task-code``."""
    where = f"{cfg.source or cfg.name}: field '{field}'"
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UsageError(f"{where}: expected MODULE:FUNCTION or FILE.py:FUNCTION, got {spec!r}")
    own = module.startswith(OWN_HOOKS + ".")
    beside = None if own else _beside(module, cfg)
    if not (own or beside or trust):
        raise UsageError(f"{where}: {spec!r} is code from outside alignbench's task hooks and the task's folder; "
                         f"pass {TRUST_FLAG} to run it")
    try:
        mod = _load_file(beside) if beside else importlib.import_module(module)
        fn = getattr(mod, attr)
    except Exception as exc:  # the hook module's own import errors too: one line, not a traceback
        raise UsageError(f"{where}: cannot import {spec!r} ({type(exc).__name__}: {exc})") from None
    if own and (attr.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != mod.__name__):
        raise UsageError(f"{where}: {spec!r} is not a hook function of {module}")
    if not callable(fn):
        raise UsageError(f"{where}: {spec!r} is not a function")
    return fn
