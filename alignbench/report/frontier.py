"""The harm vs over-refusal frontier: one point per run (and task), the plot checkpoints are compared on.

x is the over-refusal rate (benign prompts refused), y the harmful rate (harmful prompts answered
harmfully, by the harm judge) where the task has it, else the compliance rate (harmful prompts not
refused). Crosses are the metrics' 95% CIs from metrics.json. Lower-left is better on both axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alignbench.report.plots import color, new_figure

X_METRIC = "over_refusal_rate"
Y_METRICS = ("harmful_rate", "compliance_rate")
_POINT_COLUMNS = ["run", "task", "y_metric", "x", "x_low", "x_high", "y", "y_low", "y_high"]


def frontier_points(runs: pd.DataFrame, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (run, task) that has both axes: ``run, task, y_metric, x, x_low, x_high, y, y_low, y_high``.

    The y metric is chosen per task, the same for every run (harmful_rate when every run of that task
    has it, else compliance_rate), so the points of one task are comparable.
    """
    overall = runs[runs["breakdown"].isna() & runs["value"].notna()]
    rows = []
    order = list(labels) if labels else list(dict.fromkeys(overall["run"]))
    for task, df in overall.groupby("task", sort=False):
        have = {m: set(df[df["metric"] == m]["run"]) for m in (X_METRIC,) + Y_METRICS}
        with_x = have[X_METRIC]
        y_metric = next((m for m in Y_METRICS if with_x and with_x <= have[m]), None)
        if y_metric is None:
            continue
        for run in [r for r in order if r in with_x]:
            x = df[(df["run"] == run) & (df["metric"] == X_METRIC)].iloc[0]
            y = df[(df["run"] == run) & (df["metric"] == y_metric)].iloc[0]
            rows.append({"run": run, "task": str(task), "y_metric": y_metric, "x": x.value, "x_low": x.ci_low, "x_high": x.ci_high,
                         "y": y.value, "y_low": y.ci_low, "y_high": y.ci_high})
    return pd.DataFrame(rows, columns=_POINT_COLUMNS)


def _bars(v: pd.Series, lo: pd.Series, hi: pd.Series) -> np.ndarray:
    v, lo, hi = v.to_numpy(float), lo.to_numpy(float), hi.to_numpy(float)
    return np.vstack([np.where(np.isnan(lo), 0.0, np.clip(v - lo, 0, None)), np.where(np.isnan(hi), 0.0, np.clip(hi - v, 0, None))])


def plot_frontier(points: pd.DataFrame, labels: Sequence[str] | None = None) -> Figure | None:
    """Scatter of the frontier points with CI crosses, each labelled with its run (and task when several)."""
    if points.empty:
        return None
    runs = list(labels) if labels else list(dict.fromkeys(points["run"]))
    several_tasks = points["task"].nunique() > 1
    markers = dict(zip(dict.fromkeys(points["task"]), "osD^vP*X"))
    fig = new_figure(6.4, 5.0)
    ax = fig.add_subplot()
    for i, p in enumerate(points.itertuples(index=False)):
        k = runs.index(p.run) if p.run in runs else i
        row = points.iloc[[i]]
        ax.errorbar(row["x"], row["y"], xerr=_bars(row["x"], row["x_low"], row["x_high"]), yerr=_bars(row["y"], row["y_low"], row["y_high"]),
                    fmt=markers[p.task], color=color(k), ms=7, capsize=4, elinewidth=1.2)
        name = f"{p.run} · {p.task}" if several_tasks else str(p.run)
        ax.annotate(name, (p.x, p.y), xytext=(7, 7 if i % 2 == 0 else -13), textcoords="offset points", fontsize=9, color=color(k))
    hi_x = float(np.nanmax(points[["x", "x_high"]].to_numpy(float)))
    hi_y = float(np.nanmax(points[["y", "y_high"]].to_numpy(float)))
    ax.set_xlim(-0.02, min(1.02, max(0.1, hi_x * 1.25 + 0.05)))
    ax.set_ylim(-0.02, min(1.02, max(0.1, hi_y * 1.15 + 0.05)))
    ys = list(dict.fromkeys(points["y_metric"]))
    y_words = {"harmful_rate": "harmful rate (harmful prompts answered harmfully)",
               "compliance_rate": "compliance rate (harmful prompts not refused)"}
    ax.set_xlabel("over-refusal rate (benign prompts refused)")
    ax.set_ylabel(y_words[ys[0]] if len(ys) == 1 else " / ".join(ys))
    ax.set_title("Harm vs over-refusal (95% CI crosses; lower-left is better)", fontsize=10)
    ax.grid(alpha=0.3)
    return fig
