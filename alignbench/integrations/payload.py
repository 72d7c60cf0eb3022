"""What alignbench sends to a tracker: metrics with CI bounds, a run's config and fingerprint, samples.

Metric keys are ``alignbench/<task>/<metric>`` with ``..._ci_low`` and ``..._ci_high`` beside them (the
95% CI of metrics.json), the same keys through the Trainer callback and every ``--log`` tracker. Nothing
secret leaves (``alignbench.integrations.masking``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from alignbench.integrations.masking import mask_text, masked, secret_values
from alignbench.integrations.trackers import Trackers
from alignbench.records.files import RunDir
from alignbench.types import prompt_text

PREFIX = "alignbench"
TEXT_LIMIT = 2000  # characters of a prompt or response kept in a table cell


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        return None
    return float(x)


def metric_values(metrics: dict[str, Any], prefix: str = PREFIX) -> dict[str, float]:
    """metrics.json as flat scalars: ``{prefix}/{task}/{metric}`` and its ``_ci_low`` / ``_ci_high`` (overall only)."""
    out: dict[str, float] = {}
    for task, entry in metrics.items():
        if not isinstance(entry, dict):
            continue
        for metric, rec in entry.items():
            if not isinstance(rec, dict) or "value" not in rec:
                continue
            key = f"{prefix}/{task}/{metric}"
            for suffix, field in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
                v = _number(rec.get(field))
                if v is not None:
                    out[key + suffix] = v
    return out


def run_config(info: dict[str, Any]) -> dict[str, Any]:
    """What a tracker records about a run: its id, model, fingerprint, command and resolved config, versions,
    seed, and each task's and judge's version (run.json, secrets masked)."""
    tasks = info.get("tasks") if isinstance(info.get("tasks"), dict) else {}
    keep = {"run_id": info.get("run_id"), "model": info.get("model"), "model_fingerprint": info.get("model_fingerprint"),
            "command": info.get("command"), "config": info.get("config"), "seed": info.get("seed"),
            "versions": info.get("versions"), "git_commit": info.get("git_commit"),
            "tasks": {t: {k: v.get(k) for k in ("version", "hash", "n_samples")} for t, v in tasks.items() if isinstance(v, dict)},
            "judges": info.get("judges")}
    return masked({k: v for k, v in keep.items() if v is not None})


def _clip(text: Any) -> str:
    s = prompt_text(text) if isinstance(text, (list, str)) else ("" if text is None else json.dumps(text, default=str))
    return s if len(s) <= TEXT_LIMIT else s[:TEXT_LIMIT] + " [...]"


def sample_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per sample record, the same columns for all: task, sample_id, category, prompt, response,
    judgments (label per judge, JSON) and metrics (JSON); texts clipped, secrets masked."""
    secrets = secret_values()
    rows = []
    for r in records:
        judgments = {j: (v or {}).get("label") if isinstance(v, dict) else None for j, v in (r.get("judgments") or {}).items()}
        rows.append({"task": str(r.get("task")), "sample_id": str(r.get("sample_id")), "category": str(r.get("category") or ""),
                     "prompt": mask_text(_clip(r.get("prompt")), secrets), "response": mask_text(_clip(r.get("response")), secrets),
                     "judgments": mask_text(json.dumps(judgments, default=str), secrets),
                     "metrics": json.dumps(r.get("metrics") or {}, default=str)})
    return rows


def log_run(trackers: Trackers, run_dir: RunDir | str, step: int | None = None, config: bool = True, samples: bool = True) -> dict[str, float]:
    """Send one finished run: its config (once), its metrics at ``step``, its samples as a table. Returns the metrics sent."""
    rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if config:
        trackers.log_config(run_config(rd.read_run()))
    values = metric_values(rd.read_metrics())
    trackers.log_metrics(values, step)
    if samples:
        trackers.log_table(f"{PREFIX}/samples", sample_rows(rd.records()), step)
    return values


__all__ = ["PREFIX", "log_run", "mask_text", "masked", "metric_values", "run_config", "sample_rows"]
