"""Name -> object registries with "did you mean" errors.

Backends and judge kinds register with a decorator in the module that defines them; the modules of
``alignbench.backends`` and ``alignbench.judges`` are imported on first lookup, so adding one is one
file and one decorator. Tasks and named judges come from YAML files (see ``alignbench.tasks``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from alignbench.errors import UsageError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for up to three close names (each once), else the known names if few."""
    choices = list(dict.fromkeys(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.7)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"; known: {', '.join(sorted(choices))}" if len(choices) <= 12 else ""


class Registry(Generic[T]):
    """A typed mapping of names to objects, filled by ``@registry.register("name")``."""

    def __init__(self, kind: str, autoload: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._autoload = autoload
        self._loaded = autoload is None

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self._autoload)  # type: ignore[arg-type]
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{self._autoload}.{mod.name}")

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}{did_you_mean(name, list(self._items))}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# Filled by alignbench.backends.* and alignbench.judges.* modules.
backends: Registry[type] = Registry("backend", autoload="alignbench.backends")
judge_kinds: Registry[type] = Registry("judge kind", autoload="alignbench.judges")
# Per-family scoring code (per-sample metrics and task-level aggregates), filled by alignbench.scorers.*
scorers: Registry[type] = Registry("scorer", autoload="alignbench.scorers")
# CLI subcommands, filled by alignbench.commands.*
commands: Registry[type] = Registry("command", autoload="alignbench.commands")
