"""Reading the JSONL files of ``alignbench judge`` / ``judge-eval`` and running named judges on them.

Each line is a JSON object with ``prompt`` (a string or a chat message list) and ``response``;
``references`` (a list of strings, or one string) is optional; ``id``/``sample_id`` and ``category``
are used when present; every other field (and a ``meta`` object, if any) becomes the judge's
``meta``, so per-sample judge inputs such as ``constraints`` or ``pattern`` work. A bad line is a
one-line UsageError naming the file and the line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.jsonl import append_lines, iter_objects, write_lines
from alignbench.judges.base import Judge
from alignbench.judges.catalog import builtin_judges, check_judge_model_names, judge_model_overrides
from alignbench.types import JudgeInput

RESERVED = {"prompt", "response", "references", "id", "sample_id", "category", "meta", "judgments"}


def read_rows(path: str, required: tuple[str, ...] = ("prompt", "response")) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--input {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--input {path}: cannot read ({exc.__class__.__name__})") from None
    rows = []
    for n, row in iter_objects(text, path):
        missing = [f for f in required if f not in row or row[f] is None]
        if missing:
            raise UsageError(f"{path}: line {n}: missing field {missing[0]!r}")
        if not isinstance(row["prompt"], (str, list)):
            raise UsageError(f"{path}: line {n}: field 'prompt' must be a string or a list of chat messages")
        if not isinstance(row["response"], str):
            raise UsageError(f"{path}: line {n}: field 'response' must be a string")
        refs = row.get("references")
        if refs is not None and not (isinstance(refs, str) or (isinstance(refs, list) and all(isinstance(r, str) for r in refs))):
            raise UsageError(f"{path}: line {n}: field 'references' must be a string or a list of strings")
        if row.get("meta") is not None and not isinstance(row["meta"], dict):
            raise UsageError(f"{path}: line {n}: field 'meta' must be an object")
        row["_line"] = n
        rows.append(row)
    if not rows:
        raise UsageError(f"--input {path}: no lines")
    return rows


def judge_input(row: dict[str, Any]) -> JudgeInput:
    refs = row.get("references")
    meta = {k: v for k, v in row.items() if k not in RESERVED and not k.startswith("_")}
    meta.update(row.get("meta") or {})
    sid = row.get("sample_id", row.get("id", row["_line"]))
    return JudgeInput(prompt=row["prompt"], response=row["response"], references=[refs] if isinstance(refs, str) else refs,
                      sample_id=str(sid), category=row.get("category"), meta=meta)


def set_judgment(row: dict[str, Any], judge: str, judgment: dict[str, Any]) -> None:
    """Add ``judgment`` under ``row["judgments"][judge]``, keeping the other judges' entries; a ``judgments`` field that is
    not an object (null, a string) is replaced."""
    if not isinstance(row.get("judgments"), dict):
        row["judgments"] = {}
    row["judgments"][judge] = judgment


def build_judges(names: str, args: Any = None) -> list[Judge]:
    """The named judges, with ``--judge-model`` / ``--judge-model-args`` of ``args`` applied, their models loaded and checked
    (``Judge.check``)."""
    from alignbench.commands._options import parse_judge_model_args, parse_judge_models

    wanted = list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if not wanted:
        raise UsageError("--judges is empty; name one or more judges (alignbench list judges)")
    catalog = builtin_judges()
    models = parse_judge_models(getattr(args, "judge_model", "") or "")
    model_args = parse_judge_model_args(getattr(args, "judge_model_args", None) or [])
    for n in wanted:
        catalog.config(n)  # an unknown name fails before any other check
    check_judge_model_names(catalog, models, model_args, wanted)
    judges = [catalog.build(n, **judge_model_overrides(n, models, model_args)) for n in wanted]
    try:
        for j in judges:
            j.check()  # loaded, and judging a fixed input: a broken judge stops here, not on every line
    except BaseException:
        for j in judges:
            j.close()
        raise
    return judges


def _visible(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if not k.startswith("_")}


def write_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    """Write all lines to a temporary file next to ``path``, then rename it into place."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_lines(out, [_visible(r) for r in rows], f"--output {path}")
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write ({exc.strerror or exc})") from None


class ProgressFile:
    """``OUTPUT.partial``: judged lines appended and flushed as they finish, renamed to OUTPUT at the end."""

    def __init__(self, output: str) -> None:
        self.output = Path(output)
        self.path = self.output.with_name(self.output.name + ".partial")

    def check(self, input_path: str, resume: bool, overwrite: bool) -> None:
        """Refuse an OUTPUT that is the input file, or one that exists, unless asked to resume or overwrite it."""
        inp = Path(input_path)
        for out in (self.output, self.path):
            same = out.resolve() == inp.resolve() or (out.exists() and inp.exists() and os.path.samefile(out, inp))
            if same:
                raise UsageError(f"--output {self.output}: that is the --input file (writing would replace it); name another file")
        if self.output.is_dir():
            raise UsageError(f"--output {self.output}: is a folder; name a file")
        if self.output.exists() and not (resume or overwrite):
            raise UsageError(f"--output {self.output} already exists; pass --overwrite to replace it or --resume to keep its lines")
        if self.path.exists() and not (resume or overwrite):  # the judged lines of an interrupted run
            raise UsageError(f"--output {self.output}: {self.path} holds the lines of an interrupted run; pass --resume to "
                             "continue it or --overwrite to start again")

    def start(self) -> int:
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                warn(f"discarding {self.path} from an interrupted run (--overwrite)")
            self.path.write_bytes(b"")
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write ({exc.strerror or exc})") from None
        return 0

    def resume(self, rows: list[dict[str, Any]], judge_names: list[str]) -> int:
        """Keep the complete lines of an interrupted run (a torn last line is dropped), or of a finished OUTPUT
        when there is no progress file; returns how many. A file that is not this input judged is refused, untouched."""
        source = self.path if self.path.is_file() else self.output if self.output.is_file() else None
        if source is None:
            return self.start()
        data = source.read_bytes()
        keep = data.rfind(b"\n") + 1  # a kill mid-write leaves a torn last line
        lines = data[:keep].decode("utf-8", errors="replace").splitlines()
        if len(lines) > len(rows):
            raise UsageError(f"--resume: {source} has more lines ({len(lines)}) than --input ({len(rows)}); is it another run's?")
        for n, (line, row) in enumerate(zip(lines, rows), 1):
            try:
                done = json.loads(line)
            except json.JSONDecodeError:
                raise UsageError(f"--resume: {source} line {n}: invalid JSON; delete it to start over") from None
            same = isinstance(done, dict) and all(done.get(k) == v for k, v in row.items() if not k.startswith("_") and k != "judgments")
            judged = isinstance(done, dict) and isinstance(done.get("judgments"), dict) and all(j in done["judgments"] for j in judge_names)
            if not (same and judged):
                raise UsageError(f"--resume: {source} line {n} is not input line {row['_line']} judged by {', '.join(judge_names)}; "
                                 "delete it to start over")
            row.clear()
            row.update(done)
        try:
            if source == self.path:
                with open(self.path, "r+b") as f:
                    f.truncate(keep)
            else:  # a finished OUTPUT: its lines count as done, so nothing already judged is lost
                self.path.write_bytes(data[:keep])
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write {self.path} ({exc.strerror or exc})") from None
        return len(lines)

    def append(self, rows: list[dict[str, Any]]) -> None:
        try:
            append_lines(self.path, [_visible(r) for r in rows], f"--output {self.output}")
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write {self.path} ({exc.strerror or exc})") from None

    def finish(self) -> None:
        try:
            os.replace(self.path, self.output)
        except OSError as exc:
            raise UsageError(f"--output {self.output}: cannot write ({exc.strerror or exc})") from None


def warn(msg: str) -> None:
    print(f"alignbench: {msg}", file=sys.stderr)
