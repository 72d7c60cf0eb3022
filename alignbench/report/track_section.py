"""The report's "Across checkpoints" section, from a track.json (``alignbench track`` or the Trainer callback).

Each task's metrics against training step with their 95% CI bands, the harm vs over-refusal frontier
with one point per checkpoint joined in step order, the values per step, and the paired deltas of every
checkpoint against the baseline with the significant ones (p < 0.05) marked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from alignbench.report import tables
from alignbench.report.blocks import Block, Image, Section, Table, Text
from alignbench.report.frontier import X_METRIC, Y_METRICS
from alignbench.report.plots import color, figure_png, new_figure

SIGNIFICANT = "*"


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else float("nan")


def _frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"step": int(p["step"]), "value": _num(p.get("value")), "ci_low": _num(p.get("ci_low")), "ci_high": _num(p.get("ci_high")),
             "n": p.get("n")} for p in points if isinstance(p, dict) and isinstance(p.get("step"), int)]
    return pd.DataFrame(rows, columns=["step", "value", "ci_low", "ci_high", "n"]).sort_values("step")


def plot_series(task: str, metrics: dict[str, list[dict[str, Any]]]) -> Figure | None:
    """Each metric of ``task`` against step: a line through the values and a band between the CI bounds."""
    frames = {m: _frame(pts) for m, pts in metrics.items()}
    frames = {m: f for m, f in frames.items() if f["value"].notna().any()}
    if not frames:
        return None
    fig = new_figure(7.0, 3.8)
    ax = fig.add_subplot()
    for i, (metric, f) in enumerate(frames.items()):
        ax.plot(f["step"], f["value"], marker="o", ms=4, color=color(i), label=metric)
        ok = f["ci_low"].notna() & f["ci_high"].notna()
        if ok.any():
            ax.fill_between(f["step"][ok], f["ci_low"][ok], f["ci_high"][ok], color=color(i), alpha=0.18, linewidth=0)
    ax.set_xlabel("training step")
    ax.set_ylabel("value (95% CI band)")
    ax.set_title(f"{task}: metrics across checkpoints", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return fig


def frontier_path(series: dict[str, Any]) -> pd.DataFrame:
    """Per task with over-refusal and a harm axis: one row per step (x, y with CIs), in step order."""
    rows = []
    for task, metrics in series.items():
        if not isinstance(metrics, dict) or X_METRIC not in metrics:
            continue
        y_metric = next((m for m in Y_METRICS if m in metrics), None)
        if y_metric is None:
            continue
        x, y = _frame(metrics[X_METRIC]).set_index("step"), _frame(metrics[y_metric]).set_index("step")
        for step in sorted(set(x.index) & set(y.index)):
            rows.append({"task": task, "y_metric": y_metric, "step": step, "x": x.at[step, "value"], "x_low": x.at[step, "ci_low"],
                         "x_high": x.at[step, "ci_high"], "y": y.at[step, "value"], "y_low": y.at[step, "ci_low"], "y_high": y.at[step, "ci_high"]})
    return pd.DataFrame(rows, columns=["task", "y_metric", "step", "x", "x_low", "x_high", "y", "y_low", "y_high"])


def _bars(v: pd.Series, lo: pd.Series, hi: pd.Series) -> np.ndarray:
    v, lo, hi = v.to_numpy(float), lo.to_numpy(float), hi.to_numpy(float)
    return np.vstack([np.where(np.isnan(lo), 0.0, np.clip(v - lo, 0, None)), np.where(np.isnan(hi), 0.0, np.clip(hi - v, 0, None))])


def plot_frontier_path(path: pd.DataFrame) -> Figure | None:
    """The frontier with one point per checkpoint (CI crosses), joined in step order, each labelled with its step."""
    path = path.dropna(subset=["x", "y"])
    if path.empty:
        return None
    fig = new_figure(6.4, 5.0)
    ax = fig.add_subplot()
    for i, (task, df) in enumerate(path.groupby("task", sort=False)):
        ax.plot(df["x"], df["y"], "-", color=color(i), alpha=0.6, label=task)
        ax.errorbar(df["x"], df["y"], xerr=_bars(df["x"], df["x_low"], df["x_high"]), yerr=_bars(df["y"], df["y_low"], df["y_high"]),
                    fmt="o", color=color(i), ms=5, capsize=3, elinewidth=1)
        at: dict[tuple[float, float], list[str]] = {}  # checkpoints at the same point share one label
        for p in df.itertuples():
            at.setdefault((round(float(p.x), 6), round(float(p.y), 6)), []).append(str(p.step))
        for (x, y), steps in at.items():
            ax.annotate(", ".join(steps), (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8, color=color(i))
    ys = list(dict.fromkeys(path["y_metric"]))
    ax.set_xlabel("over-refusal rate (benign prompts refused)")
    ax.set_ylabel(" / ".join(ys))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Harm vs over-refusal across checkpoints (labels: step; lower-left is better)", fontsize=10)
    ax.grid(alpha=0.3)
    if path["task"].nunique() > 1:
        ax.legend(fontsize=8, frameon=False)
    return fig


def series_table(series: dict[str, Any]) -> pd.DataFrame:
    """Rows (task, metric), one column per step, cells ``value [CI] (n=..)``."""
    cells: dict[tuple[str, str], dict[int, str]] = {}
    steps: set[int] = set()
    for task, metrics in series.items():
        for metric, points in (metrics or {}).items():
            for p in points:
                if isinstance(p, dict) and isinstance(p.get("step"), int):
                    cells.setdefault((task, metric), {})[p["step"]] = tables.fmt_value(p.get("value"), p.get("ci_low"), p.get("ci_high"), p.get("n"))
                    steps.add(p["step"])
    if not cells:
        return pd.DataFrame()
    order = sorted(steps)
    df = pd.DataFrame([[row.get(s, "") for s in order] for row in cells.values()], columns=[f"step {s}" for s in order],
                      index=pd.MultiIndex.from_tuples(list(cells), names=["task", "metric"]))
    return df


def delta_table(deltas: dict[str, Any]) -> pd.DataFrame:
    """Rows (task, metric, step): checkpoint minus baseline, its CI and p; significant rows marked."""
    rows = []
    for task, metrics in (deltas or {}).items():
        for metric, points in (metrics or {}).items():
            for d in sorted((p for p in points if isinstance(p, dict)), key=lambda p: p.get("step", 0)):
                sig = bool(d.get("significant"))
                rows.append({"task": task, "metric": metric, "step": d.get("step"), "n": d.get("n"),
                             "baseline": tables.fmt_value(d.get("baseline")), "checkpoint": tables.fmt_value(d.get("value")),
                             "delta [95% CI]": (f"{_num(d.get('delta')):+.3f} [{_num(d.get('ci_low')):+.3f}, {_num(d.get('ci_high')):+.3f}]"),
                             "p": "n/a" if d.get("p_value") is None else f"{d['p_value']:.3g}",
                             "significant": SIGNIFICANT if sig else ""})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index(["task", "metric", "step"])


def sections(data: Any, with_plots: bool = True) -> list[Section]:
    blocks: list[Block] = []
    for i, e in enumerate(data.extras_of("track")):
        info = e.data if isinstance(e.data, dict) else {}
        series = info.get("series") if isinstance(info.get("series"), dict) else {}
        steps = [c.get("step") for c in info.get("checkpoints") or [] if isinstance(c, dict)]
        if not series:
            blocks.append(Text(f"{e.path}: no series of metrics across checkpoints."))
            continue
        blocks.append(Text(f"Track {info.get('track_id') or e.source}: {len(steps)} checkpoint(s), steps "
                           f"{', '.join(str(s) for s in steps)}; every checkpoint answered the same samples."))
        if with_plots:
            for j, (task, metrics) in enumerate(series.items()):
                fig = plot_series(task, metrics if isinstance(metrics, dict) else {})
                if fig is not None:
                    blocks.append(Image(f"track-{i}-{j}", figure_png(fig), f"{task}: each metric against training step, 95% CI band"))
            fig = plot_frontier_path(frontier_path(series))
            if fig is not None:
                blocks.append(Image(f"track-{i}-frontier", figure_png(fig),
                                    "Harm vs over-refusal: one point per checkpoint (95% CI crosses), joined in step order"))
        blocks.append(Table(series_table(series), "value [95% CI] (n) per checkpoint", wide=True))
        deltas = delta_table(info.get("deltas") or {})
        if not deltas.empty:
            base = info.get("baseline") or {}
            blocks.append(Table(deltas, f"paired change of each checkpoint against the baseline ({base.get('spec') or base.get('run_dir')}); "
                                f"{SIGNIFICANT} = significant (p < 0.05, McNemar exact for 0/1 metrics, paired permutation otherwise)"))
        first = (info.get("gate") or {}).get("first_failure") if isinstance(info.get("gate"), dict) else None
        if info.get("gate"):
            blocks.append(Text("Gate: every checkpoint passes." if not first else
                               f"Gate: the first checkpoint that fails is step {first.get('step')}: "
                               + "; ".join(f"{f.get('rule')}: {f.get('message')}" for f in first.get("failed") or [])))
    return [Section("Across checkpoints", blocks)] if blocks else []


__all__ = ["delta_table", "frontier_path", "plot_frontier_path", "plot_series", "sections", "series_table"]
