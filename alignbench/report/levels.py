"""Metrics by compression level (CDCT): the constraint-compliance / semantic-accuracy curve over c.

c as CDCT defines it: 0.0 is the most compressed prompt, 1.0 the full one. The curve covers the CDCT
jury's scores (``cdct_cc``, ``cdct_sa``, ``cdct_fc``, ``cdct_score``, ``cdct_score_weighted``) and alignbench's own
``constraint_compliance`` / ``semantic_accuracy``.

A compression task may report levels in any of three ways, all recognised:

- a breakdown in metrics.json: ``by_level`` (or ``by_category`` whose names are levels such as ``"0.5"``,
  ``"c=0.5"``, ``"level_0.25"``);
- one metric per level: ``constraint_compliance@0.5``, ``constraint_compliance_strict@0.5``,
  ``constraint_compliance_c0.5``, ... (any metric named after a level metric);
- per-sample metrics with the level in the sample's meta (``level``, ``compression_level`` or ``c``).

The first source that yields points wins.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from alignbench.stats.intervals import summarize

LEVEL_METRICS = ("cdct_cc", "cdct_sa", "cdct_fc", "cdct_score", "cdct_score_weighted", "constraint_compliance", "semantic_accuracy")
LEVEL_META = ("level", "compression_level", "c")
_LEVEL = re.compile(r"^(?:c|level|lvl|compression)?[_=:@\-]?\s*(?P<v>[01](?:\.\d+)?|\.\d+)$", re.I)
_NAMED = re.compile(r"^(?P<metric>(?:%s)[A-Za-z_]*?)(?:@|_at_|_c=?|_|:|=)(?P<level>[0-9.]+)$" % "|".join(LEVEL_METRICS))
CURVE_COLUMNS = ["run", "task", "metric", "level", "value", "ci_low", "ci_high", "n"]


def parse_level(text: Any) -> float | None:
    """A compression level in [0, 1] from ``0.5``, ``"0.5"``, ``"c=0.5"``, ``"c0.5"``, ``"level_0.25"``; else None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        v = float(text)
    else:
        m = _LEVEL.match(str(text).strip())
        if not m:
            return None
        v = float(m.group("v"))
    return v if 0.0 <= v <= 1.0 else None


def _base_metric(name: str) -> str | None:
    """The level metric a name belongs to (``constraint_compliance_strict`` -> ``constraint_compliance``)."""
    return next((m for m in LEVEL_METRICS if name == m or name.startswith(m + "_")), None)


def level_curve(runs: pd.DataFrame, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """Points (run, task, metric, level, value, ci_low, ci_high, n) of every level metric, sorted by level."""
    rows: list[dict[str, Any]] = []
    broken = runs[runs["breakdown"].notna() & runs["metric"].map(lambda m: _base_metric(str(m)) is not None)]
    for r in broken.itertuples():
        level = parse_level(r.category)
        if level is not None:
            rows.append({"run": r.run, "task": r.task, "metric": r.metric, "level": level, "value": r.value,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n})
    if not rows:
        for r in runs[runs["breakdown"].isna()].itertuples():
            m = _NAMED.match(str(r.metric))
            level = parse_level(m.group("level")) if m else None
            if level is not None:
                rows.append({"run": r.run, "task": r.task, "metric": m.group("metric"), "level": level, "value": r.value,
                             "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n})
    if not rows and samples is not None and not samples.empty:
        rows = _from_samples(samples)
    df = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return df.sort_values(["task", "metric", "run", "level"], kind="stable").reset_index(drop=True)


def _from_samples(samples: pd.DataFrame) -> list[dict[str, Any]]:
    meta = next((f"meta.{k}" for k in LEVEL_META if f"meta.{k}" in samples), None)
    if meta is None:
        return []
    rows = []
    for metric in LEVEL_METRICS:
        col = f"metric.{metric}"
        if col not in samples:
            continue
        df = samples[samples[col].notna()].assign(_level=samples[meta].map(parse_level))
        for (run, task, level), g in df[df["_level"].notna()].groupby(["run", "task", "_level"], sort=True):
            s = summarize(g[col].tolist())
            rows.append({"run": run, "task": task, "metric": metric, "level": float(level), "value": s["value"],
                         "ci_low": s["ci_low"], "ci_high": s["ci_high"], "n": s["n"]})
    return rows
