"""The task registry: every ``*.yaml`` under the task folders, by name and by group."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

from alignbench.config import TaskConfig, load_config, load_named_configs
from alignbench.errors import UsageError
from alignbench.paths import task_dirs
from alignbench.registry import did_you_mean


class TaskCatalog:
    def __init__(self, dirs: list[Path]) -> None:
        self.tasks: dict[str, TaskConfig] = load_named_configs(TaskConfig, dirs, "task")
        self.groups: dict[str, list[str]] = {}
        for cfg in self.tasks.values():
            for g in cfg.group:
                self.groups.setdefault(g, []).append(cfg.name)

    def get(self, name: str) -> list[TaskConfig]:
        """A task by name, a group's tasks, tasks whose names match a glob (``truthfulqa_*``), a YAML file's task, or
        the tasks of the YAML files a file glob matches (``tasks/t_*.yaml``)."""
        if name in self.tasks:
            return [self.tasks[name]]
        if name in self.groups:
            return [self.tasks[n] for n in self.groups[name]]
        if name.endswith((".yaml", ".yml")) and any(c in name for c in "*?[") and not Path(name).is_file():
            files = sorted(glob.glob(str(Path(name).expanduser())))
            if not files:
                raise UsageError(f"--tasks {name!r} matches no file")
            return [self.user_task(f) for f in files]
        if name.endswith((".yaml", ".yml")) or Path(name).is_file():
            return [self.user_task(name)]
        if any(c in name for c in "*?["):
            matched = [self.tasks[n] for n in sorted(self.tasks) if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise UsageError(f"--tasks {name!r} matches no task; see `alignbench list tasks`")
            return matched
        known = list(self.tasks) + list(self.groups)
        raise UsageError(f"unknown task {name!r}{did_you_mean(name, known)}")

    def user_task(self, path: str) -> TaskConfig:
        """The task of a YAML file; one named like a built-in task is run as given, with a warning: its results
        would be filed under the built-in's name."""
        cfg = load_config(TaskConfig, path)
        builtin = self.tasks.get(cfg.name)
        if builtin is not None and builtin.source and Path(builtin.source).resolve() != Path(path).resolve():
            print(f"alignbench: warning: task file {path} is named {cfg.name!r} like the built-in task ({builtin.source}); "
                  "it replaces it in this run and its results carry that name: give it a name of its own to keep them apart",
                  file=sys.stderr)
        return cfg


@lru_cache(maxsize=1)
def builtin_catalog() -> TaskCatalog:
    return TaskCatalog(task_dirs())


def resolve_tasks(spec: str, catalog: TaskCatalog | None = None) -> list[TaskConfig]:
    """``"harmful_rate,my_task.yaml"`` -> task configs in order, without duplicates."""
    catalog = catalog or builtin_catalog()
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--tasks is empty; see `alignbench list tasks`")
    out: dict[str, TaskConfig] = {}
    for n in names:
        for cfg in catalog.get(n):
            out.setdefault(cfg.name, cfg)
    return list(out.values())


def task_version_hash(cfg: TaskConfig, data_paths: list[Path]) -> str:
    """Hash of the task YAML and its local data files (provenance in run.json)."""
    h = hashlib.sha256()
    if cfg.source and Path(cfg.source).is_file():
        h.update(Path(cfg.source).read_bytes())
    else:
        h.update(cfg.model_dump_json().encode())
    for p in data_paths:
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]
