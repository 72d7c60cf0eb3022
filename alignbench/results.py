"""Result tables: runs and samples as tidy pandas DataFrames (DESIGN §4).

``load_runs`` turns one or many run folders into one row per run x task x metric (plus one row per
breakdown group, e.g. per category), so that comparing runs is a pivot away::

    from alignbench.results import load_runs, load_samples
    df = load_runs("results/")                       # every run under results/
    overall = df[df.category.isna()]
    overall.pivot_table(index=["task", "metric"], columns="run_id", values="value")

``load_samples`` gives one row per sample with judgments and per-sample metrics flattened into
columns, for error analysis and paired comparisons.

Paths may be a run folder (it holds ``run.json``), a folder whose sub-folders are runs, or a list of
either. Anything else is a ``UsageError`` naming the path.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import pandas as pd

from alignbench.errors import UsageError
from alignbench.records.files import METRICS_FILE, RUN_FILE, RunDir
from alignbench.types import prompt_text

PathLike = Union[str, "os.PathLike[str]"]
Paths = Union[PathLike, Iterable[PathLike]]

#: Columns of ``load_runs``, in order; ``JUDGE_COLUMNS`` follow them.
RUN_COLUMNS = ["run_id", "model", "model_fingerprint", "task", "metric", "breakdown", "category", "value", "stderr",
               "ci_low", "ci_high", "n", "status", "created", "finished", "seed", "path"]
#: How a metric was decided and how far to trust it (None where metrics.json has no such field):
#: ``ci_method``; ``judge`` (the judge that decided it); ``corrected`` / ``corrected_ci_low`` /
#: ``corrected_ci_high`` (the rate corrected for the judge's measured error, Rogan-Gladen, from the
#: record's ``corrected``); ``judge_sensitivity`` / ``judge_specificity`` (from its ``judge_validity``).
JUDGE_COLUMNS = ["ci_method", "judge", "corrected", "corrected_ci_low", "corrected_ci_high", "judge_sensitivity",
                 "judge_specificity"]
#: Keys of a metrics.json task entry that hold breakdowns ``{group: {metric: record}}``, and their name.
BREAKDOWN_PREFIX = "by_"
_STAT_KEYS = ("value", "stderr", "ci_low", "ci_high", "n")


def find_run_dirs(paths: Paths) -> list[RunDir]:
    """The run folders named by ``paths``: run folders themselves, or folders holding runs (one level down).

    Order follows the arguments; runs inside a parent folder are sorted by name. Raises ``UsageError``
    for a path that does not exist or holds no run.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise UsageError("no run folders given")
    found: list[RunDir] = []
    for item in items:
        p = Path(item).expanduser()
        if not p.exists():
            raise UsageError(f"{p}: no such run folder")
        if p.is_file() and p.name in (RUN_FILE, METRICS_FILE, "samples.jsonl"):
            p = p.parent
        if (p / RUN_FILE).is_file():
            found.append(RunDir(p))
            continue
        subs = sorted(c.parent for c in p.glob(f"*/{RUN_FILE}")) if p.is_dir() else []
        if not subs:
            raise UsageError(f"{p}: not a run folder (no {RUN_FILE}) and holds no run folders")
        found.extend(RunDir(s) for s in subs)
    return found


def _fingerprint(info: dict[str, Any]) -> str | None:
    fp = info.get("model_fingerprint")
    if isinstance(fp, dict):
        return fp.get("hash") or fp.get("id")
    return None if fp is None else str(fp)


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _is_metric_record(x: Any) -> bool:
    return isinstance(x, dict) and "value" in x


def judge_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """The ``JUDGE_COLUMNS`` of one metric record."""
    corrected = rec.get("corrected") if isinstance(rec.get("corrected"), dict) else {}
    validity = rec.get("judge_validity") if isinstance(rec.get("judge_validity"), dict) else {}

    def share(key: str) -> float | None:
        v = validity.get(key)
        return _num(v.get("value")) if isinstance(v, dict) else None

    return {"ci_method": rec.get("ci_method"), "judge": rec.get("judge"), "corrected": _num(corrected.get("value")),
            "corrected_ci_low": _num(corrected.get("ci_low")), "corrected_ci_high": _num(corrected.get("ci_high")),
            "judge_sensitivity": share("sensitivity"), "judge_specificity": share("specificity")}


def metric_rows(task: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one metrics.json task entry: overall metrics (breakdown=None) then each ``by_*`` group.

    Entries that are neither metric records nor breakdowns (free-form extras) are skipped.
    """
    rows: list[dict[str, Any]] = []

    def row(metric: str, rec: dict[str, Any], breakdown: str | None, group: Any) -> dict[str, Any]:
        r = {"task": task, "metric": metric, "breakdown": breakdown, "category": None if group is None else str(group)}
        r.update({k: _num(rec.get(k)) for k in _STAT_KEYS})
        r["n"] = None if r["n"] is None else int(r["n"])
        r.update(judge_fields(rec))
        return r

    for name, rec in entry.items():
        if _is_metric_record(rec):
            rows.append(row(name, rec, None, None))
    for name, groups in entry.items():
        if not (name.startswith(BREAKDOWN_PREFIX) and isinstance(groups, dict)):
            continue
        breakdown = name[len(BREAKDOWN_PREFIX):]
        for group, metrics in groups.items():
            if not isinstance(metrics, dict):
                continue
            for metric, rec in metrics.items():
                if _is_metric_record(rec):
                    rows.append(row(metric, rec, breakdown, group))
    return rows


def load_runs(paths: Paths, skip_incomplete: bool | None = None) -> pd.DataFrame:
    """Metrics of runs as a tidy DataFrame: one row per run x task x metric (x breakdown group).

    Columns: ``run_id, model, model_fingerprint, task, metric, breakdown, category, value, stderr, ci_low,
    ci_high, n, status, created, finished, seed, path``, then ``JUDGE_COLUMNS`` (``ci_method``, ``judge``,
    ``corrected``, ``corrected_ci_low``, ``corrected_ci_high``, ``judge_sensitivity``, ``judge_specificity``). Overall metrics have ``breakdown`` and
    ``category`` None; ``by_category`` groups have ``breakdown == "category"`` and the category name in
    ``category`` (other ``by_<x>`` groups of a task, e.g. ``by_level``, the same way with ``breakdown == x``).

    A run without metrics.json (still running, or failed) is an error when named directly; found inside
    a parent folder it is skipped with a warning (``skip_incomplete`` forces either behaviour). A run whose
    samples.jsonl holds a sample twice is an error: its metrics counted that sample twice.
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    runs = find_run_dirs(items)
    direct = {Path(p).expanduser().resolve() for p in items}
    rows: list[dict[str, Any]] = []
    for rd in runs:
        info = rd.read_run()
        if not rd.metrics_file.is_file():
            skip = skip_incomplete if skip_incomplete is not None else rd.path.resolve() not in direct
            if skip:
                warnings.warn(f"{rd.path}: no {METRICS_FILE} (status {info.get('status')!r}); skipped", stacklevel=2)
                continue
        metrics = rd.read_metrics()
        if not isinstance(metrics, dict):
            raise UsageError(f"{rd.metrics_file}: expected a mapping of task -> metrics")
        rd.records()  # the samples these metrics count: a file holding a sample twice is refused (RunDir.records)
        base = {"run_id": info.get("run_id") or rd.path.name, "model": info.get("model"),
                "model_fingerprint": _fingerprint(info), "status": info.get("status"), "created": info.get("created"),
                "finished": info.get("finished"), "seed": info.get("seed"), "path": str(rd.path)}
        for task, entry in metrics.items():
            if isinstance(entry, dict):
                rows.extend({**base, **r} for r in metric_rows(task, entry))
    df = pd.DataFrame(rows, columns=RUN_COLUMNS + JUDGE_COLUMNS)
    df["n"] = df["n"].astype("Int64")
    for col in ("value", "stderr", "ci_low", "ci_high", "corrected", "corrected_ci_low", "corrected_ci_high",
                "judge_sensitivity", "judge_specificity"):
        df[col] = df[col].astype(float)
    return df


def _flatten_record(rec: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, val in rec.items():
        if key in ("judgments", "metrics", "meta"):
            continue
        row[key] = val
    row["prompt_text"] = prompt_text(rec.get("prompt") or "") if rec.get("prompt") is not None else None
    for name, j in (rec.get("judgments") or {}).items():
        j = j if isinstance(j, dict) else {}
        for field in ("label", "score", "error", "raw"):
            row[f"judge.{name}.{field}"] = j.get(field)
    for name, v in (rec.get("metrics") or {}).items():
        row[f"metric.{name}"] = _num(v) if not isinstance(v, (list, dict, str)) else v
    for name, v in (rec.get("meta") or {}).items():
        row[f"meta.{name}"] = v
    return row


def load_samples(paths: Paths, task: str | None = None) -> pd.DataFrame:
    """Samples of one or more runs: one row per run x sample, judgments and metrics flattened.

    Columns: ``run_id, model`` then the samples.jsonl fields (``task, sample_id, category, prompt,
    response, references, target, cached, latency_s``, ...), ``prompt_text`` (the last user turn), and
    for every judge ``judge.<name>.label / .score / .error / .raw``, every per-sample metric
    ``metric.<name>`` (float, NaN when not applicable) and every meta field ``meta.<key>``.
    ``task`` keeps only that task's samples. Paths are resolved as in ``load_runs``.
    """
    frames = []
    for rd in find_run_dirs(paths):
        info = rd.read_run()
        rows = [_flatten_record(r) for r in rd.records(task)]
        df = pd.DataFrame(rows)
        df.insert(0, "model", info.get("model"))
        df.insert(0, "run_id", info.get("run_id") or rd.path.name)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()
    for col in ("run_id", "model", "task", "sample_id", "category"):
        if col not in out.columns:
            out[col] = pd.Series(dtype=object)
    metric_cols = [c for c in out.columns if c.startswith("metric.")]
    for c in metric_cols:
        if out[c].map(lambda v: v is None or isinstance(v, (int, float))).all():
            out[c] = out[c].astype(float)
    return out


def per_sample_values(samples: pd.DataFrame, task: str, metric: str) -> dict[str, float | None]:
    """``{sample_id: value}`` of one per-sample metric of one task (None where not applicable)."""
    col = f"metric.{metric}"
    sub = samples[samples["task"] == task] if "task" in samples else samples.iloc[0:0]
    if col not in sub:
        return {}
    return {str(sid): (None if pd.isna(v) else float(v)) for sid, v in zip(sub["sample_id"], sub[col])}


#: Columns of ``load_compare``.
COMPARE_COLUMNS = ["compare_id", "judge", "task", "run", "opponent", "metric", "value", "ci_low", "ci_high", "n"]


def _compare_file(path: PathLike) -> Path:
    p = Path(path).expanduser()
    f = p / "compare.json" if p.is_dir() else p
    if not f.is_file():
        raise UsageError(f"{p}: no compare.json (give a folder written by alignbench compare, or its compare.json)")
    return f


def load_compare(path: PathLike) -> pd.DataFrame:
    """The results of ``alignbench compare`` as a tidy DataFrame: one row per scope x run (x opponent) x metric.

    ``task`` is None for the overall scope. Rows with an ``opponent`` are run-vs-opponent counts
    (``wins``, ``ties``, ``losses``) and ``win_rate`` with its CI; rows without are the run's ratings
    (``bt_rating`` with its bootstrap CI, ``bt_strength``, ``elo``); rows without a run are the judge's
    ``position_flip_share`` and the jury's ``fleiss_kappa``.
    """
    import json

    f = _compare_file(path)
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{f}: cannot read ({exc.__class__.__name__})") from None
    if not isinstance(info, dict) or "overall" not in info:
        raise UsageError(f"{f}: not a finished compare (status {info.get('status') if isinstance(info, dict) else None!r})")
    base = {"compare_id": info.get("compare_id"), "judge": (info.get("settings") or {}).get("judge")}
    rows: list[dict[str, Any]] = []

    def add(task: str | None, run: str | None, opponent: str | None, metric: str, value: Any, lo: Any = None, hi: Any = None,
            n: Any = None) -> None:
        rows.append({**base, "task": task, "run": run, "opponent": opponent, "metric": metric, "value": _num(value),
                     "ci_low": _num(lo), "ci_high": _num(hi), "n": None if n is None else int(n)})

    scopes = [(None, info["overall"])] + list((info.get("by_task") or {}).items())
    for task, sc in scopes:
        for p in sc.get("pairs") or []:
            for m in ("wins", "ties", "losses"):
                add(task, p["a"], p["b"], m, p[m], n=p["n"])
            add(task, p["a"], p["b"], "win_rate", p["win_rate"], p["ci_low"], p["ci_high"], p["n"])
        for run, r in (sc.get("bradley_terry") or {}).items():
            add(task, run, None, "bt_rating", r.get("rating"), r.get("ci_low"), r.get("ci_high"), sc.get("n"))
            add(task, run, None, "bt_strength", r.get("strength"), n=sc.get("n"))
        for run, v in (sc.get("elo") or {}).items():
            add(task, run, None, "elo", v, n=sc.get("n"))
        flips = sc.get("position_flips") or {}
        if flips.get("share") is not None:
            add(task, None, None, "position_flip_share", flips["share"], n=flips.get("verdicts"))
        agree = sc.get("agreement") or {}
        if agree.get("fleiss_kappa") is not None:
            add(task, None, None, "fleiss_kappa", agree["fleiss_kappa"], n=agree.get("n"))
    df = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    df["n"] = df["n"].astype("Int64")
    return df


__all__ = ["load_runs", "load_samples", "load_compare", "find_run_dirs", "metric_rows", "per_sample_values", "RUN_COLUMNS",
           "JUDGE_COLUMNS", "COMPARE_COLUMNS"]
