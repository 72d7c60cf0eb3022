"""The report's "Drift" section: paired changes from drift.json, flips once per sample and decision,
token-shift profiles, and a few flipped samples with base and tuned responses.

One sample that went from refused to answered flips several 0/1 metrics at once (refusal_rate 1 -> 0,
compliance_rate and harmful_rate 0 -> 1); ``flip_decisions`` folds the lines of flips.jsonl into one
record per (task, sample, decision), listing the metrics that express it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alignbench.report import plots, tables, wide
from alignbench.report.blocks import Block, Examples, Image, Section, Table, Text
from alignbench.report.drift import DriftEntry, drift_entries, flip_lists, token_shift_profiles
from alignbench.report.headline import KEY_METRICS

MAX_DRIFT_BARS = 30  # overall comparisons drawn; per-category ones are in the table only
#: The decision a 0 -> 1 change of a metric states, when flips.jsonl gives none (1 -> 0 is the reverse).
DECISION_UP = {"refused": "complied->refused", "refusal_rate": "complied->refused", "over_refusal_rate": "complied->refused",
               "harmful_rate": "refused->complied", "compliance_rate": "refused->complied"}


def _reverse(change: str) -> str:
    a, _, b = change.partition("->")
    return f"{b}->{a}"


def decision_of(flip: dict[str, Any]) -> str:
    """The decision one flips.jsonl line records: its ``change``, else by metric name, else "METRIC 0->1"."""
    change, metric, direction = flip.get("change"), str(flip.get("metric")), str(flip.get("direction"))
    if isinstance(change, str) and "->" in change:
        return change.strip()
    if metric in DECISION_UP and direction in ("0->1", "1->0"):
        return DECISION_UP[metric] if direction == "0->1" else _reverse(DECISION_UP[metric])
    return f"{metric} {direction}"


def flip_decisions(flips: Any) -> list[dict[str, Any]]:
    """One record per (task, sample_id, decision) of flips.jsonl, first-seen order, with ``metrics``: the metrics that flipped."""
    out: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    for f in flips if isinstance(flips, list) else []:
        if not isinstance(f, dict):
            continue
        d = decision_of(f)
        key = (f.get("task"), f.get("sample_id"), d)
        rec = out.get(key)
        if rec is None:
            rec = out[key] = {"task": f.get("task"), "sample_id": f.get("sample_id"), "category": f.get("category"), "decision": d,
                              "metrics": [], "prompt": f.get("prompt"), "base_response": f.get("base_response"),
                              "tuned_response": f.get("tuned_response")}
        rec["metrics"].append(f"{f.get('metric')} {f.get('direction')}")
    return list(out.values())


def decision_table(decisions: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (task, decision, the metrics that recorded it): samples. The metrics tell harmful prompts
    (harmful_rate, refusal_rate) from benign ones (over_refusal_rate) that made the same change."""
    counts: dict[tuple[Any, str, str], int] = {}
    for d in decisions:
        key = (d["task"], d["decision"], ", ".join(d["metrics"]))
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return pd.DataFrame()
    index = pd.MultiIndex.from_tuples(list(counts), names=["task", "decision", "recorded by"])
    return pd.DataFrame({"samples": list(counts.values())}, index=index)


def category_deltas(entries: list[DriftEntry]) -> list[tuple[str, pd.DataFrame, list[bool]]]:
    """Per task, the per-category paired changes in wide form: rows categories, n once, one column per metric."""
    out = []
    per_task: dict[str, list[DriftEntry]] = {}
    for d in entries:
        if d.category is not None and not d.label.endswith("(unpaired)"):
            per_task.setdefault(d.label.split("/", 1)[0], []).append(d)
    for task, items in per_task.items():
        metrics = list(dict.fromkeys(d.label.split("/", 1)[1].rsplit(" [", 1)[0] for d in items))
        metrics.sort(key=lambda m: KEY_METRICS.index(m) if m in KEY_METRICS else len(KEY_METRICS))
        rows: dict[str, dict[str, Any]] = {}
        first: dict[str, float] = {}
        for d in items:
            metric = d.label.split("/", 1)[1].rsplit(" [", 1)[0]
            row = rows.setdefault(str(d.category), {"n": 0})
            row["n"] = max(row["n"], d.n or 0)
            cell = f"{d.delta:+.2f}" + (f" [{d.ci_low:+.2f}, {d.ci_high:+.2f}]" if d.ci_low is not None and d.ci_high is not None else "")
            row[metric] = cell + (f" (p={d.p_value:.2g})" if d.p_value is not None else "")
            if metric == metrics[0]:
                first[str(d.category)] = d.delta
        order = sorted(rows, key=lambda c: (-first.get(c, float("-inf")), c))
        small = [rows[c]["n"] < wide.SMALL_N for c in order]
        index = [f"{c} {wide.SMALL_MARK}" if sm else c for c, sm in zip(order, small)]
        df = pd.DataFrame([rows[c] for c in order], index=pd.Index(index, name="category"), columns=["n"] + metrics).fillna("")
        out.append((task, df, small))
    return out


def flip_examples(flips: list, source: str, per_kind: int = 3) -> pd.DataFrame:
    """A few flipped samples per (task, decision), each once: prompt, base and tuned responses."""
    from alignbench.types import prompt_text

    rows, seen = [], {}
    for d in flip_decisions(flips):
        key = (d["task"], d["decision"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > per_kind:
            continue
        prompt = d["prompt"]
        rows.append({"run": source, "outcome": f"{d['decision']} ({', '.join(d['metrics'])})", "task": d["task"], "sample_id": d["sample_id"],
                     "category": d["category"], "prompt": tables.clip(prompt_text(prompt) if isinstance(prompt, (list, str)) else prompt),
                     "base_response": tables.clip(d["base_response"]), "response": tables.clip(d["tuned_response"])})
    return pd.DataFrame(rows)


def sections(data, with_plots: bool = True, examples_per_kind: int = 3) -> list[Section]:
    img = (lambda name, fig, cap: [] if fig is None else [Image(name, plots.figure_png(fig), cap)]) if with_plots else (lambda *a: [])
    blocks: list[Block] = []
    for i, e in enumerate(data.extras_of("drift")):
        entries = drift_entries(e.data)
        if entries:
            overall = [d for d in entries if d.category is None]
            t = pd.DataFrame([{"comparison": d.label, "n": d.n, "A": d.a, "B": d.b, "delta": d.delta, "ci_low": d.ci_low,
                               "ci_high": d.ci_high, "p": d.p_value, "test": d.test, "0→1": d.b01, "1→0": d.b10} for d in overall])
            blocks += [Table(tables.fmt_frame(t.set_index("comparison")), f"paired changes B - A ({e.source})")]
            for task, wide_t, small in category_deltas(entries):
                blocks.append(Table(wide_t, f"{task}: paired change B - A by category, delta [95% CI] (p), sorted by the first "
                                    f"column ({e.source})", small=small, note=wide.small_note() if any(small) else "", wide=True))
            overall = overall[:MAX_DRIFT_BARS]
            blocks += img(f"drift-{i}", plots.plot_drift(overall, f"Paired change B - A ({e.source})"), f"drift: {e.source}")
        flips = flip_lists(e.data)
        if flips:
            blocks.append(Table(pd.DataFrame(flips, columns=["flip list", "samples"]).set_index("flip list"), f"flips ({e.source})"))
        if not entries and not flips and not token_shift_profiles(e.data):
            blocks.append(Text(f"{e.path}: no paired comparisons or flip lists recognised."))
    shift_files = {e.path.parent for e in data.extras_of("token_shift")}
    shift_sources = data.extras_of("token_shift") + [e for e in data.extras_of("drift") if e.path.parent not in shift_files
                                                     and token_shift_profiles(e.data)]
    for i, e in enumerate(shift_sources):
        profiles = token_shift_profiles(e.data)
        if profiles:
            rows = {p.label: {k: tables.fmt_value(v, *(p.ci or {}).get(k, (None, None))) for k, v in p.shares.items()} for p in profiles}
            blocks += [Text("Token shift (URIAL): share of the tuned model's answer tokens that are the base model's top "
                            "choice (unshifted), among its next few (marginal), or outside them (shifted)."),
                       Table(pd.DataFrame.from_dict(rows, orient="index").rename_axis("profile"), f"token shift ({e.source})")]
        for j, p in enumerate(profiles):
            blocks += img(f"token-shift-{i}-{j}", plots.plot_token_shift(p), f"token shift: {p.label} ({e.source})")
            if p.top_tokens and j == 0:
                top = pd.DataFrame(p.top_tokens[:15])
                blocks.append(Table(tables.fmt_frame(top.set_index(top.columns[0])), f"most shifted tokens ({e.source})"))
        if not profiles:
            blocks.append(Text(f"{e.path}: no token-shift profile (unshifted/marginal/shifted) recognised."))
    for e in data.extras_of("flips"):
        decisions = flip_decisions(e.data)
        if decisions:
            blocks += [Text(f"Flips ({e.source}): {len(decisions)} sample decisions changed ({len(e.data)} lines of {e.path.name}, "
                            "one per metric); each sample is counted once per decision."),
                       Table(decision_table(decisions), f"flips by decision ({e.source})")]
        ex = flip_examples(e.data, e.source, per_kind=examples_per_kind)
        if not ex.empty:
            blocks += [Text(f"Flipped samples ({e.source}): a few per decision, base and tuned responses verbatim (escaped)."), Examples(ex)]
    return [Section("Drift", blocks)] if blocks else []
