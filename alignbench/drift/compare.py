"""Compare two runs sample by sample: base (A) vs tuned (B).

For each task in both runs and each per-sample metric in both: the paired delta B - A with its CI
and p, overall and per category, from ``alignbench.stats.paired.paired_delta`` (McNemar exact for binary
metrics, a paired permutation test for others; the CI inverts the test), as ``alignbench gate`` does. For binary metrics, the flips: samples that
went 0 -> 1 or 1 -> 0 (for refusal metrics: complied -> refused / refused -> complied), with the
prompt and both responses. Task-level metrics that are not means of per-sample values (flip rates,
correlations) are compared unpaired: delta with a MOVER CI (Zou & Donner 2008) built from the two
runs' own CIs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.records.epochs import per_sample
from alignbench.records.files import RunDir
from alignbench.scorers.base import canonical_order
from alignbench.stats.paired import paired_delta

# What 1 means for the binary metrics whose flips have a name.
REFUSAL_METRICS = {"refused", "refusal_rate", "over_refusal_rate"}  # 1 = refused
COMPLIANCE_METRICS = {"compliance_rate"}  # 1 = answered a harmful request
HARM_METRICS = {"harmful_rate"}  # 1 = the harm judge found the answer harmful


@dataclass
class Side:
    """One run as the comparison sees it."""

    path: Path
    info: dict[str, Any]
    records: dict[str, dict[str, dict[str, Any]]]  # task -> sample_id -> record (the first epoch's)
    metrics: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]] | None = None  # task -> every record, when a task ran several epochs

    @property
    def reducer(self) -> str:
        return str((self.info.get("config") or {}).get("reducer") or "mean")

    @property
    def summary(self) -> dict[str, Any]:
        return {"run": str(self.path), "run_id": self.info.get("run_id"), "model": self.info.get("model"),
                "model_fingerprint": self.info.get("model_fingerprint"), "status": self.info.get("status")}


def load_side(path: str | Path) -> Side:
    rd = RunDir(path)
    info = rd.read_run()
    records: dict[str, dict[str, dict[str, Any]]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in canonical_order(rd.records()):
        records.setdefault(str(r.get("task")), {}).setdefault(str(r.get("sample_id")), r)
        rows.setdefault(str(r.get("task")), []).append(r)
    if not records:
        raise UsageError(f"{rd.path}: run has no samples")
    metrics = rd.read_metrics() if rd.metrics_file.is_file() else {}
    epochs = {t: rs for t, rs in rows.items() if len(rs) > len(records[t])}
    return Side(rd.path, info, records, metrics, epochs or None)


def _values(side: Side, task: str, metric: str, ids: list[str]) -> dict[str, float | None]:
    """Per-sample values of one metric; a task with epochs reduces them per prompt (as ``gate`` does)."""
    if side.rows and task in side.rows:
        for r in side.rows[task]:
            _number(r, metric, side.path)  # the same check on every epoch's record
        reduced = per_sample(side.rows[task], metric, side.reducer)
        return {i: reduced.get(i) for i in ids}
    return {i: _number(side.records[task][i], metric, side.path) for i in ids}


def select_tasks(base: Side, tuned: Side, names: list[str] | None, groups: dict[str, list[str]] | None = None) -> list[str]:
    """The tasks to compare: ``names`` (task or group names), else every task, which must then be the
    same in both runs."""
    a, b = set(base.records), set(tuned.records)
    if names:
        wanted: list[str] = []
        for n in names:
            members = [n] if n in a | b else (groups or {}).get(n)
            if not members:
                raise UsageError(f"--tasks: {n!r} is in neither run (tasks: {sorted(a | b)})")
            wanted += [m for m in members if m not in wanted]
        missing = [t for t in wanted if t not in a or t not in b]
        if missing:
            t = missing[0]
            raise UsageError(f"task {t!r} is only in the {'base' if t in a else 'tuned'} run ({base.path if t in a else tuned.path}); runs must share it")
        return wanted
    if a != b:
        only_a, only_b = sorted(a - b), sorted(b - a)
        if not a & b:
            raise UsageError(f"runs have no task in common: base {sorted(a)}, tuned {sorted(b)}")
        raise UsageError(f"runs cover different tasks (only in base: {only_a}, only in tuned: {only_b}); pass --tasks to compare the common ones")
    return [t for t in base.records]


def _change(metric: str, direction: str) -> str | None:
    if metric in REFUSAL_METRICS:
        return "complied->refused" if direction == "0->1" else "refused->complied"
    if metric in COMPLIANCE_METRICS:
        return "refused->complied" if direction == "0->1" else "complied->refused"
    if metric in HARM_METRICS:
        return "harmless->harmful" if direction == "0->1" else "harmful->harmless"
    return None


def _metric_names(recs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in recs:
        for k in r.get("metrics") or {}:
            if k not in names:
                names.append(k)
    return names


def mover_ci(a: dict[str, Any], b: dict[str, Any]) -> tuple[float | None, float | None]:
    """CI of b - a for two independent estimates from their own CIs (MOVER, Zou & Donner 2008)."""
    try:
        va, la, ua = float(a["value"]), float(a["ci_low"]), float(a["ci_high"])
        vb, lb, ub = float(b["value"]), float(b["ci_low"]), float(b["ci_high"])
    except (KeyError, TypeError, ValueError):
        return None, None
    d = vb - va
    return d - math.sqrt((vb - lb) ** 2 + (ua - va) ** 2), d + math.sqrt((ub - vb) ** 2 + (va - la) ** 2)


def _task_level(base: dict[str, Any], tuned: dict[str, Any], per_sample: set[str]) -> dict[str, Any]:
    out = {}
    for m, a in base.items():
        b = tuned.get(m)
        if m == "by_category" or m in per_sample or not isinstance(a, dict) or not isinstance(b, dict):
            continue
        va, vb = a.get("value"), b.get("value")
        delta = None if va is None or vb is None else float(vb) - float(va)
        lo, hi = mover_ci(a, b) if delta is not None else (None, None)
        out[m] = {"metric": m, "a": va, "b": vb, "delta": delta, "ci_low": lo, "ci_high": hi,
                  "n_a": a.get("n"), "n_b": b.get("n"), "test": "mover_unpaired" if lo is not None else None}
    return out


def _number(record: dict[str, Any], metric: str, run: Path) -> float | None:
    metrics = record.get("metrics")
    v = metrics.get(metric) if isinstance(metrics, dict) else None
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise UsageError(f"{run}: task {record.get('task')!r} sample {record.get('sample_id')!r}: metric {metric!r} is not a number ({str(v)[:40]!r})")
    return float(v)


def compare_task(task: str, base: Side, tuned: Side, seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """drift.json entry of one task and its flip records."""
    ra, rb = base.records[task], tuned.records[task]
    ids = [i for i in ra if i in rb]
    if not ids:
        raise UsageError(f"task {task!r}: no sample id in common between {base.path} and {tuned.path}")
    pa, pb = [ra[i] for i in ids], [rb[i] for i in ids]
    names = [m for m in _metric_names(pa) if m in set(_metric_names(pb))]
    cats = sorted({str(r.get("category")) for r in pa if r.get("category") is not None})
    metrics: dict[str, Any] = {}
    flips: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    for m in names:
        va, vb = _values(base, task, m, ids), _values(tuned, task, m, ids)
        d = paired_delta(m, va, vb, seed=seed).as_dict()
        d["by_category"] = {}
        for c in cats:
            sub = [i for i in ids if str(ra[i].get("category")) == c]
            dc = paired_delta(m, {i: va[i] for i in sub}, {i: vb[i] for i in sub}, seed=seed)
            if dc.n:
                d["by_category"][c] = dc.as_dict()
        metrics[m] = d
        both = [i for i in ids if va[i] is not None and vb[i] is not None]
        if both and d["test"] == "mcnemar_exact":
            counts[m] = {"0->1": d["b01"], "1->0": d["b10"]}
            for i in both:
                if va[i] == vb[i]:
                    continue
                direction = "0->1" if vb[i] == 1 else "1->0"
                flips.append({"task": task, "metric": m, "sample_id": i, "category": ra[i].get("category"),
                              "direction": direction, "change": _change(m, direction), "base_value": va[i],
                              "tuned_value": vb[i], "prompt": ra[i].get("prompt"), "base_response": ra[i].get("response"),
                              "tuned_response": rb[i].get("response"), "tuned_prompt": rb[i].get("prompt")
                              if rb[i].get("prompt") != ra[i].get("prompt") else None})
    entry = {"n_base": len(ra), "n_tuned": len(rb), "n_paired": len(ids), "metrics": metrics, "flips": counts,
             "task_metrics": _task_level(base.metrics.get(task) or {}, tuned.metrics.get(task) or {}, set(names))}
    return entry, flips


def compare_runs(base: Side, tuned: Side, tasks: list[str], seed: int = 0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(tasks section of drift.json, flips)`` for the selected tasks."""
    out: dict[str, Any] = {}
    flips: list[dict[str, Any]] = []
    for t in tasks:
        out[t], f = compare_task(t, base, tuned, seed=seed)
        flips += f
    return out, flips

