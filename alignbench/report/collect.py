"""What a report is made of: runs, their samples, and the optional result files found beside them.

A report argument may be a run folder, a folder of runs, or a folder / file holding only analysis
results (``drift.json``, ``token_shift.json``, ``judge_eval.json``), as ``alignbench drift`` or
``alignbench judge-eval`` leave them; a drift brings the base and tuned runs it names, and a compare
(``compare.json``, ``pairs.jsonl``) the runs it compared, where they still exist, so their samples can
be compared side by side. Every run gets a unique display label (its run id, suffixed
when two folders share one).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alignbench.compare.pairs_file import PAIRS_FILE, read_pairs
from alignbench.errors import UsageError
from alignbench.records.files import RUN_FILE, RunDir
from alignbench.results import RUN_COLUMNS, find_run_dirs, load_runs, load_samples

#: Optional files a run folder (or an analysis folder) may hold, by report section.
EXTRA_FILES = ("judge_eval.json", "drift.json", "token_shift.json", "flips.jsonl", "compare.json", "pairs.jsonl", "track.json",
               "trace.json", "trace.jsonl")
TRACE_FOLDER = "trace"  # alignbench trace's default output inside a run folder
MAX_FLIPS = 10_000  # flips.jsonl lines read (the report shows a few)


@dataclass
class Extra:
    """One optional JSON result file: its kind (file stem), where it came from, and its content."""

    kind: str  # judge_eval | drift | token_shift | flips | compare | pairs
    source: str  # display label (run label or path)
    path: Path
    data: Any


@dataclass
class ReportData:
    runs: pd.DataFrame  # load_runs() + column ``run`` (display label)
    samples: pd.DataFrame  # load_samples() + column ``run``
    infos: dict[str, dict[str, Any]]  # run label -> run.json
    extras: list[Extra] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # run label -> metrics.json as written

    @property
    def labels(self) -> list[str]:
        return list(self.infos)

    def extras_of(self, kind: str) -> list[Extra]:
        return [e for e in self.extras if e.kind == kind]


def _read_json(path: Path) -> Any:
    if path.name == PAIRS_FILE:  # every line checked: a tampered line is an error, not a number
        return read_pairs(path)
    try:
        if path.suffix == ".jsonl":
            rows = []
            with open(path, encoding="utf-8") as f:
                for n, line in zip(range(1, MAX_FLIPS + 1), f):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise UsageError(f"{path}: line {n}: invalid JSON ({exc.msg})") from None
            return rows
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _extras_in(folder: Path, source: str) -> list[Extra]:
    return [Extra(name.split(".")[0], source, folder / name, _read_json(folder / name)) for name in EXTRA_FILES if (folder / name).is_file()]


def _drift_runs(e: Extra) -> list[Path]:
    """The base and tuned run folders a drift.json names (``{"base": {"run": PATH}, ...}``), where they still exist:
    the path as written, else a folder of that name beside the drift folder."""
    sides = [e.data.get(side) if isinstance(e.data, dict) else None for side in ("base", "tuned")]
    return _existing_runs([rec.get("run") if isinstance(rec, dict) else None for rec in sides], e)


def _compare_runs(e: Extra) -> list[Path]:
    """The run folders a compare.json names (``settings.runs[].path``), where they still exist (as ``_drift_runs``)."""
    runs = ((e.data.get("settings") or {}).get("runs") or []) if isinstance(e.data, dict) else []
    return _existing_runs([r.get("path") if isinstance(r, dict) else None for r in runs], e)


def _track_runs(e: Extra) -> list[Path]:
    """The run folders a track.json names (its baseline, then ``checkpoints[].run_dir``), where they still exist."""
    data = e.data if isinstance(e.data, dict) else {}
    base = data.get("baseline") if isinstance(data.get("baseline"), dict) else {}
    runs = [base.get("run_dir")] + [c.get("run_dir") for c in data.get("checkpoints") or [] if isinstance(c, dict)]
    return _existing_runs(runs, e)


def _existing_runs(paths: list[Any], e: Extra) -> list[Path]:
    """Each named run folder that holds a run: the path as written, else a folder of that name beside the
    result's folder; names that are not strings, or find no run, are left out."""
    out = []
    for path in paths:
        if not isinstance(path, str) or not path:
            continue
        for cand in (Path(path).expanduser(), e.path.parent.parent / Path(path).name):
            if (cand / RUN_FILE).is_file() and (cand / "metrics.json").is_file():
                out.append(cand)
                break
    return out


def collect(paths: list[str | Path]) -> ReportData:
    """Load everything a report shows; raises ``UsageError`` for a path that holds nothing reportable."""
    if not paths:
        raise UsageError("report: give at least one run folder")
    run_paths: list[Path] = []
    extras: list[Extra] = []
    for item in paths:
        p = Path(item).expanduser()
        if p.is_file() and p.name in EXTRA_FILES:
            extras.append(Extra(p.name.split(".")[0], p.resolve().parent.name, p, _read_json(p)))
        elif p.is_dir() and not (p / RUN_FILE).is_file() and not any(p.glob(f"*/{RUN_FILE}")) and _extras_in(p, p.name):
            extras.extend(_extras_in(p, p.resolve().name))
        else:
            found = find_run_dirs(p)
            if p.is_dir() and (p / "track.json").is_file() and not (p / RUN_FILE).is_file():  # a track folder: its series too
                extras.append(Extra("track", p.resolve().name, p / "track.json", _read_json(p / "track.json")))
            for rd in found:
                if len(found) > 1 or rd.path != p:  # inside a parent folder: an unfinished run is skipped, not fatal
                    if not rd.metrics_file.is_file():
                        warnings.warn(f"{rd.path}: no metrics.json (status {rd.read_run().get('status')!r}); skipped", stacklevel=2)
                        continue
                if any(rd.path.resolve() == known.resolve() for known in run_paths):  # the same run named twice: shown once
                    continue
                run_paths.append(rd.path)
    for e in [e for e in extras if e.kind in ("drift", "compare", "track")]:
        for rp in (_drift_runs(e) if e.kind == "drift" else _compare_runs(e) if e.kind == "compare" else _track_runs(e)):
            if all(rp.resolve() != known.resolve() for known in run_paths):
                run_paths.append(rp)
    infos: dict[str, dict[str, Any]] = {}
    raw_metrics: dict[str, dict[str, Any]] = {}
    label_of: dict[str, str] = {}
    for rp in run_paths:
        rd = RunDir(rp)
        info = rd.read_run()
        base = str(info.get("run_id") or rp.name)
        label, k = base, 2
        while label in infos:
            label, k = f"{base}#{k}", k + 1
        infos[label] = info
        raw = rd.read_metrics() if rd.metrics_file.is_file() else {}
        raw_metrics[label] = raw if isinstance(raw, dict) else {}
        label_of[str(rp)] = label
        extras.extend(_extras_in(rp, label))
        extras.extend(_extras_in(rp / TRACE_FOLDER, label))  # a trace beside the run
    runs = load_runs(run_paths) if run_paths else pd.DataFrame(columns=RUN_COLUMNS)
    runs.insert(0, "run", runs["path"].map(label_of))
    frames = []
    for rp in run_paths:
        df = load_samples(rp)
        df.insert(0, "run", label_of[str(rp)])
        frames.append(df)
    samples = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame(columns=["run", "run_id", "task", "sample_id"])
    return ReportData(runs, samples, infos, extras, raw_metrics)
