"""``alignbench list tasks [NAME]|judges|backends``: tab-separated tables on stdout, a header row first."""

from __future__ import annotations

import argparse

from alignbench.errors import UsageError
from alignbench.judges.catalog import builtin_judges
from alignbench.registry import backends, commands
from alignbench.tasks.catalog import builtin_catalog


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    for row in [header, *rows]:
        print("\t".join(row))


@commands.register("list")
class ListCommand:
    help = "list registered tasks, judges or backends"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("what", choices=["tasks", "judges", "backends"])
        p.add_argument("name", nargs="?", help="with tasks: only the tasks of this group, name or glob (e.g. honesty, 'truthfulqa_*')")

    def run(self, args: argparse.Namespace) -> int:
        if args.name is not None and args.what != "tasks":
            raise UsageError(f"list {args.what} takes no NAME (only `list tasks GROUP` does)")
        if args.what == "tasks":
            cat = builtin_catalog()
            if args.name is not None:
                chosen = cat.get(args.name)  # a group, a name or a glob; an unknown one is a usage error with did-you-mean
                _table(("task", "groups", "description"), [(t.name, ",".join(t.group), _first_line(t.description)) for t in chosen])
                return 0
            rows = [(name, ",".join(cfg.group), _first_line(cfg.description)) for name, cfg in sorted(cat.tasks.items())]
            rows += [(g, "group", ", ".join(members)) for g, members in sorted(cat.groups.items())]
            _table(("task", "groups", "description"), rows)
        elif args.what == "judges":
            _table(("judge", "kind", "description"),
                   [(name, cfg.kind, _first_line(cfg.description)) for name, cfg in sorted(builtin_judges().judges.items())])
        else:
            _table(("backend", "description"), [(name, _first_line(backends.get(name).__doc__)) for name in backends.names()])
        return 0
