"""What track.json says about a set of evaluated checkpoints (one finished run each, in step order).

- ``series``: ``{task: {metric: [{step, value, ci_low, ci_high, n, judge}, ...]}}``, each point copied
  from that checkpoint's metrics.json (overall values; ``by_category`` stays in the runs);
- ``deltas``: the paired change of each checkpoint against the baseline run, per task and metric with
  per-sample values: ``{task: {metric: [{step, n, baseline, value, delta, ci_low, ci_high, p_value, test,
  significant}, ...]}}`` from ``alignbench.stats.paired.paired_delta`` (McNemar exact for 0/1 metrics,
  a paired permutation test otherwise; the CI the test inverts), the numbers gate and drift print;
  ``significant`` is p < 0.05;
- ``gate``: with a gates YAML, each checkpoint's verdict (``alignbench.gate.rules.run_gates``) and the
  first checkpoint that fails a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbench.gate.rules import GateRule, RunView, run_gates
from alignbench.records.files import RunDir
from alignbench.stats.intervals import CONFIDENCE
from alignbench.stats.paired import paired_delta

TRACK_FILE = "track.json"
SERIES_FIELDS = ("value", "ci_low", "ci_high", "n", "judge")


@dataclass(frozen=True)
class Point:
    """One evaluated checkpoint: its step, where its weights are (None when not saved) and its run folder."""

    step: int
    path: str | None
    run_dir: Path

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "path": self.path, "run_dir": str(self.run_dir)}


def _overall(entry: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        return {}
    return {m: rec for m, rec in entry.items() if isinstance(rec, dict) and "value" in rec}


def series(points: list[Point]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in points:
        for task, entry in RunDir(p.run_dir).read_metrics().items():
            for metric, rec in _overall(entry).items():
                out.setdefault(task, {}).setdefault(metric, []).append({"step": p.step, **{k: rec.get(k) for k in SERIES_FIELDS}})
    return out


def _has_values(values: dict[str, float | None]) -> bool:
    return any(v is not None for v in values.values())


def deltas(baseline: RunView, points: list[Point], seed: int = 0) -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in points:
        view = RunView.load(p.run_dir, f"checkpoint step {p.step}")
        for task, entry in view.metrics.items():
            if task not in baseline.metrics:
                continue
            for metric in _overall(entry):
                a, b = baseline.per_sample(task, metric), view.per_sample(task, metric)
                if not (_has_values(a) and _has_values(b)):
                    continue  # a task-level metric: nothing to pair
                d = paired_delta(metric, a, b, seed=seed)
                if d.delta is None:
                    continue
                out.setdefault(task, {}).setdefault(metric, []).append({
                    "step": p.step, "n": d.n, "baseline": d.a, "value": d.b, "delta": d.delta, "ci_low": d.ci_low,
                    "ci_high": d.ci_high, "p_value": d.p_value, "test": d.test,
                    "significant": d.p_value is not None and d.p_value < 1 - CONFIDENCE})
    return out


def gate_verdicts(rules: list[GateRule], baseline: RunView | None, points: list[Point], seed: int = 0,
                  source: str | None = None) -> dict[str, Any]:
    """Each checkpoint's verdict and the first that fails a rule (``first_failure``: None when all pass)."""
    checks = []
    first = None
    for p in points:
        results = run_gates(rules, baseline, RunView.load(p.run_dir, f"checkpoint step {p.step}"), seed=seed)
        failed = [{"rule": r.rule.label, "message": r.message} for r in results if not r.passed]
        checks.append({"step": p.step, "passed": not failed, "failed": failed})
        if failed and first is None:
            first = {**p.as_dict(), "failed": failed}
    return {"rules": source, "checks": checks, "first_failure": first}


def summarize(points: list[Point], baseline: RunView | None = None, rules: list[GateRule] | None = None, seed: int = 0,
              rules_source: str | None = None) -> dict[str, Any]:
    """track.json's ``checkpoints``, ``series``, ``deltas`` (with a baseline) and ``gate`` (with rules)."""
    points = sorted(points, key=lambda p: p.step)
    return {"checkpoints": [p.as_dict() for p in points], "series": series(points),
            "deltas": deltas(baseline, points, seed) if baseline is not None else None,
            "gate": gate_verdicts(rules, baseline, points, seed, rules_source) if rules else None}


__all__ = ["TRACK_FILE", "Point", "deltas", "gate_verdicts", "series", "summarize"]
