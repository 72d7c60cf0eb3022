"""Breakdown tables in wide form: one row per category (or level, perturbation, ...), metrics as columns.

Each row shows n once (the largest n of the row's metrics; with several runs, each run's n when they
differ), then ``value [CI]`` (two decimals) per metric (and per run), sorted by the task's headline metric, highest
first. Rows with fewer than ``SMALL_N`` samples are marked: their rates are too noisy to rank on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from alignbench.report.headline import KEY_METRICS
from alignbench.report.tables import fmt_value

SMALL_N = 10
SMALL_MARK = "†"
DIGITS = 2  # a category holds tens of samples: a third digit is noise


@dataclass
class WideTable:
    task: str
    breakdown: str
    df: pd.DataFrame  # index: group names (marked ones end with SMALL_MARK); columns: n, metrics
    small: list[bool]  # per row: n < SMALL_N in some run
    sort_metric: str | None


def headline_metric(metrics: Sequence[str]) -> str | None:
    return next((m for m in KEY_METRICS if m in metrics), metrics[0] if metrics else None)


def wide_tables(runs: pd.DataFrame, labels: Sequence[str] | None = None, small_n: int = SMALL_N) -> list[WideTable]:
    """One wide table per (task, breakdown) of ``runs`` (``ReportData.runs``)."""
    labels = list(labels) if labels else list(dict.fromkeys(runs["run"]))
    sub = runs[runs["breakdown"].notna()]
    out = []
    for (task, breakdown), df in sub.groupby(["task", "breakdown"], sort=False):
        present = [r for r in labels if r in set(df["run"])]
        metrics = list(dict.fromkeys(df["metric"]))
        metrics.sort(key=lambda m: KEY_METRICS.index(m) if m in KEY_METRICS else len(KEY_METRICS))
        sort_metric = headline_metric(metrics)
        groups = list(dict.fromkeys(df["category"]))
        by = {(r.category, r.metric, r.run): r for r in df.itertuples(index=False)}
        rows, small, keys = [], [], []
        for g in groups:
            ns = {run: max((int(by[(g, m, run)].n) for m in metrics if (g, m, run) in by and not pd.isna(by[(g, m, run)].n)), default=None)
                  for run in present}
            known = [n for n in ns.values() if n is not None]
            row = {"n": " / ".join("–" if ns[r] is None else str(ns[r]) for r in present) if len(set(ns.values())) > 1 else (known[0] if known else "")}
            for m in metrics:
                for run in present:
                    r = by.get((g, m, run))
                    col = m if len(present) == 1 else f"{m} · {run}"
                    row[col] = fmt_value(r.value, r.ci_low, r.ci_high, digits=DIGITS) if r is not None else ""
            last = next((by[(g, sort_metric, run)].value for run in reversed(present) if (g, sort_metric, run) in by), None)
            keys.append(float("-inf") if last is None or pd.isna(last) else float(last))
            small.append(any(n is not None and n < small_n for n in ns.values()))
            rows.append(row)
        order = sorted(range(len(groups)), key=lambda i: (-keys[i], str(groups[i])))
        index = [f"{groups[i]} {SMALL_MARK}" if small[i] else str(groups[i]) for i in order]
        table = pd.DataFrame([rows[i] for i in order], index=pd.Index(index, name=str(breakdown)))
        out.append(WideTable(str(task), str(breakdown), table, [small[i] for i in order], sort_metric))
    return out


def small_note(small_n: int = SMALL_N) -> str:
    return f"{SMALL_MARK} fewer than {small_n} samples in this row: its rates are too noisy to rank on."
