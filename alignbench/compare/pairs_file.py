"""``pairs.jsonl``: the judged pairs of a compare, read with every line checked, and written.

A line is one unit (runs ``a`` and ``b`` on one sample; fields in ``alignbench.compare.judging``). Reading
checks every line: an object, ``a``/``b``/``task``/``sample_id`` strings, ``winner`` one of ``a``, ``b``,
``tie`` or null, ``score`` (when present) the one that winner gives, and each unit once. A line that breaks
any of these is a one-line UsageError naming the file and the line, never a number: win rates are counted
from ``winner`` alone (``SCORE``), so a hand-edited score cannot move them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.jsonl import append_lines, write_lines

PAIRS_FILE = "pairs.jsonl"
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5}  # a's score of each winner
KEY_FIELDS = ("a", "b", "task", "sample_id")


def line_key(ln: dict[str, Any]) -> tuple[str, str, str, str]:
    """The unit a line judged (``Unit.key``): (a, b, task, sample id)."""
    return ln["a"], ln["b"], ln["task"], ln["sample_id"]


def check_line(ln: Any, where: str) -> dict[str, Any]:
    """``ln`` when it is a well-formed pairs.jsonl line, else a UsageError naming ``where`` and the field."""
    if not isinstance(ln, dict):
        raise UsageError(f"{where}: expected a JSON object, got {'null' if ln is None else type(ln).__name__}")
    for f in KEY_FIELDS:
        if not isinstance(ln.get(f), str) or not ln[f]:
            raise UsageError(f"{where}: field {f!r} must be a non-empty string, got {ln.get(f)!r:.60}")
    winner = ln.get("winner")
    if winner is not None and winner not in SCORE:
        raise UsageError(f"{where}: winner {winner!r:.60} is not a, b, tie or null")
    if "score" in ln:
        want = None if winner is None else SCORE[winner]
        score = ln["score"]
        same = score is None if want is None else (isinstance(score, (int, float)) and not isinstance(score, bool) and score == want)
        if not same:
            raise UsageError(f"{where}: score {score!r:.60} does not go with winner {winner!r} (it would be {want!r})")
    verdicts = ln.get("verdicts")
    if verdicts is not None and not (isinstance(verdicts, list) and all(isinstance(v, dict) for v in verdicts)):
        raise UsageError(f"{where}: field 'verdicts' must be a list of objects")
    if ln.get("error") is not None and not isinstance(ln["error"], str):
        raise UsageError(f"{where}: field 'error' must be a string or null")
    return ln


def read_pairs(path: str | Path, cut_torn: bool = False) -> list[dict[str, Any]]:
    """Every complete line of ``path``, checked (``check_line``), each unit once. A torn last line (a kill
    mid-write) is left out; ``cut_torn`` (the compare that continues the file) also cuts it off the file."""
    p = Path(path)
    if not p.is_file():
        return []
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"{p}: cannot read ({exc.strerror or exc})") from None
    keep = data.rfind(b"\n") + 1
    if cut_torn and keep < len(data):
        with open(p, "r+b") as f:
            f.truncate(keep)
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for n, raw in enumerate(data[:keep].splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{p}: line {n}"
        try:
            ln = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"{where}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: invalid JSON ({exc.msg})") from None
        key = line_key(check_line(ln, where))
        if key in seen:
            raise UsageError(f"{where}: pair {key[0]} vs {key[1]} on {key[2]}/{key[3]} is also on line {seen[key]}; "
                             "each pair is judged once (a file two processes wrote, or edited by hand)")
        seen[key] = n
        out.append(ln)
    return out


def append_pairs(path: Path, lines: list[dict[str, Any]]) -> None:
    append_lines(path, lines, lambda ln: f"{path}: pair {ln.get('a')} vs {ln.get('b')} on {ln.get('task')}/{ln.get('sample_id')}")


def rewrite_pairs(path: Path, lines: list[dict[str, Any]]) -> None:
    """Replace pairs.jsonl with ``lines`` in one step (a kill leaves the old file or the new one)."""
    write_lines(path, lines)


__all__ = ["PAIRS_FILE", "SCORE", "line_key", "check_line", "read_pairs", "append_pairs", "rewrite_pairs"]
