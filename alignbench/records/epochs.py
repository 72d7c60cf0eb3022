"""Repeated generations of each prompt (``--epochs N``) and clustered samples: how values are grouped.

With ``--epochs N`` every prompt of a generation task is answered N times, epoch e with seed
``--seed + e`` (so each epoch has its own generation-cache key); samples.jsonl keeps one record per
(sample, epoch) with an ``epoch`` field. A task's per-sample metrics then reduce per prompt with
``--reducer``:

- ``mean`` (default): every epoch's value counts; the metric is the mean over all of them and its CI
  clusters by prompt (the N answers to one prompt are not independent);
- ``any``: a 0/1 metric is 1 for a prompt when it is 1 in any epoch (e.g. harmful in any of N);
- ``at_least_K``: 1 when it is 1 in at least K epochs;
- ``best_of:JUDGE``: the epoch JUDGE scores highest (a reward model: best-of-N selection) gives the
  prompt's value, for every metric (epochs JUDGE did not score are not candidates; ties go to the
  earliest epoch).

``any`` and ``at_least_K`` apply to 0/1 metrics; other metrics reduce by ``mean``. metrics.json names
the reducer and the epochs of each metric it applied to (``"reducer"``, ``"epochs"``).

A task's ``cluster:`` field names a sample field or meta column whose value groups samples that are
not independent (the variants of one base prompt); records carry it as ``cluster`` and intervals
resample clusters (``alignbench.stats.intervals``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from typing import Any

from alignbench.errors import UsageError

REDUCERS = ("mean", "any", "at_least_K", "best_of:JUDGE")
BEST_OF = "best_of:"


def parse_reducer(text: str) -> str:
    """``mean``, ``any``, ``at_least_K`` (K a positive integer) or ``best_of:JUDGE``; anything else is a usage error."""
    if text in ("mean", "any") or re.fullmatch(r"at_least_[1-9][0-9]*", text or ""):
        return text
    if (text or "").startswith(BEST_OF) and text[len(BEST_OF):].strip():
        return BEST_OF + text[len(BEST_OF):].strip()
    raise UsageError(f"--reducer {text!r}: use mean, any, at_least_K (e.g. at_least_2) or best_of:JUDGE (e.g. best_of:skywork_reward)")


def best_of_judge(reducer: str) -> str | None:
    """The judge of a ``best_of:JUDGE`` reducer, else None."""
    return reducer[len(BEST_OF):] if reducer.startswith(BEST_OF) else None


def judge_score(record: dict[str, Any], judge: str) -> float | None:
    jd = (record.get("judgments") or {}).get(judge) or {}
    return None if jd.get("error") else _number(jd.get("score"))


def best_epoch_record(records: list[dict[str, Any]], judge: str) -> dict[str, Any] | None:
    """The record (epoch) ``judge`` scored highest; the earliest on a tie; None when it scored none."""
    scored = [(s, -record_epoch(r), i) for i, r in enumerate(records) if (s := judge_score(r, judge)) is not None]
    return records[max(scored)[2]] if scored else None


def epoch_seed(seed: int, epoch: int) -> int:
    """The generation seed of one epoch (epoch 0 keeps --seed, so one-epoch runs are unchanged)."""
    return seed + epoch


def task_epochs(cfg: Any, epochs: int, temperature: float | None = None, samples: list[Any] | None = None) -> int:
    """The epochs a task runs: 1 for multiple choice (log-likelihoods do not vary), else ``epochs``.

    Given the run's ``temperature`` override and the samples, it also checks that repeated epochs
    can differ (sampling at temperature > 0) and that every sample has the task's cluster field.
    """
    n = 1 if cfg.output_type == "multiple_choice" else max(int(epochs), 1)
    if samples is None:
        return n
    if n > 1:
        temp = cfg.generation.temperature if temperature is None else temperature
        per_sample = [((s.meta or {}).get("generation") or {}).get("temperature", temp) for s in samples
                      if isinstance((s.meta or {}).get("generation") or {}, dict)]
        if not any(isinstance(t, (int, float)) and t > 0 for t in per_sample or [temp]):
            raise UsageError(f"--epochs {n}: task {cfg.name!r} decodes at temperature 0, so every epoch would give the "
                             "same response; pass --temperature T > 0")
    if cfg.cluster:
        for s in samples:
            cluster_of(cfg, s)
    return n


def cluster_of(cfg: Any, sample: Any) -> Hashable:
    """The value of the task's ``cluster`` field for one sample (a sample field or a meta column)."""
    name = cfg.cluster
    value = getattr(sample, name, None) if name in ("id", "category", "target") else (sample.meta or {}).get(name)
    if value is None or isinstance(value, (dict, list)):
        raise UsageError(f"{cfg.source or cfg.name}: field 'cluster': sample {sample.id!r} has no value for {name!r} "
                         "(name a sample field or a column listed in dataset.meta_columns)")
    return str(value)


def record_epoch(record: dict[str, Any]) -> int:
    e = record.get("epoch")
    return int(e) if isinstance(e, int) and not isinstance(e, bool) else 0


def done_keys(records: Iterable[dict[str, Any]]) -> set[tuple[str, str, int]]:
    """(task, sample_id, epoch) of every finished record."""
    return {(str(r.get("task")), str(r.get("sample_id")), record_epoch(r)) for r in records}


def reduce_epochs(values: list[float], reducer: str) -> float:
    """One prompt's value from its epochs' 0/1 values."""
    if reducer == "any":
        return 1.0 if any(v == 1.0 for v in values) else 0.0
    if reducer.startswith("at_least_"):
        return 1.0 if sum(v == 1.0 for v in values) >= int(reducer.rsplit("_", 1)[1]) else 0.0
    return sum(values) / len(values)


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        return None
    return float(v)


def metric_series(records: list[dict[str, Any]], metric: str, reducer: str = "mean"
                  ) -> tuple[list[float | None], list[Hashable] | None, dict[str, Any]]:
    """The values of one metric as the statistics see them, their clusters (or None) and what to
    record about the reduction (``{"epochs": N, "reducer": NAME}`` when there are epochs).

    Records are taken in the order given (the caller's canonical order).
    """
    by_sample: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_sample.setdefault(str(r.get("sample_id")), []).append(r)
    clustered = any("cluster" in r for r in records)
    epochs = max((len(v) for v in by_sample.values()), default=0)
    if epochs <= 1:
        values = [_number((r.get("metrics") or {}).get(metric)) for r in records]
        return values, ([r.get("cluster") for r in records] if clustered else None), {}
    judge = best_of_judge(reducer)
    if judge is not None:
        best = [best_epoch_record(recs, judge) for recs in by_sample.values()]
        values_b = [None if b is None else _number((b.get("metrics") or {}).get(metric)) for b in best]
        return values_b, ([recs[0].get("cluster") for recs in by_sample.values()] if clustered else None), \
            {"epochs": epochs, "reducer": reducer}
    per = {sid: [x for x in (_number((r.get("metrics") or {}).get(metric)) for r in recs) if x is not None]
           for sid, recs in by_sample.items()}
    binary = all(x in (0.0, 1.0) for xs in per.values() for x in xs)
    if reducer == "mean" or not binary:
        values: list[float | None] = []
        clusters: list[Hashable] = []
        for sid, recs in by_sample.items():
            for r in recs:
                values.append(_number((r.get("metrics") or {}).get(metric)))
                clusters.append(r.get("cluster") if clustered else sid)  # a task's own clusters already hold the prompt
        return values, clusters, {"epochs": epochs, "reducer": "mean"}
    reduced = [reduce_epochs(per[sid], reducer) if per[sid] else None for sid in by_sample]
    return reduced, ([recs[0].get("cluster") for recs in by_sample.values()] if clustered else None), \
        {"epochs": epochs, "reducer": reducer}


def per_sample(records: list[dict[str, Any]], metric: str, reducer: str = "mean") -> dict[str, float | None]:
    """``{sample_id: value}`` with each prompt's epochs reduced (for paired comparisons of two runs)."""
    judge = best_of_judge(reducer)
    if judge is not None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            groups.setdefault(str(r.get("sample_id")), []).append(r)
        picked = {sid: best_epoch_record(recs, judge) for sid, recs in groups.items()}
        return {sid: (None if b is None else _number((b.get("metrics") or {}).get(metric))) for sid, b in picked.items()}
    by_sample: dict[str, list[float]] = {}
    for r in records:
        vals = by_sample.setdefault(str(r.get("sample_id")), [])
        v = _number((r.get("metrics") or {}).get(metric))
        if v is not None:
            vals.append(v)
    binary = all(x in (0.0, 1.0) for xs in by_sample.values() for x in xs)
    red = reducer if binary else "mean"
    return {sid: (reduce_epochs(xs, red) if xs else None) for sid, xs in by_sample.items()}


__all__ = ["REDUCERS", "parse_reducer", "best_of_judge", "best_epoch_record", "judge_score", "epoch_seed", "task_epochs", "cluster_of", "record_epoch", "done_keys", "reduce_epochs", "metric_series", "per_sample"]
