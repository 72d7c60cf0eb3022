"""Report plots: matplotlib figures built on the Agg canvas (no display, no global pyplot state).

Each function returns a ``matplotlib.figure.Figure`` (or None when there is nothing to draw), so the
notebook can show them and the report can embed them; ``figure_png`` renders one to PNG bytes.
Error bars are the metrics' confidence intervals (95% bootstrap, from metrics.json).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from alignbench.report.drift import DriftEntry, TokenShiftProfile

HARM_METRICS = ("harmful_rate", "compliance_rate", "over_refusal_rate")
_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")


def new_figure(width: float = 7.0, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg renderer)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def _err(df: pd.DataFrame) -> np.ndarray | None:
    """Asymmetric error bars from ci_low/ci_high (zero where missing)."""
    v, lo, hi = df["value"].to_numpy(float), df["ci_low"].to_numpy(float), df["ci_high"].to_numpy(float)
    low = np.where(np.isnan(lo), 0.0, np.clip(v - lo, 0, None))
    high = np.where(np.isnan(hi), 0.0, np.clip(hi - v, 0, None))
    return np.vstack([low, high])


def grouped_bars(ax, groups: Sequence[str], series: dict[str, pd.DataFrame], ylabel: str = "", unit_interval: bool = True) -> None:
    """Bars per group (x) and series (hue, e.g. runs), each series a frame indexed by group with value/ci_low/ci_high/n."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for i, (name, df) in enumerate(series.items()):
        df = df.reindex(groups)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, df["value"].fillna(0).to_numpy(float), width, yerr=_err(df), capsize=3, label=str(name), color=color(i),
               error_kw={"elinewidth": 1})
        for p, val, n in zip(pos, df["value"], df["n"]):
            if not (isinstance(val, float) and math.isnan(val)) and len(series) * len(groups) <= 24:
                ax.annotate(f"{val:.2f}", (p, 0), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                            fontsize=7, color="white" if val > 0.08 else "black")
    ax.set_xticks(x, [str(g) for g in groups], rotation=30 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")
    ax.set_ylabel(ylabel)
    if unit_interval:
        ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False)


def _labels(runs: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    return list(labels) if labels else list(dict.fromkeys(runs["run"] if "run" in runs else runs["run_id"]))


def _with_run(runs: pd.DataFrame) -> pd.DataFrame:
    return runs if "run" in runs else runs.assign(run=runs["run_id"])


def plot_metric_bars(runs: pd.DataFrame, metrics: Sequence[str] = HARM_METRICS, labels: Sequence[str] | None = None,
                     title: str = "Harmful rate and over-refusal (95% CI)") -> Figure | None:
    """Overall value of ``metrics`` (every task that has them) per run, with CI error bars."""
    runs = _with_run(runs)
    sub = runs[runs["breakdown"].isna() & runs["metric"].isin(metrics)]
    if sub.empty:
        return None
    sub = sub.assign(group=sub["task"] + "\n" + sub["metric"] if sub["task"].nunique() > 1 else sub["metric"])
    groups = list(dict.fromkeys(sub.sort_values("metric", key=lambda m: m.map(list(metrics).index), kind="stable")["group"]))
    series = {r: sub[sub["run"] == r].drop_duplicates("group").set_index("group") for r in _labels(runs, labels) if r in set(sub["run"])}
    fig = new_figure(max(5.0, 1.2 * len(groups) * max(1, len(series)) ** 0.5 + 3), 3.6)
    ax = fig.add_subplot()
    grouped_bars(ax, groups, series, ylabel="rate")
    ax.set_title(title, fontsize=10)
    return fig


def plot_category_bars(runs: pd.DataFrame, metric: str = "harmful_rate", task: str | None = None,
                       labels: Sequence[str] | None = None, breakdown: str = "category") -> Figure | None:
    """``metric`` per category (x) and run (hue), with CI error bars; ``task`` defaults to the first that has it."""
    runs = _with_run(runs)
    sub = runs[(runs["breakdown"] == breakdown) & (runs["metric"] == metric)]
    if task is None and not sub.empty:
        task = str(sub["task"].iloc[0])
    sub = sub[sub["task"] == task]
    if sub.empty:
        return None
    groups = sorted(set(sub["category"]))
    series = {r: sub[sub["run"] == r].set_index("category") for r in _labels(runs, labels) if r in set(sub["run"])}
    fig = new_figure(max(5.0, 0.55 * len(groups) * max(1, len(series)) ** 0.5 + 3), 3.8)
    ax = fig.add_subplot()
    grouped_bars(ax, groups, series, ylabel=metric)
    ax.set_title(f"{task}: {metric} by {breakdown} (95% CI)", fontsize=10)
    return fig


def plot_task_metrics(runs: pd.DataFrame, task: str, labels: Sequence[str] | None = None) -> Figure | None:
    """Every overall metric of ``task`` whose values lie in [0, 1] (rates, accuracies, scores), per run."""
    runs = _with_run(runs)
    sub = runs[(runs["task"] == task) & runs["breakdown"].isna() & runs["value"].notna()]
    unit = sub.groupby("metric")["value"].agg(lambda v: bool(((v >= 0) & (v <= 1)).all()))
    sub = sub[sub["metric"].isin(unit[unit].index)]
    if sub.empty:
        return None
    groups = list(dict.fromkeys(sub["metric"]))
    series = {r: sub[sub["run"] == r].drop_duplicates("metric").set_index("metric") for r in _labels(runs, labels) if r in set(sub["run"])}
    fig = new_figure(max(5.0, 0.7 * len(groups) * max(1, len(series)) ** 0.5 + 3), 3.6)
    ax = fig.add_subplot()
    grouped_bars(ax, groups, series, ylabel="value")
    ax.set_title(f"{task} (95% CI)", fontsize=10)
    return fig


def plot_level_curve(curve: pd.DataFrame, labels: Sequence[str] | None = None) -> Figure | None:
    """Compression curve: value per level c, one panel per metric, one line per run (CI band)."""
    if curve.empty:
        return None
    metrics = list(dict.fromkeys(curve["metric"]))
    fig = new_figure(3.6 * len(metrics) + 1, 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    runs = list(labels) if labels else list(dict.fromkeys(curve["run"]))
    for ax, metric in zip(axes, metrics):
        for i, run in enumerate(runs):
            for task, df in curve[(curve["metric"] == metric) & (curve["run"] == run)].groupby("task", sort=False):
                df = df.sort_values("level")
                name = run if curve["task"].nunique() == 1 else f"{run} ({task})"
                ax.plot(df["level"], df["value"], marker="o", color=color(i), label=name)
                if df["ci_low"].notna().any():
                    ax.fill_between(df["level"], df["ci_low"].astype(float), df["ci_high"].astype(float), color=color(i), alpha=0.15)
        ax.set_xlabel("compression level c")
        ax.set_title(metric, fontsize=10)
        sub = curve[curve["metric"] == metric]
        ax.set_ylim(min(0.0, float(sub[["value", "ci_low"]].min().min()) - 0.05), max(1.05, float(sub[["value", "ci_high"]].max().max()) + 0.05))
        ax.set_xticks(sorted(set(curve["level"])))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, frameon=False)
    return fig


def plot_drift(entries: Sequence[DriftEntry], title: str = "Paired change B - A") -> Figure | None:
    """Per comparison: the paired delta with its CI (left) and the flips 0->1 / 1->0 (right)."""
    if not entries:
        return None
    labels = [e.label for e in entries]
    y = np.arange(len(entries))
    fig = new_figure(9.0, 1.0 + 0.45 * len(entries))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    deltas = np.array([e.delta for e in entries])
    lo = np.array([e.delta - e.ci_low if e.ci_low is not None else 0.0 for e in entries])
    hi = np.array([e.ci_high - e.delta if e.ci_high is not None else 0.0 for e in entries])
    colors = ["#C44E52" if (e.p_value is not None and e.p_value < 0.05) else "#8C8C8C" for e in entries]
    left.barh(y, deltas, xerr=np.vstack([np.clip(lo, 0, None), np.clip(hi, 0, None)]), color=colors, capsize=3)
    left.axvline(0, color="black", lw=0.8)
    left.set_yticks(y, labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("delta (red: p < 0.05)")
    for yi, e in zip(y, entries):
        if e.p_value is not None:
            if e.delta >= 0:
                x, dx, ha = max(e.delta, e.ci_high if e.ci_high is not None else e.delta), 4, "left"
            else:
                x, dx, ha = min(e.delta, e.ci_low if e.ci_low is not None else e.delta), -4, "right"
            left.annotate(f"p={e.p_value:.2g}", (x, yi), xytext=(dx, -3), textcoords="offset points", fontsize=7, ha=ha)
    span = max([abs(e.delta) + max(lo_, hi_) for e, lo_, hi_ in zip(entries, lo, hi)] + [1e-9])
    left.set_xlim(-span * 1.35 if (deltas < 0).any() else min(0.0, -span * 0.05), span * 1.35 if (deltas > 0).any() else span * 0.05)
    b01 = np.array([e.b01 or 0 for e in entries])
    b10 = np.array([e.b10 or 0 for e in entries])
    right.barh(y - 0.2, b01, 0.4, color="#C44E52", label="0 → 1")
    right.barh(y + 0.2, b10, 0.4, color="#4C72B0", label="1 → 0")
    right.set_xlabel("flipped samples")
    right.legend(fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    left.set_title(title, fontsize=10)
    return fig


def plot_token_shift(profile: TokenShiftProfile) -> Figure:
    """Token-shift profile: unshifted / marginal / shifted shares, and per-position KL when given."""
    fig = new_figure(9.0 if profile.kl else 5.0, 3.0)
    axes = fig.subplots(1, 2 if profile.kl else 1, squeeze=False)[0]
    ax = axes[0]
    names = list(profile.shares)
    vals = [profile.shares[k] for k in names]
    yerr = None
    if profile.ci:
        yerr = np.array([[max(0.0, profile.shares[k] - profile.ci[k][0]) for k in names], [max(0.0, profile.ci[k][1] - profile.shares[k]) for k in names]])
    ax.bar(names, vals, color=["#55A868", "#CCB974", "#C44E52"], yerr=yerr, capsize=3)
    for i, v in enumerate(vals):
        ax.annotate(f"{v:.1%}", (i, v), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of token positions")
    ax.set_title("token shift" if profile.label == "token shift" else f"{profile.label}: token shift", fontsize=10)
    if profile.kl:
        axes[1].plot(np.arange(len(profile.kl)), profile.kl, color="#4C72B0", marker="." if len(profile.kl) < 40 else None)
        axes[1].set_xlabel("position")
        axes[1].set_ylabel("KL(aligned || base)")
        axes[1].set_title("per-position KL", fontsize=10)
        axes[1].grid(alpha=0.3)
    return fig
