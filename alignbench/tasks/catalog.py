"""The task registry: every ``*.yaml`` under the task folders, by name and by group."""

from __future__ import annotations

import fnmatch
import hashlib
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
        """A task by name, a group's tasks, tasks whose names match a glob (``truthfulqa_*``), or a YAML file's task."""
        if name in self.tasks:
            return [self.tasks[name]]
        if name in self.groups:
            return [self.tasks[n] for n in self.groups[name]]
        if name.endswith((".yaml", ".yml")) or Path(name).is_file():
            return [load_config(TaskConfig, name)]
        if any(c in name for c in "*?["):
            matched = [self.tasks[n] for n in sorted(self.tasks) if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise UsageError(f"--tasks {name!r} matches no task; see `alignbench list tasks`")
            return matched
        known = list(self.tasks) + list(self.groups)
        raise UsageError(f"unknown task {name!r}{did_you_mean(name, known)}")


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
