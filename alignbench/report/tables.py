"""Report tables as pandas DataFrames of display strings: runs are columns, rows are what is compared.

Every function takes the frames of ``alignbench.report.collect.ReportData`` (``runs`` from
``load_runs`` and ``samples`` from ``load_samples``, each with a ``run`` label column) and returns a
DataFrame ready to print; an empty DataFrame means "nothing to show".
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

#: Per-sample metrics whose value 1 marks a risky outcome, with what that outcome is called.
RISK_METRICS = {"harmful_rate": "judged harmful by the harm judge", "compliance_rate": "harmful request answered",
                "over_refusal_rate": "benign request refused"}


def fmt_value(value: Any, ci_low: Any = None, ci_high: Any = None, n: Any = None, digits: int = 3) -> str:
    """``0.123 [0.100, 0.150] (n=40)``; parts that are missing are left out."""
    def ok(x: Any) -> bool:
        return x is not None and not (isinstance(x, float) and math.isnan(x)) and x is not pd.NA

    if not ok(value):
        text = "n/a"
    else:
        text = f"{float(value):.{digits}f}"
        if ok(ci_low) and ok(ci_high):
            text += f" [{float(ci_low):.{digits}f}, {float(ci_high):.{digits}f}]"
    if ok(n):
        text += f" (n={int(n)})"
    return text


def _cells(df: pd.DataFrame, index: list[str], labels: list[str]) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame()
    df = df.assign(cell=[fmt_value(r.value, r.ci_low, r.ci_high, r.n) for r in df.itertuples()])
    order = {k: i for i, k in enumerate(dict.fromkeys(map(tuple, df[index].astype(str).values)))}
    table = df.pivot_table(index=index, columns="run", values="cell", aggfunc="first", sort=False)
    table = table.reindex(columns=[c for c in labels if c in table.columns]).fillna("")
    table = table.loc[sorted(table.index, key=lambda k: order.get(tuple(map(str, k if isinstance(k, tuple) else (k,))), 0))]
    table.columns.name = None
    return table


def summary_table(runs: pd.DataFrame, labels: list[str] | None = None) -> pd.DataFrame:
    """Overall metric per task: rows (task, metric), one column per run, cells ``value [CI] (n=..)``."""
    labels = labels or list(dict.fromkeys(runs["run"]))
    return _cells(runs[runs["breakdown"].isna()], ["task", "metric"], labels)


def breakdown_tables(runs: pd.DataFrame, labels: list[str] | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """One table per (task, breakdown), e.g. ("harmful_rate", "category"): rows (group, metric), runs as columns."""
    labels = labels or list(dict.fromkeys(runs["run"]))
    sub = runs[runs["breakdown"].notna()]
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for (task, breakdown), df in sub.groupby(["task", "breakdown"], sort=False):
        out[(str(task), str(breakdown))] = _cells(df.rename(columns={"category": breakdown}), [breakdown, "metric"], labels)
    return out


def judge_names(samples: pd.DataFrame) -> list[str]:
    return [c[len("judge."):-len(".error")] for c in samples.columns if c.startswith("judge.") and c.endswith(".error")]


def judge_error_table(samples: pd.DataFrame, labels: list[str] | None = None) -> pd.DataFrame:
    """Failed judgments per task and judge: rows (task, judge), cells ``errors / judged``.

    A judge that failed on a sample keeps the sample with its error (DESIGN §8); this counts them.
    """
    if samples.empty:
        return pd.DataFrame()
    labels = labels or list(dict.fromkeys(samples["run"]))
    rows = []
    for name in judge_names(samples):
        err, label = samples[f"judge.{name}.error"], samples.get(f"judge.{name}.label")
        judged = err.notna() | (label.notna() if label is not None else False) | samples[f"judge.{name}.score"].notna()
        for (run, task), idx in samples.groupby(["run", "task"], sort=False).groups.items():
            n = int(judged.loc[idx].sum())
            if n:
                rows.append({"run": run, "task": task, "judge": name, "cell": f"{int(err.loc[idx].notna().sum())} / {n}"})
    if not rows:
        return pd.DataFrame()
    t = pd.DataFrame(rows).pivot_table(index=["task", "judge"], columns="run", values="cell", aggfunc="first", sort=False)
    t = t.reindex(columns=[c for c in labels if c in t.columns]).fillna("")
    t.columns.name = None
    return t


def judge_error_total(samples: pd.DataFrame) -> int:
    return int(sum(samples[f"judge.{n}.error"].notna().sum() for n in judge_names(samples)))


def run_info_table(infos: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Provenance of each run: model, fingerprint, status, times, seed, commit, versions, model calls."""
    rows = {}
    for label, info in infos.items():
        fp = info.get("model_fingerprint") or {}
        vers = info.get("versions") or {}
        tasks = info.get("tasks") or {}
        rows[label] = {
            "model": info.get("model"),
            "fingerprint": fp.get("hash") if isinstance(fp, dict) else fp,
            "status": info.get("status"),
            "created": info.get("created"),
            "finished": info.get("finished"),
            "tasks": ", ".join(f"{t} (n={v.get('n_samples')})" if isinstance(v, dict) else str(t) for t, v in tasks.items()),
            "seed": info.get("seed"),
            "shard": info.get("shard"),
            "git commit": (info.get("git_commit") or "")[:12] or None,
            "alignbench": vers.get("alignbench"),
            "model calls": info.get("model_calls"),
        }
    df = pd.DataFrame(rows).astype(object)
    df = df[df.apply(lambda row: any(v is not None and v == v and str(v) != "" for v in row), axis=1)]
    df.index.name = "field"
    return df.where(df.notna(), "")


def risky_examples(samples: pd.DataFrame, per_run: int = 3, max_chars: int = 600) -> pd.DataFrame:
    """A few samples per run whose risk metric is 1 (a harmful request answered, a benign one refused).

    The prompt and response are truncated to ``max_chars``; they are model/user text and must be
    escaped by the renderer.
    """
    rows = []
    for metric, what in RISK_METRICS.items():
        col = f"metric.{metric}"
        if col not in samples:
            continue
        hits = samples[samples[col] == 1.0]
        for run, df in hits.groupby("run", sort=False):
            for r in df.head(per_run).itertuples():
                rows.append({"run": run, "outcome": what, "task": r.task, "sample_id": r.sample_id,
                             "category": getattr(r, "category", None), "prompt": clip(getattr(r, "prompt_text", ""), max_chars),
                             "response": clip(getattr(r, "response", ""), max_chars)})
    return pd.DataFrame(rows)


def clip(text: Any, n: int = 600) -> str:
    """Text cut to ``n`` characters (an ellipsis marks the cut); None/NaN -> ""."""
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def judge_validity_table(entries: list[tuple[str, Any]]) -> pd.DataFrame:
    """Judge-vs-human agreement from judge_eval.json files (see ``parse_judge_eval``): rows judges, columns stats."""
    rows = []
    for source, data in entries:
        for judge, stats in parse_judge_eval(data).items():
            row = {"judge": judge, "source": source}
            row.update(stats)
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).set_index(["judge", "source"])
    return df.apply(lambda col: col.map(lambda v: f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))))


def parse_judge_eval(data: Any) -> dict[str, dict[str, Any]]:
    """Scalar statistics per judge from a judge_eval.json, read loosely.

    Accepted shapes: ``{"judge": NAME, "accuracy": .., "macro_f1": .., "cohen_kappa": .., "n": ..}``;
    ``{"judges": {NAME: {stat: value}}}`` or ``{NAME: {stat: value}}``; or a list of the first shape.
    Only scalar (number/string) fields are kept, so nested details (confusion matrices) are skipped.
    """
    def scalars(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "judge" and isinstance(v, (int, float, str)) and not isinstance(v, bool)}

    if isinstance(data, list):
        out: dict[str, dict[str, Any]] = {}
        for d in data:
            out.update(parse_judge_eval(d))
        return out
    if not isinstance(data, dict):
        return {}
    if "judge" in data and isinstance(data["judge"], str):
        return {data["judge"]: scalars(data)}
    inner = data.get("judges", data)
    if isinstance(inner, list):
        return parse_judge_eval(inner)
    return {str(k): scalars(v) for k, v in inner.items() if isinstance(v, dict) and scalars(v)}


def fmt_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Floats as 3 decimals (3 significant digits below 0.001), NaN as n/a, None as empty; other cells as text."""
    def f(v: Any) -> str:
        if isinstance(v, float):
            return "n/a" if v != v else f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
        return "" if v is None else str(v)

    return df.apply(lambda col: col.map(f))
