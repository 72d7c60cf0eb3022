"""The files of one run (DESIGN §4): run.json, samples.jsonl, metrics.json.

samples.jsonl is appended one whole line per sample and flushed to disk per batch, so a killed run
loses at most the batch in flight; ``repair`` drops a torn last line before a resumed run appends.
Every record is one sample (task, sample id, epoch) once: a file that holds one twice (two processes
appended to it at once) is refused by every reader, since counting it twice would narrow every interval.
Files are written through ``alignbench.jsonl`` (no NaN or infinity in any of them).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.jsonl import append_lines, write_json
from alignbench.records.epochs import record_epoch

RUN_ID = re.compile(r"[A-Za-z0-9._-]+")

RUN_FILE = "run.json"
SAMPLES_FILE = "samples.jsonl"
METRICS_FILE = "metrics.json"


def check_run_id(run_id: str, flag: str = "--run-id") -> str:
    """``run_id`` when it is a safe folder name (letters, digits, '.', '_', '-'; not '.' or '..'), else a UsageError."""
    if not RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
        raise UsageError(f"{flag} {run_id!r}: use letters, digits, '.', '_' and '-' only")
    return run_id


def _read_object(path: Path, missing: str) -> dict[str, Any]:
    """A JSON object from ``path``; anything else (missing, unreadable, not UTF-8, not JSON, not an object) is a UsageError."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(missing) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def samples_file(self) -> Path:
        return self.path / SAMPLES_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    def exists(self) -> bool:
        return self.run_file.is_file()

    # run.json -----------------------------------------------------------------------------------
    def read_run(self) -> dict[str, Any]:
        return _read_object(self.run_file, f"{self.path}: not a run folder (no {RUN_FILE})")

    def write_run(self, info: dict[str, Any]) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            write_json(self.run_file, info)
        except OSError as exc:  # a file where a folder should be, no permission, a full disk
            raise UsageError(f"cannot write the run folder {self.path} ({exc.strerror or exc.__class__.__name__})") from None

    def update_run(self, **fields: Any) -> dict[str, Any]:
        info = self.read_run()
        info.update(fields)
        self.write_run(info)
        return info

    # samples.jsonl --------------------------------------------------------------------------------
    def repair(self) -> int:
        """Truncate a torn (partially written) last line; returns the bytes dropped."""
        f = self.samples_file
        if not f.is_file():
            return 0
        data = f.read_bytes()
        keep = len(data)
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(f, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
        return len(data) - keep

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        append_lines(self.samples_file, records, lambda r: f"{self.samples_file}: task {r.get('task')!r} sample {r.get('sample_id')!r}")

    def records(self, task: str | None = None) -> list[dict[str, Any]]:
        """Every complete record (a torn last line is ignored), optionally of one task. A sample (task, sample id,
        epoch) that appears twice is a UsageError naming both lines: the run was written by two processes at once."""
        out = []
        if not self.samples_file.is_file():
            return out
        seen: dict[tuple[str, str, int], int] = {}
        with open(self.samples_file, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    break  # torn by a kill mid-write
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise UsageError(f"{self.samples_file}: line {n}: not UTF-8 text") from None
                except json.JSONDecodeError:
                    raise UsageError(f"{self.samples_file}: line {n}: invalid JSON") from None
                if not isinstance(rec, dict) or not isinstance(rec.get("task"), str) or rec.get("sample_id") is None:
                    raise UsageError(f"{self.samples_file}: line {n}: not a sample record (an object with 'task' and 'sample_id')")
                key = (rec["task"], str(rec["sample_id"]), record_epoch(rec))
                if key in seen:
                    epoch = f" epoch {key[2]}" if "epoch" in rec else ""
                    raise UsageError(f"{self.samples_file}: line {n}: sample {key[1]!r} of task {key[0]!r}{epoch} is also on line "
                                     f"{seen[key]} (two processes wrote this run at once); its numbers would count it twice, so the "
                                     "run is not read: re-run it under a new --run-id")
                seen[key] = n
                if task is None or rec.get("task") == task:
                    out.append(rec)
        return out

    def done_keys(self) -> set[tuple[str, str]]:
        return {(r["task"], str(r["sample_id"])) for r in self.records()}

    # metrics.json -------------------------------------------------------------------------------
    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.metrics_file, metrics)

    def read_metrics(self) -> dict[str, Any]:
        return _read_object(self.metrics_file, f"{self.path}: no {METRICS_FILE} (run incomplete?)")
