"""JSON and JSON Lines, read and written in one place.

Reading: every line must be an object, with line-numbered errors (``iter_objects``).

Writing: every JSON or JSONL file alignbench writes (run.json, samples.jsonl, metrics.json, pairs.jsonl,
compare.json, judged files, judge cards, the generation cache's values) goes through ``dumps``, which
refuses NaN and infinity: JSON has no such numbers, and a reader that meets ``NaN`` either fails or, worse,
counts it. The error names the field that held the number (``judgments.refusal_clf.score``) and the file.
``write_json`` replaces a file in one step (a kill leaves the old file or the new one); ``append_lines``
appends whole lines and flushes them to disk; ``write_lines`` replaces a JSONL file in one step.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError


def iter_objects(text: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a bad line is a one-line error naming ``where`` and the line."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: line {n}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise UsageError(f"{where}: line {n}: expected a JSON object, got {type(row).__name__}")
        yield n, row


def _default(obj: Any) -> Any:
    """What ``json`` cannot encode by itself: numpy scalars and arrays as numbers and lists, anything else as text."""
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def nonfinite_field(obj: Any, prefix: str = "") -> tuple[str, float] | None:
    """(dotted path, value) of the first NaN or infinite number in ``obj`` (dicts, lists, numpy values), else None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (prefix or "(value)", obj)
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = nonfinite_field(v, f"{prefix}.{k}" if prefix else str(k))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = nonfinite_field(v, f"{prefix}[{i}]")
            if found:
                return found
    elif type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return nonfinite_field(obj.tolist(), prefix)
    return None


def dumps(obj: Any, where: str = "JSON output", indent: int | None = None) -> str:
    """``obj`` as JSON text (UTF-8 kept, numpy values as numbers); a NaN or infinite number anywhere in it is a
    UsageError naming ``where`` and the field, and nothing is written."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_default, indent=indent)
    except ValueError:
        found = nonfinite_field(obj)
        if found is None:
            raise
        path, value = found
        raise UsageError(f"{where}: {path} is {value} (not a number JSON can hold); nothing written") from None


def dump_lines(rows: Iterable[Any], where: str | Callable[[Any], str] = "JSONL output") -> str:
    """One ``dumps`` line per row, each ending in a newline; ``where`` may name each row's place (a function of the row)."""
    return "".join(dumps(r, where(r) if callable(where) else where) + "\n" for r in rows)


def append_lines(path: str | Path, rows: Iterable[Any], where: str | Callable[[Any], str] | None = None) -> None:
    """Append whole JSON lines to ``path`` and flush them to disk (a kill loses at most a torn last line). Every
    row is encoded before any is written, so a row that cannot be written leaves the file as it was."""
    text = dump_lines(rows, where or str(path))
    if not text:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _new_file_mode(path: Path) -> int:
    """The permissions ``path`` keeps (its own when it exists, else what the process's umask gives a new file):
    the temporary file of ``_replace`` is created private, and must not make the file it replaces so."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_lines(path: str | Path, rows: Iterable[Any], where: str | Callable[[Any], str] | None = None) -> None:
    """Replace the JSONL file ``path`` with ``rows`` in one step."""
    p = Path(path)
    _replace(p, dump_lines(rows, where or str(p)))


def write_json(path: str | Path, data: Any, where: str | None = None) -> None:
    """Replace the JSON file ``path`` with ``data`` (indented, one trailing newline) in one step."""
    p = Path(path)
    _replace(p, dumps(data, where or str(p), indent=2) + "\n")
