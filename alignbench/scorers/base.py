"""The scorer interface and the default aggregation (mean, stderr, CI, by category; epochs and clusters)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from alignbench.errors import UsageError
from alignbench.records.accounting import judge_error_counts, truncation_rate
from alignbench.records.epochs import metric_series, record_epoch
from alignbench.registry import scorers
from alignbench.stats.intervals import summarize
from alignbench.trust.cards import annotate
from alignbench.types import Sample

Record = dict[str, Any]  # one samples.jsonl line


class Scorer:
    """Per-sample metrics from one record; ``None`` means "not applicable to this sample".

    ``required_judges`` are run on every sample of the task in addition to the task's own judges.
    ``aggregate`` may add task-level metrics that are not means of per-sample values
    (correlations, agreement coefficients); it returns metrics.json records.
    """

    name: ClassVar[str] = "judge_scores"

    def __init__(self) -> None:
        """Subclasses take their ``scorer_args`` as explicit keyword arguments: an unknown key is an error."""

    def required_judges(self) -> list[str]:
        return []

    def check_judges(self, judges: dict[str, Any]) -> None:
        """Called with the task's built judges (name -> Judge) before the run; UsageError if one cannot serve."""

    def notice(self) -> str | None:
        """One line for stderr before the run (e.g. a metric that will not be reported, and how to get it)."""
        return None

    def metric_judges(self) -> dict[str, str]:
        """Metric name -> the judge that decides it; metrics.json records it as the metric's ``"judge"``."""
        return {}

    def score(self, sample: Sample, record: Record) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, j in (record.get("judgments") or {}).items():
            if j.get("error") is None and isinstance(j.get("score"), (int, float)):
                out[name] = float(j["score"])
        return out

    def aggregate(self, records: list[Record], seed: int = 0) -> dict[str, dict[str, Any]]:
        return {}

    def decided_by(self) -> dict[str, tuple[str, bool]]:
        """Metrics that are shares of one judge's decisions: ``{metric: (judge name, positive)}``, positive
        True for the share of the judge's positive class (refused, harmful), False for its complement.
        Such metrics name their judge in metrics.json and, where it has a card, carry its validity and
        the error-corrected rate (``alignbench.trust.cards``)."""
        return {}


scorers.register("judge_scores")(Scorer)


def build_scorer(name: str | None, args: dict[str, Any], source: str) -> Scorer:
    """The task's scorer built from ``scorer``/``scorer_args``; bad arguments are a usage error naming the YAML."""
    cls = scorers.get(name or "judge_scores")
    try:
        scorer = cls(**args)
        judges = list(scorer.required_judges())
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{source}: field 'scorer_args': {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    bad = [j for j in judges if not isinstance(j, str) or not j]
    if bad:
        raise UsageError(f"{source}: field 'scorer_args': judge name(s) {bad!r} must be non-empty strings")
    return scorer


def _natural_key(sample_id: Any) -> list[tuple[int, Any]]:
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", str(sample_id)) if t]


def canonical_order(records: list[Record]) -> list[Record]:
    """Records sorted by (task, sample id, digits compared as numbers).

    Bootstrap CIs depend on the order of the values, so every place that aggregates (the eval loop,
    a resumed run, ``merge`` of shards) uses this one order: equal samples give equal metrics.
    """
    return sorted(records, key=lambda r: (str(r.get("task") or ""), _natural_key(r.get("sample_id")), record_epoch(r)))


def summarize_metric(records: list[Record], metric: str, reducer: str = "mean", seed: int = 0) -> dict[str, Any]:
    """One metric's metrics.json record: epochs reduced and clusters accounted for (``alignbench.records.epochs``)."""
    values, clusters, info = metric_series(records, metric, reducer)
    return {**summarize(values, seed=seed, clusters=clusters), **info}


def aggregate_records(records: list[Record], scorer: Scorer, seed: int = 0, reducer: str = "mean") -> dict[str, Any]:
    """metrics.json entry of one task: each per-sample metric summarised, overall and by category.

    Records are taken in ``canonical_order``, whatever order they were written in; a prompt's
    epochs reduce with ``reducer``.
    """
    records = canonical_order(records)
    names: list[str] = []
    for r in records:
        for k in r.get("metrics") or {}:
            if k not in names:
                names.append(k)
    out: dict[str, Any] = {}
    for m in names:
        out[m] = summarize_metric(records, m, reducer, seed)
    out.update(scorer.aggregate(records, seed=seed))
    cats = sorted({r.get("category") for r in records if r.get("category") is not None})
    by_cat: dict[str, Any] = {}
    for c in cats:
        sub = [r for r in records if r.get("category") == c]
        by_cat[c] = {m: summarize_metric(sub, m, reducer, seed) for m in names}
        by_cat[c] = {m: v for m, v in by_cat[c].items() if v["n"] > 0}
    judges = scorer.metric_judges()
    for block in [out, *by_cat.values()]:
        for m, rec in block.items():
            if m in judges and isinstance(rec, dict):
                rec["judge"] = judges[m]
    out["by_category"] = by_cat
    return annotate(out, scorer.decided_by(), seed=seed)


def task_metrics(records: list[Record], scorer: Scorer, seed: int = 0, reducer: str = "mean"
                 ) -> tuple[dict[str, Any], dict[str, int]]:
    """A task's metrics.json entry as a run writes it (``aggregate_records`` plus ``truncation_rate``) and its
    failed judgments per judge; eval and merge both call it, so a merged run equals the unsharded one."""
    metrics = aggregate_records(records, scorer, seed=seed, reducer=reducer)
    cut = truncation_rate(records, seed=seed)
    if cut is not None:
        metrics["truncation_rate"] = cut
    return metrics, judge_error_counts(records)
