"""Agreement coefficients: Fleiss' kappa, Krippendorff's alpha, Cohen's kappa (single and pairwise).

The coefficients follow the reference implementations and are tested to equal them:
``statsmodels.stats.inter_rater.fleiss_kappa`` (method "fleiss"), ``krippendorff.alpha`` (nominal
and interval) and ``sklearn.metrics.cohen_kappa_score`` (unweighted). Degenerate inputs (every rating
the same, so chance agreement is 1) give NaN, as the reference implementations do.

An LLM jury's agreement lives in ``alignbench.stats.jury_agreement``, a judge's agreement with human labels
in ``alignbench.trust.judge_metrics``; their functions stay importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

Missing = None


def missing(x: Any) -> bool:
    """A missing rating: None or NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def ratings_table(ratings: Sequence[Sequence[Hashable]]) -> tuple[np.ndarray, list[Hashable]]:
    """items x raters labels -> (items x categories count table, categories in first-seen order)."""
    cats: list[Hashable] = []
    for row in ratings:
        for x in row:
            if not missing(x) and x not in cats:
                cats.append(x)
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(ratings), len(cats)))
    for i, row in enumerate(ratings):
        for x in row:
            if not missing(x):
                table[i, index[x]] += 1
    return table, cats


def fleiss_kappa(table: Any = None, *, ratings: Sequence[Sequence[Hashable]] | None = None) -> float:
    """Fleiss' kappa from an items x categories count table, or from ``ratings`` (items x raters labels).

    Every item must have the same number of ratings (at least 2).
    """
    if ratings is not None:
        table, _ = ratings_table(ratings)
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("fleiss_kappa needs a non-empty items x categories table")
    per_item = t.sum(axis=1)
    n = per_item.max()
    if not np.all(per_item == n) or n < 2:
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings for every item")
    p_cat = t.sum(axis=0) / t.sum()
    p_item = ((t * t).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_exp = p_item.mean(), float((p_cat * p_cat).sum())
    if p_exp == 1.0:
        return math.nan
    return float((p_bar - p_exp) / (1 - p_exp))


def krippendorff_alpha(reliability_data: Sequence[Sequence[Any]], level: str = "nominal") -> float:
    """Krippendorff's alpha from raters x units data (None/NaN = missing); ``level`` nominal or interval.

    Nominal values may be any hashable labels; interval values must be numbers.
    """
    if level not in ("nominal", "interval"):
        raise ValueError(f"level must be 'nominal' or 'interval', got {level!r}")
    data = [list(r) for r in reliability_data]
    if not data:
        raise ValueError("krippendorff_alpha needs at least one rater")
    n_units = len(data[0])
    if any(len(r) != n_units for r in data):
        raise ValueError("every rater must have a value (or None) for every unit")
    values: list[Any] = []
    for r in data:
        for x in r:
            if not missing(x) and x not in values:
                values.append(x)
    if level == "interval":
        values = sorted(float(v) for v in values)
    index = {v: i for i, v in enumerate(values)}
    k = len(values)
    o = np.zeros((k, k))
    for u in range(n_units):
        vals = [index[float(r[u]) if level == "interval" else r[u]] for r in data if not missing(r[u])]
        m = len(vals)
        if m < 2:
            continue
        for i in range(m):
            for j in range(m):
                if i != j:
                    o[vals[i], vals[j]] += 1.0 / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(k)
    else:
        v = np.asarray(values, dtype=float)
        delta = (v[:, None] - v[None, :]) ** 2
    d_e = float((np.outer(n_c, n_c) * delta).sum())
    if n <= 1 or d_e == 0.0:
        return math.nan
    return float(1.0 - (n - 1) * float((o * delta).sum()) / d_e)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Unweighted Cohen's kappa of two raters' labels on the same items."""
    if len(a) != len(b) or not a:
        raise ValueError("cohen_kappa needs two equally long, non-empty label lists")
    cats = list(dict.fromkeys(list(a) + list(b)))
    index = {c: i for i, c in enumerate(cats)}
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b):
        m[index[x], index[y]] += 1
    n = m.sum()
    p_o = np.trace(m) / n
    p_e = float((m.sum(axis=1) * m.sum(axis=0)).sum()) / (n * n)
    if p_e == 1.0:
        return math.nan
    return float((p_o - p_e) / (1 - p_e))


def pairwise_cohen_kappa(ratings_by_judge: dict[str, Sequence[Hashable]]) -> dict[str, float]:
    """Cohen's kappa of every pair of judges (key ``"a|b"``) over the items both rated (None = missing)."""
    out: dict[str, float] = {}
    for x, y in combinations(list(ratings_by_judge), 2):
        pairs = [(p, q) for p, q in zip(ratings_by_judge[x], ratings_by_judge[y]) if not missing(p) and not missing(q)]
        out[f"{x}|{y}"] = cohen_kappa([p for p, _ in pairs], [q for _, q in pairs]) if pairs else math.nan
    return out
