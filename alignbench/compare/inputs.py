"""What ``alignbench compare`` compares: the runs, their responses per sample, and the pairs of runs.

A sample is (task, sample id). A run's response to it is the record's ``response``; a run made with
``--epochs N`` gives the epoch its reducer keeps: the epoch its ``best_of:JUDGE`` judge scored highest,
else the first epoch. Records without a text response (multiple-choice tasks) are not compared.

Two runs are compared on the samples both answered; a sample whose user request differs between the
two runs (another data version) is left out and counted.

A run must be complete (as report and gate ask); ``allow_incomplete`` takes a failed or unfinished one with
the samples it has. Each run is known by its resolved folder and its identity: model fingerprint, created
time and a hash of the responses compared (``CompareRun.identity``), so a compare that continues can tell
that a run was made again under the same id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.records.epochs import best_epoch_record, best_of_judge, record_epoch
from alignbench.records.files import RunDir
from alignbench.types import prompt_text

PAIR_MODES = ("all", "baseline")
Key = tuple[str, str]  # (task, sample id)


@dataclass
class CompareRun:
    label: str  # the run id, suffixed when two runs share one
    run_id: str
    path: Path  # resolved
    model: str | None
    records: dict[Key, dict[str, Any]] = field(default_factory=dict)  # the record compared per sample
    status: str | None = "complete"
    identity: dict[str, Any] = field(default_factory=dict)  # model fingerprint, created time, hash of the responses

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "run_id": self.run_id, "path": str(self.path), "model": self.model, "status": self.status,
                "identity": self.identity}


def responses_hash(records: dict[Key, dict[str, Any]]) -> str:
    """A hash of what a compare judges of a run: each sample's prompt and response (and epoch), in sample order."""
    h = hashlib.sha256()
    for key in sorted(records):
        r = records[key]
        h.update(json.dumps([key[0], key[1], r.get("epoch"), prompt_text(r.get("prompt") or ""), r.get("response")],
                            ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def run_identity(info: dict[str, Any], records: dict[Key, dict[str, Any]]) -> dict[str, Any]:
    fp = info.get("model_fingerprint")
    return {"model_fingerprint": fp.get("hash") if isinstance(fp, dict) else fp, "created": info.get("created"),
            "responses": responses_hash(records)}


@dataclass(frozen=True)
class Unit:
    """One judgment to make: runs ``a`` and ``b`` on one sample."""

    a: str
    b: str
    task: str
    sample_id: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.a, self.b, self.task, self.sample_id)


def chosen_records(records: list[dict[str, Any]], reducer: str) -> dict[Key, dict[str, Any]]:
    """The record compared per sample: the ``best_of`` epoch, else the first epoch; text responses only."""
    by_key: dict[Key, list[dict[str, Any]]] = {}
    for r in records:
        if isinstance(r.get("response"), str):
            by_key.setdefault((str(r["task"]), str(r["sample_id"])), []).append(r)
    judge = best_of_judge(reducer)
    out = {}
    for key, recs in by_key.items():
        recs.sort(key=record_epoch)
        out[key] = (best_epoch_record(recs, judge) if judge and len(recs) > 1 else None) or recs[0]
    return out


def load_runs(paths: list[str], allow_incomplete: bool = False) -> list[CompareRun]:
    if len(paths) < 2:
        raise UsageError(f"compare needs at least two runs (RUN_A RUN_B [RUN ...]); got {len(paths)}")
    runs: list[CompareRun] = []
    seen: dict[Path, str] = {}
    for p in paths:
        rd = RunDir(Path(p).expanduser())
        if not rd.exists():
            raise UsageError(f"{p}: not a run folder (no run.json)")
        resolved = rd.path.resolve()
        if resolved in seen:
            raise UsageError(f"{p}: the same run is given twice (as {seen[resolved]})")
        seen[resolved] = p
        info = rd.read_run()
        status = info.get("status")
        if status != "complete" and not allow_incomplete:
            raise UsageError(f"{p}: run status is {status!r}, not 'complete' (a failed or unfinished run); finish it with "
                             "alignbench eval ... --resume, or pass --allow-incomplete to compare the samples it has")
        run_id = str(info.get("run_id") or rd.path.name)
        label, k = run_id, 2
        while any(r.label == label for r in runs):
            label, k = f"{run_id}#{k}", k + 1
        reducer = str((info.get("config") or {}).get("reducer") or "mean")
        recs = chosen_records(rd.records(), reducer)
        if not recs:
            raise UsageError(f"{p}: the run has no text responses to compare")
        runs.append(CompareRun(label, run_id, resolved, info.get("model"), recs, status, run_identity(info, recs)))
    return runs


def run_pairs(runs: list[CompareRun], mode: str) -> list[tuple[CompareRun, CompareRun]]:
    """``all``: every pair in the order given; ``baseline``: every other run against the first (first = b)."""
    if mode not in PAIR_MODES:
        raise UsageError(f"--pairs {mode!r}: use all or baseline")
    if mode == "baseline":
        return [(r, runs[0]) for r in runs[1:]]
    return list(itertools.combinations(runs, 2))


def units(pairs: list[tuple[CompareRun, CompareRun]]) -> tuple[list[Unit], dict[str, int]]:
    """Every (pair, shared sample) to judge, in a stable order, and the samples left out (``prompt_differs``).

    A pair of runs that shares no sample is a UsageError."""
    out: list[Unit] = []
    differs = 0
    for a, b in pairs:
        shared = [k for k in a.records if k in b.records]
        if not shared:
            raise UsageError(f"runs {a.label} and {b.label} share no samples (same task and sample id); nothing to compare")
        kept = [k for k in shared if prompt_text(a.records[k].get("prompt") or "") == prompt_text(b.records[k].get("prompt") or "")]
        differs += len(shared) - len(kept)
        if not kept:
            raise UsageError(f"runs {a.label} and {b.label}: every shared sample has a different prompt; nothing to compare")
        out.extend(Unit(a.label, b.label, t, s) for t, s in sorted(kept))
    return out, {"prompt_differs": differs}
