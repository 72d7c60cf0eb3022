"""What ``--log`` sends for each command: ``eval`` (a run), ``track`` (a run per checkpoint, at its step),
``compare`` (win rates and ratings with CIs) and ``gate`` (each rule's verdict and paired change).

Every command opens one tracker run named after what it wrote (run id, track id, compare id, candidate
run id + ``-gate``), sends its config once, its metrics (each with ``_ci_low`` / ``_ci_high``), and its
samples (or pairs, or gate lines) as a table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from alignbench.gate.rules import GateResult, RunView
from alignbench.integrations.masking import mask_text, masked
from alignbench.integrations.payload import PREFIX, log_run, metric_values, sample_rows
from alignbench.integrations.trackers import TrackerContext, Trackers
from alignbench.records.files import RunDir


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", str(text)).strip("_") or "_"


def _with_ci(out: dict[str, float], key: str, value: Any, lo: Any = None, hi: Any = None) -> None:
    for suffix, v in (("", value), ("_ci_low", lo), ("_ci_high", hi)):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key + suffix] = float(v)


def log_eval(names: list[str], run_dir: RunDir | str | Path) -> None:
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    with Trackers(names, TrackerContext(rd.path.name, "eval", rd.path)) as trackers:
        log_run(trackers, rd)


def track_metrics(info: dict[str, Any], step: int) -> dict[str, float]:
    """The paired deltas against the baseline and the gate verdict of one checkpoint, as scalars."""
    out: dict[str, float] = {}
    for task, metrics in (info.get("deltas") or {}).items():
        for metric, points in metrics.items():
            for d in points:
                if d.get("step") == step:
                    _with_ci(out, f"{PREFIX}/delta/{task}/{metric}", d.get("delta"), d.get("ci_low"), d.get("ci_high"))
    for check in ((info.get("gate") or {}).get("checks") or []):
        if check.get("step") == step:
            out[f"{PREFIX}/gate/passed"] = 1.0 if check.get("passed") else 0.0
    return out


def log_track(names: list[str], folder: Path, info: dict[str, Any]) -> None:
    """Each checkpoint's metrics, deltas and gate verdict at its training step (in step order), its samples as a table."""
    track_id = str(info.get("track_id") or folder.name)
    with Trackers(names, TrackerContext(track_id, "track", folder, group=track_id)) as trackers:
        trackers.log_config(masked({"track_id": track_id, "command": info.get("command"), "settings": info.get("settings"),
                                    "baseline": info.get("baseline"), "checkpoints": info.get("checkpoints")}))
        for c in sorted(info.get("checkpoints") or [], key=lambda c: c["step"]):
            rd = RunDir(c["run_dir"])
            step = int(c["step"])
            trackers.log_metrics({**metric_values(rd.read_metrics()), **track_metrics(info, step)}, step)
            trackers.log_table(f"{PREFIX}/samples", sample_rows(rd.records()), step)


def log_training_step(trackers: Trackers, run_dir: RunDir, step: int, extra: dict[str, float] | None = None,
                      config: bool = False) -> dict[str, float]:
    """One evaluation made during training (the callback's ``log=``): config once, metrics and samples at ``step``."""
    values = log_run(trackers, run_dir, step=step, config=config, samples=False)
    if extra:
        trackers.log_metrics(extra, step)
    trackers.log_table(f"{PREFIX}/samples", sample_rows(run_dir.records()), step)
    return values


def compare_metrics(info: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    overall = info.get("overall") or {}
    for p in overall.get("pairs") or []:
        _with_ci(out, f"{PREFIX}/compare/{_key(p.get('a'))}_vs_{_key(p.get('b'))}/win_rate", p.get("win_rate"), p.get("ci_low"), p.get("ci_high"))
    for run, r in (overall.get("bradley_terry") or {}).items():
        if isinstance(r, dict):
            _with_ci(out, f"{PREFIX}/compare/bradley_terry/{_key(run)}", r.get("rating"), r.get("ci_low"), r.get("ci_high"))
    for run, v in (overall.get("elo") or {}).items():
        _with_ci(out, f"{PREFIX}/compare/elo/{_key(run)}", v)
    return out


def _pair_rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "pairs.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            ln = json.loads(line)
            rows.append({k: mask_text(str(ln.get(k) if ln.get(k) is not None else "")) for k in
                         ("a", "b", "task", "sample_id", "category", "prompt", "response_a", "response_b", "winner", "error")})
    return rows


def log_compare(names: list[str], folder: Path, info: dict[str, Any]) -> None:
    with Trackers(names, TrackerContext(str(info.get("compare_id") or folder.name), "compare", folder)) as trackers:
        trackers.log_config(masked({"compare_id": info.get("compare_id"), "command": info.get("command"), "settings": info.get("settings")}))
        trackers.log_metrics(compare_metrics(info))
        trackers.log_table(f"{PREFIX}/pairs", _pair_rows(folder))


def gate_metrics(results: list[GateResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in results:
        key = f"{PREFIX}/gate/{_key(r.rule.label)}"
        out[f"{key}/passed"] = 1.0 if r.passed else 0.0
        _with_ci(out, f"{key}/candidate", r.candidate)
        if r.delta is not None:
            pd_ = r.paired
            _with_ci(out, f"{key}/delta", r.delta, pd_.ci_low if pd_ else None, pd_.ci_high if pd_ else None)
    out[f"{PREFIX}/gate/passed"] = 1.0 if all(r.passed for r in results) else 0.0
    return out


def log_gate(names: list[str], results: list[GateResult], candidate: RunView, baseline: RunView | None, rules: str) -> None:
    """The verdict of every rule, the candidate's metrics, and the gate lines as a table (under the candidate run's folder)."""
    folder = candidate.path / "gate"
    with Trackers(names, TrackerContext(f"{candidate.run_id}-gate", "gate", folder)) as trackers:
        trackers.log_config(masked({"rules": rules, "candidate": str(candidate.path), "baseline": str(baseline.path) if baseline else None,
                                    "candidate_run": candidate.run_id, "baseline_run": baseline.run_id if baseline else None}))
        trackers.log_metrics({**metric_values(candidate.metrics), **gate_metrics(results)})
        rows = [{"rule": r.rule.label, "passed": r.passed, "candidate": r.candidate, "baseline": r.baseline, "delta": r.delta,
                 "ci_low": r.paired.ci_low if r.paired else None, "ci_high": r.paired.ci_high if r.paired else None,
                 "p_value": r.paired.p_value if r.paired else None, "message": r.message} for r in results]
        trackers.log_table(f"{PREFIX}/gate", rows)


__all__ = ["compare_metrics", "gate_metrics", "log_compare", "log_eval", "log_gate", "log_track", "log_training_step", "track_metrics"]
