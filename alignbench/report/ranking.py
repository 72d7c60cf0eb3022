"""The report's "Ranking" section: which run is better, from ``alignbench compare`` results and best-of-N runs.

Per compare.json found among the report's inputs: the overall ranking (Bradley-Terry rating on the
Elo scale with its 95% bootstrap CI, Elo, each run's win rate against the others), a plot of the
ratings with their CIs, the pairs' wins / ties / losses and win rates, ratings per task, and how far
the judge can be trusted here (share of verdicts that flipped with position, jury agreement).

For runs made with ``--reducer best_of:JUDGE``: the best-of-N win rate against the first epoch per
task (``alignbench.run.best_of``).

``disagreement_samples`` turns the pairs.jsonl lines where the jurors disagreed into sample-browser
rows (run = "A vs B", both responses, every juror's verdict), so the browser's "judges disagree"
filter lists them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from alignbench.records.epochs import best_of_judge
from alignbench.report import plots, tables
from alignbench.report.blocks import Block, Image, Section, Table, Text
from alignbench.report.collect import Extra, ReportData
from alignbench.run.best_of import win_rate_vs_first

MAX_BROWSER_PAIRS = 2000  # disagreeing pairs shown in the browser (all are in pairs.jsonl)


def _ok(x: Any) -> bool:
    return isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x))


def _rating(r: dict[str, Any]) -> str:
    if not _ok(r.get("rating")):
        return "n/a"
    ci = f" [{r['ci_low']:.0f}, {r['ci_high']:.0f}]" if _ok(r.get("ci_low")) and _ok(r.get("ci_high")) else ""
    return f"{r['rating']:.0f}{ci}"


def ranking_table(scope: dict[str, Any]) -> pd.DataFrame:
    """Rows per run, best first: Bradley-Terry rating [CI], Elo, and its win rate against all the others."""
    bt, elo = scope.get("bradley_terry") or {}, scope.get("elo") or {}
    totals: dict[str, list[float]] = {}
    for p in scope.get("pairs") or []:
        for run, won in ((p["a"], p["wins"] + p["ties"] / 2), (p["b"], p["losses"] + p["ties"] / 2)):
            t = totals.setdefault(run, [0.0, 0.0])
            t[0] += won
            t[1] += p["n"]
    order = sorted(bt, key=lambda m: -(bt[m].get("rating") or -math.inf))
    rows = [{"rank": k + 1, "run": m, "Bradley-Terry rating [95% CI]": _rating(bt[m]),
             "Elo": f"{elo[m]:.0f}" if _ok(elo.get(m)) else "n/a",
             "win rate vs others": tables.fmt_value(totals[m][0] / totals[m][1], n=int(totals[m][1])) if totals.get(m, [0, 0])[1] else "n/a"}
            for k, m in enumerate(order)]
    return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame()


def pair_table(scope: dict[str, Any]) -> pd.DataFrame:
    rows = [{"run a": p["a"], "run b": p["b"], "wins / ties / losses of a": f"{p['wins']} / {p['ties']} / {p['losses']}",
             "win rate of a [95% CI]": tables.fmt_value(p["win_rate"], p["ci_low"], p["ci_high"], p["n"]), "failed": p["failed"]}
            for p in scope.get("pairs") or []]
    return pd.DataFrame(rows).set_index(["run a", "run b"]) if rows else pd.DataFrame()


def task_table(info: dict[str, Any]) -> pd.DataFrame:
    """Bradley-Terry rating [CI] per run (rows) and task (columns)."""
    cols = {task: {m: _rating(r) for m, r in (sc.get("bradley_terry") or {}).items()} for task, sc in (info.get("by_task") or {}).items()}
    return pd.DataFrame(cols).fillna("") if cols else pd.DataFrame()


def plot_ratings(scope: dict[str, Any], title: str = ""):
    bt = scope.get("bradley_terry") or {}
    runs = [m for m in sorted(bt, key=lambda m: bt[m].get("rating") or -math.inf) if _ok(bt[m].get("rating"))]
    if not runs:
        return None
    fig = plots.new_figure(7.0, 0.5 + 0.45 * len(runs))
    ax = fig.add_subplot(1, 1, 1)
    v = np.array([bt[m]["rating"] for m in runs], dtype=float)
    lo = np.array([bt[m]["ci_low"] if _ok(bt[m].get("ci_low")) else bt[m]["rating"] for m in runs], dtype=float)
    hi = np.array([bt[m]["ci_high"] if _ok(bt[m].get("ci_high")) else bt[m]["rating"] for m in runs], dtype=float)
    ax.errorbar(v, np.arange(len(runs)), xerr=np.vstack([v - lo, hi - v]).clip(0), fmt="o", capsize=4, color=plots.color(0))
    ax.set_yticks(np.arange(len(runs)), runs)
    ax.set_xlabel("Bradley-Terry rating (Elo scale), 95% bootstrap CI")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def _trust(scope: dict[str, Any]) -> str:
    parts = []
    flips = scope.get("position_flips")
    if flips and flips.get("share") is not None:
        parts.append(f"{flips['flipped']} of {flips['verdicts']} juror verdicts ({flips['share']:.1%}) changed when the two responses "
                     f"swapped places ({flips['favoured_first']} favoured the first position, {flips['favoured_second']} the second); "
                     "such a verdict counts as a tie")
    agree = scope.get("agreement")
    if agree and agree.get("fleiss_kappa") is not None:
        parts.append(f"jury agreement: Fleiss' kappa {agree['fleiss_kappa']:.3f} over {agree['n']} pairs every juror decided, "
                     f"jurors split on {agree['disagreements']} pairs (listed in the sample browser)")
    return "; ".join(parts) + ("." if parts else "")


def compare_blocks(e: Extra, with_plots: bool) -> list[Block]:
    info = e.data if isinstance(e.data, dict) else {}
    ov = info.get("overall")
    if not isinstance(ov, dict):
        return [Text(f"{e.path}: compare not finished (status {info.get('status')!r}); nothing to rank yet.")]
    s = info.get("settings") or {}
    how = "a reward model (higher reward wins" + (f", ties within {s['tie_margin']:g})" if s.get("tie_margin") else ")") \
        if s.get("compare") == "reward" else "a pairwise jury, each pair in both orders"
    blocks: list[Block] = [Text(f"Judge {s.get('judge')!r}, {how}: {ov.get('n')} pairwise judgments on shared samples"
                                f"{', ' + str(ov['failed']) + ' failed' if ov.get('failed') else ''}. Ratings: Bradley-Terry on the "
                                "Elo scale with a 95% CI from a bootstrap over samples; Elo averaged over seeded orders.")]
    rt = ranking_table(ov)
    if not rt.empty:
        bt = ov.get("bradley_terry") or {}
        flat = [m for m, r in bt.items() if _ok(r.get("ci_low")) and r.get("ci_low") == r.get("ci_high")]
        note = (f"A zero-width interval ({', '.join(flat)}) means every resample of the samples gave the same wins (each sample "
                "ranks the runs alike); it is not certainty: see the win rates' intervals below.") if flat else ""
        blocks.append(Table(rt, f"ranking ({e.source})", note=note))
    if with_plots:
        fig = plot_ratings(ov, str(s.get("judge") or ""))
        if fig is not None:
            blocks.append(Image(f"ranking-{e.source}".replace("/", "-"), plots.figure_png(fig), "Bradley-Terry ratings with 95% CIs"))
    pt = pair_table(ov)
    if not pt.empty:
        blocks.append(Table(pt, "pairs"))
    tt = task_table(info)
    if len(tt.columns) > 1:
        blocks.append(Table(tt, "Bradley-Terry rating [95% CI] per task", wide=True))
    trust = _trust(ov)
    if trust:
        blocks.append(Text(trust[0].upper() + trust[1:]))
    return blocks


def best_of_table(data: ReportData) -> pd.DataFrame:
    """Per run made with a best_of:JUDGE reducer and task: the best-of-N win rate against the first epoch."""
    rows = []
    samples = data.samples
    for label, info in data.infos.items():
        judge = best_of_judge(str((info.get("config") or {}).get("reducer") or ""))
        col = f"judge.{judge}.score"
        if judge is None or samples.empty or col not in samples or "epoch" not in samples:
            continue
        mine = samples[samples["run"] == label]
        for task, df in mine.groupby("task", sort=False):
            recs = [{"sample_id": r["sample_id"], "epoch": None if pd.isna(r["epoch"]) else int(r["epoch"]),
                     "judgments": {judge: {"score": None if pd.isna(r[col]) else float(r[col]), "error": r.get(f"judge.{judge}.error")}}}
                    for r in df.to_dict("records")]
            res = win_rate_vs_first(recs, judge)
            if res:
                rows.append({"run": label, "task": task, "judge": judge, "epochs": res["epochs"],
                             "best-of-N win rate vs first epoch [95% CI]": tables.fmt_value(res["value"], res["ci_low"], res["ci_high"], res["n"]),
                             "prompts improved": res["wins"]})
    return pd.DataFrame(rows).set_index(["run", "task"]) if rows else pd.DataFrame()


def sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    blocks: list[Block] = []
    for e in data.extras_of("compare"):
        blocks += compare_blocks(e, with_plots)
    bo = best_of_table(data)
    if not bo.empty:
        blocks += [Text("Best-of-N: per prompt, the epoch the reward model scores highest, against the first epoch by the same "
                        "rewards (a tie when the first epoch is the best)."), Table(bo, "best-of-N win rate")]
    return [Section("Ranking", blocks)] if blocks else []


def disagreement_samples(data: ReportData) -> pd.DataFrame:
    """Sample-browser rows for the pairs whose jurors disagreed (columns as ``ReportData.samples``)."""
    rows = []
    for e in data.extras_of("pairs"):
        judge = next((str((c.data.get("settings") or {}).get("judge")) for c in data.extras_of("compare")
                      if c.path.parent == e.path.parent and isinstance(c.data, dict)), "compare")
        for ln in (e.data if isinstance(e.data, list) else []):
            if not (isinstance(ln, dict) and ln.get("disagree")) or len(rows) >= MAX_BROWSER_PAIRS:
                continue
            a, b = ln.get("a"), ln.get("b")
            verdicts = [{"judge": v.get("judge"), "label": v.get("label")} for v in ln.get("verdicts") or []]
            rows.append({"run": f"{a} vs {b}", "task": ln.get("task"), "sample_id": ln.get("sample_id"), "category": ln.get("category"),
                         "prompt_text": ln.get("prompt"),
                         "response": f"[{a}]\n{ln.get('response_a')}\n\n[{b}]\n{ln.get('response_b')}",
                         f"judge.{judge}.label": {"a": a, "b": b, "tie": "tie"}.get(ln.get("winner")),
                         f"judge.{judge}.score": ln.get("score"), f"judge.{judge}.error": ln.get("error"),
                         f"judge.{judge}.raw": {"verdicts": verdicts}})
    return pd.DataFrame(rows)
