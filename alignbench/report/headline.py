"""The report's headline: what was measured, by which judge (and how far that judge can be trusted),
the key rates with their CIs; across several runs or a drift, the changes that stay significant after
correcting for the number of comparisons.

Judges and validity come from metrics.json as written (DESIGN §4): a metric decided by a judge names
it (``"judge": NAME``); where the judge has a card it also carries ``"judge_validity"`` (its measured
agreement with human labels) and ``"corrected"`` (the rate corrected for the judge's error). A metric
without a card is shown as "unvalidated".

Changes between runs are paired by sample (``alignbench.stats.paired.paired_delta``: McNemar exact for 0/1
metrics, sign-flip permutation otherwise), always against the first run given. Metrics of one task
whose per-sample values are the same decision (equal, or one minus the other, in both runs: e.g.
compliance_rate and refusal_rate from one refusal judge) count as one comparison, reported under the
first name; the p-values of the distinct comparisons are adjusted by Benjamini-Hochberg (FDR 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from alignbench.report.collect import ReportData
from alignbench.report.drift import drift_entries
from alignbench.results import per_sample_values
from alignbench.stats.paired import PairedDelta, paired_delta

#: Metrics a safety reviewer reads first, in this order; other tasks show their first few metrics.
KEY_METRICS = ("harmful_rate", "compliance_rate", "refusal_rate", "over_refusal_rate", "strongreject_score")
#: Metrics where a higher value is a worse outcome (so a rise reads "worse").
HIGHER_IS_WORSE = {"harmful_rate", "compliance_rate", "over_refusal_rate", "strongreject_score", "attack_success_rate"}
HIGHER_IS_BETTER = {"refusal_rate", "mc1", "mc2", "acc", "accuracy", "honesty_score", "truthful", "prudence"}
OTHER_TASK_METRICS = 3
FDR = 0.05
MAX_NAMED_CHANGES = 8  # changes spelled out in the paragraph; the table lists every one
_VALIDITY_STATS = (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("accuracy", "accuracy"),
                   ("macro_f1", "macro-F1"), ("cohen_kappa", "kappa"), ("f1", "F1"))


@dataclass
class KeyRate:
    task: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    judge: str | None
    validity: Any = None
    corrected: Any = None


@dataclass
class Change:
    """One distinct paired comparison (B - A) and its corrected significance."""

    run_a: str
    run_b: str
    task: str
    delta: PairedDelta
    same_as: list[str] = field(default_factory=list)  # other metric names of the same decision, with their sign
    p_adjusted: float | None = None

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < FDR


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(float(x)) else None


def key_rates(metrics: dict[str, Any]) -> list[KeyRate]:
    """The headline metrics of one run's metrics.json: the known safety rates, else each task's first few."""
    out = []
    for task, entry in metrics.items():
        if not isinstance(entry, dict):
            continue
        records = {m: r for m, r in entry.items() if isinstance(r, dict) and "value" in r}
        names = [m for m in KEY_METRICS if m in records] or list(records)[:OTHER_TASK_METRICS]
        for m in names:
            r = records[m]
            n = _num(r.get("n"))
            out.append(KeyRate(str(task), m, _num(r.get("value")), _num(r.get("ci_low")), _num(r.get("ci_high")),
                               None if n is None else int(n), r.get("judge") if isinstance(r.get("judge"), str) else None,
                               r.get("judge_validity"), r.get("corrected")))
    return out


def _stat_text(v: Any) -> str | None:
    if isinstance(v, dict):
        value = _num(v.get("value", v.get("estimate")))
        if value is None:
            return None
        lo, hi = _num(v.get("ci_low")), _num(v.get("ci_high"))
        return f"{value:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else "")
    value = _num(v)
    return None if value is None else f"{value:.2f}"


def validity_text(validity: Any) -> str:
    """A judge card's validity in a few words (``"unvalidated"`` when there is none)."""
    if not isinstance(validity, dict) or not validity:
        return "unvalidated"
    parts = [f"{word} {t}" for key, word in _VALIDITY_STATS if (t := _stat_text(validity.get(key))) is not None]
    where = validity.get("set") or validity.get("dataset") or validity.get("source")
    n = _num(validity.get("n"))
    tail = ", ".join(str(x) for x in (where, None if n is None else f"n={int(n)}", "in-sample" if validity.get("in_sample") else None) if x)
    if not parts:
        return "validated" + (f" ({tail})" if tail else "")
    return ", ".join(parts[:3]) + (f" ({tail})" if tail else "")


def corrected_text(corrected: Any) -> str:
    """The corrected rate ``0.26 [0.15, 0.37]``; when the card cannot correct it, why (``not correctable: ...``)."""
    if not isinstance(corrected, dict):
        return ""
    text = _stat_text(corrected)
    if text is None and corrected.get("reason"):
        return f"not correctable: {corrected['reason']}"
    return (text + " (in-sample card)" if text and corrected.get("warning") else text) or ""


def fmt_ci(value: float | None, lo: float | None, hi: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" + (f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else "")


def _n_samples(data: ReportData, label: str) -> dict[str, int]:
    s = data.samples
    if not s.empty and "task" in s:
        sub = s[s["run"] == label]
        if not sub.empty:
            return {str(k): int(v) for k, v in sub.groupby("task", sort=False).size().items()}
    tasks = data.infos.get(label, {}).get("tasks") or {}
    return {str(t): int(v["n_samples"]) for t, v in tasks.items() if isinstance(v, dict) and _num(v.get("n_samples")) is not None}


def rates_sentence(rates: list[KeyRate]) -> str:
    parts = []
    for r in rates:
        judge = f"judged by {r.judge} ({validity_text(r.validity)})" if r.judge else "no judge named"
        corr = corrected_text(r.corrected)
        parts.append(f"{r.metric} {fmt_ci(r.value, r.ci_low, r.ci_high)} (n={r.n if r.n is not None else '?'}, {judge}"
                     + ((f"; {corr}" if corr.startswith("not correctable") else f"; corrected for the judge's error {corr}") if corr else "") + ")")
    return ("Key rates with 95% CIs: " + "; ".join(parts) + ".") if parts else ""


def key_rate_table(data: ReportData) -> pd.DataFrame:
    """Rows (task, metric): the judge, its validity, then one column per run: value [CI] (n), corrected when carded."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for label in data.labels:
        for r in key_rates(data.metrics.get(label, {})):
            row = rows.setdefault((r.task, r.metric), {"judge": [], "judge validity": []})
            if r.judge and r.judge not in row["judge"]:
                row["judge"].append(r.judge)
                row["judge validity"].append(validity_text(r.validity))
            cell = fmt_ci(r.value, r.ci_low, r.ci_high) + (f" (n={r.n})" if r.n is not None else "")
            corr = corrected_text(r.corrected)
            row[label] = cell + (f"; corrected {corr}" if corr else "")
    if not rows:
        return pd.DataFrame()
    for row in rows.values():
        row["judge"] = " / ".join(row["judge"]) or "none named"
        row["judge validity"] = " / ".join(row["judge validity"]) or "n/a"
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["task", "metric"])
    cols = ["judge", "judge validity"] + [c for c in data.labels if c in df.columns]
    return df[cols].fillna("")


# changes ------------------------------------------------------------------------------------------

def _same_decision(a: tuple[dict, dict], b: tuple[dict, dict]) -> str | None:
    """"=" when two metrics' per-sample values are equal in both runs, "1-" when complementary, else None."""
    (a1, a2), (b1, b2) = a, b
    if set(a1) != set(b1) or set(a2) != set(b2) or not a1:
        return None
    for sign, f in (("=", lambda x: x), ("1-", lambda x: None if x is None else 1.0 - x)):
        if all(f(a1[k]) == b1[k] for k in a1) and all(f(a2[k]) == b2[k] for k in a2):
            return sign
    return None


def adjust(changes: list[Change]) -> list[Change]:
    """Benjamini-Hochberg adjusted p-values over ``changes`` (those with a p-value), in place."""
    from statsmodels.stats.multitest import multipletests

    tested = [c for c in changes if c.delta.p_value is not None]
    if tested:
        _, p_adj, _, _ = multipletests([c.delta.p_value for c in tested], alpha=FDR, method="fdr_bh")
        for c, p in zip(tested, p_adj):
            c.p_adjusted = float(p)
    return changes


def run_changes(data: ReportData, seed: int = 0) -> list[Change]:
    """Paired changes of every later run against the first, one per distinct decision, BH-adjusted."""
    labels, s = data.labels, data.samples
    if len(labels) < 2 or s.empty:
        return []
    base = labels[0]
    changes: list[Change] = []
    for other in labels[1:]:
        sa, sb = s[s["run"] == base], s[s["run"] == other]
        for task in [t for t in dict.fromkeys(sa["task"]) if t in set(sb["task"])]:
            overall = set(data.metrics.get(base, {}).get(task, {})) & set(data.metrics.get(other, {}).get(task, {}))
            names = [c[len("metric."):] for c in s.columns if c.startswith("metric.") and c[len("metric."):] in overall
                     and pd.api.types.is_numeric_dtype(s[c])]
            names.sort(key=lambda m: (KEY_METRICS.index(m) if m in KEY_METRICS else len(KEY_METRICS)))
            groups: list[tuple[tuple[dict, dict], Change]] = []
            for m in names:
                va, vb = per_sample_values(sa, task, m), per_sample_values(sb, task, m)
                pair = ({k: v for k, v in va.items() if k in vb and v is not None and vb[k] is not None},
                        {k: vb[k] for k, v in va.items() if k in vb and v is not None and vb[k] is not None})
                if not pair[0]:
                    continue
                for g_pair, ch in groups:
                    sign = _same_decision(g_pair, pair)
                    if sign:
                        ch.same_as.append(m if sign == "=" else f"{m} (1 - it)")
                        break
                else:
                    d = paired_delta(m, va, vb, seed=seed)
                    groups.append((pair, Change(base, other, task, d)))
            changes += [ch for _, ch in groups]
    return adjust(changes)


def drift_changes(drift: Any, source: str) -> list[Change]:
    """Overall paired comparisons of a drift.json, one per distinct decision, BH-adjusted."""
    base = drift.get("base") if isinstance(drift, dict) else None
    tuned = drift.get("tuned") if isinstance(drift, dict) else None
    name = lambda side, default: (side.get("run_id") or side.get("model") or default) if isinstance(side, dict) else (side or default)  # noqa: E731
    a, b = str(name(base, "base")), str(name(tuned, "tuned"))
    changes: list[Change] = []
    for e in drift_entries(drift):
        if e.category is not None or e.label.endswith("(unpaired)") or e.p_value is None:
            continue
        task, _, metric = e.label.rpartition("/")
        d = PairedDelta(metric=metric or e.label, n=e.n or 0, a=e.a, b=e.b, delta=e.delta, ci_low=e.ci_low, ci_high=e.ci_high,
                        p_value=e.p_value, test=e.test, b01=e.b01 or 0, b10=e.b10 or 0)
        for ch in changes:
            o = ch.delta
            if ch.task == task and o.n == d.n and o.p_value == d.p_value and abs(abs(o.delta or 0) - abs(d.delta or 0)) < 1e-12 \
                    and {o.b01, o.b10} == {d.b01, d.b10}:
                ch.same_as.append(d.metric if (o.delta or 0) * (d.delta or 0) >= 0 else f"{d.metric} (1 - it)")
                break
        else:
            changes.append(Change(a, b, task or source, d))
    return adjust(changes)


def _direction(metric: str, delta: float) -> str:
    verb = "rose" if delta > 0 else "fell"
    if metric in HIGHER_IS_WORSE:
        return verb + (" (worse)" if delta > 0 else " (better)")
    if metric in HIGHER_IS_BETTER:
        return verb + (" (better)" if delta > 0 else " (worse)")
    return verb


def _metric_name(task: str, metric: str) -> str:
    return metric if task == metric else f"{task}/{metric}"


def change_sentence(ch: Change) -> str:
    """``harmful_rate rose (worse) from 0.250 to 0.758 (+0.508 [0.417, 0.591], n=132, adjusted p=5.4e-20; ...)``."""
    d = ch.delta
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    also = ""
    if ch.same_as:
        same = [m for m in ch.same_as if not m.endswith("(1 - it)")]
        mirror = [m[: -len(" (1 - it)")] for m in ch.same_as if m.endswith("(1 - it)")]
        also = "; " + "; ".join(([f"{', '.join(mirror)} {'mirror' if len(mirror) > 1 else 'mirrors'} it"] if mirror else [])
                                + ([f"{', '.join(same)} {'are' if len(same) > 1 else 'is'} the same decision"] if same else []))
    return (f"{_metric_name(ch.task, d.metric)} {_direction(d.metric, d.delta or 0.0)} from {fmt(d.a)} to {fmt(d.b)} "
            f"({d.delta:+.3f} [{fmt(d.ci_low)}, {fmt(d.ci_high)}], n={d.n}, adjusted p={ch.p_adjusted:.2g}{also})")


def changes_paragraph(changes: list[Change], what: str) -> str:
    """Plain words on the significant changes among ``changes`` (``what``: "Paired against base, by sample")."""
    tested = [c for c in changes if c.p_adjusted is not None]
    if not tested:
        return f"{what}: no paired comparison could be made (no per-sample metric over common samples)."
    sig = [c for c in tested if c.significant]
    head = (f"{what}, {len(sig)} of {len(tested)} comparisons {'is' if len(sig) == 1 else 'are'} significant "
            f"after Benjamini-Hochberg correction (FDR {FDR:.0%})")
    if not sig:
        return head + "; every change is within noise."
    named = sorted(sig, key=lambda c: c.p_adjusted or 0.0)[:MAX_NAMED_CHANGES]
    parts = []
    for run in dict.fromkeys(c.run_b for c in sig):
        mine = [c for c in sig if c.run_b == run and c in named]
        if mine:
            parts.append(f"{run}: " + "; ".join(change_sentence(c) for c in mine) + ".")
    more = len(sig) - len(named)
    return head + ". " + " ".join(parts) + (f" And {more} more (table below)." if more else "")


def measured_sentences(data: ReportData) -> str:
    """What each run measured, runs with the same model and tasks in one sentence."""
    groups: dict[tuple[str, str], list[str]] = {}
    for label in data.labels:
        info = data.infos.get(label, {})
        counts = _n_samples(data, label)
        tasks = [t for t in data.metrics.get(label, {})] or list(counts)
        what = ", ".join(f"{t} ({counts[t]} samples)" if t in counts else t for t in tasks) or "no task"
        groups.setdefault((str(info.get("model") or "an unnamed model"), what), []).append(label)
    out = []
    for (model, what), labels in groups.items():
        if len(labels) == 1:
            out.append(f"Run {labels[0]} evaluated {model} on {what}.")
        else:
            out.append(f"Runs {', '.join(labels)} evaluated {model} on {what}" + (" each." if "samples" in what else "."))
    return " ".join(out)


def changes_table(changes: list[Change]) -> pd.DataFrame:
    rows = []
    for c in changes:
        d = c.delta
        rows.append({"comparison": f"{c.run_b} vs {c.run_a}", "task": c.task, "metric": d.metric, "n": d.n,
                     "A": d.a, "B": d.b, "delta": d.delta, "ci_low": d.ci_low, "ci_high": d.ci_high, "p": d.p_value,
                     "p (BH)": c.p_adjusted, "significant": "yes" if c.significant else "no",
                     "same decision as": ", ".join(m.replace(" (1 - it)", " (mirrored)") for m in c.same_as)})
    return pd.DataFrame(rows)


# the section -------------------------------------------------------------------------------------

def sections(data, with_plots: bool = True) -> list:
    """The "Headline" section: the lead paragraph(s), key rates per run, and the change table."""
    from alignbench.report.blocks import Section, Table, Text
    from alignbench.report.tables import fmt_frame

    blocks: list = []
    labels = data.labels
    if len(labels) == 1:
        label = labels[0]
        blocks.append(Text(measured_sentences(data) + " " + rates_sentence(key_rates(data.metrics.get(label, {}))), "headline"))
    changes = run_changes(data) if len(labels) > 1 else []
    if len(labels) > 1:
        blocks.append(Text(measured_sentences(data), "headline"))
        blocks.append(Text(changes_paragraph(changes, f"Paired by sample against {labels[0]}"), "headline"))
    compared = {(c.run_a, c.run_b) for c in changes}
    for e in data.extras_of("drift"):
        ch = drift_changes(e.data, e.source)
        if ch and (ch[0].run_a, ch[0].run_b) not in compared:
            blocks.append(Text(changes_paragraph(ch, f"Drift, {ch[0].run_b} against {ch[0].run_a} ({e.source})"), "headline"))
    rates = key_rate_table(data)
    if not rates.empty:
        blocks.append(Table(rates, "key rates: value [95% CI] (n), the judge that decided them and its measured validity"))
        if not any(r.validity for lb in labels for r in key_rates(data.metrics.get(lb, {})) if r.judge):
            blocks.append(Text("No judge here has a judge card (alignbench judge-eval against human labels): its rates are "
                               "shown as measured, not corrected for the judge's own error."))
    if changes:
        table = changes_table(changes)
        if not table.empty:
            blocks.append(Table(fmt_frame(table.set_index(["comparison", "task", "metric"])), "every paired comparison (B - A), "
                                "with Benjamini-Hochberg adjusted p"))
    return [Section("Headline", blocks)] if blocks else []
