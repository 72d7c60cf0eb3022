"""Metric statistics: the one place where alignbench computes a value's uncertainty.

- A proportion (every value 0 or 1) gets a Wilson score interval, which is never zero-width, also
  at 0% and 100% (a reviewer must not read ``1.000 [1.000, 1.000] n=10`` as certainty).
- Any other metric gets a seeded percentile bootstrap CI of the mean.
- With clusters (values that are not independent: the epochs of one prompt, the perturbations of
  one base prompt), the standard error is the cluster-robust one and the bootstrap resamples whole
  clusters; a clustered proportion's Wilson interval uses the effective sample size n / design
  effect (Kish's design effect, as in Korn & Graubard 1998): p(1-p) / var, with var the
  cluster-robust variance of the mean before its G/(G-1) factor, so clusters whose values all agree
  count once each; at 0% or 100% each cluster counts once.

``bootstrap_ci`` and ``percentile`` also serve statistics that are not plain means (pooled ratios,
stratified scores): the caller resamples indices with ``resample_indices`` and summarises with
``percentile``, so every bootstrap in the code base draws and cuts the same way.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def metric_value(value: float, stderr: float | None, ci_low: float | None, ci_high: float | None, n: int,
                 **extra: Any) -> dict[str, Any]:
    """The metrics.json record of one metric (DESIGN §4); ``extra`` adds keys such as ``n_clusters``."""

    def clean(x: float | None) -> float | None:
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    out = {"value": clean(value), "stderr": clean(stderr), "ci_low": clean(ci_low), "ci_high": clean(ci_high), "n": int(n)}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def z_value(confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile of a confidence level (1.959964 for 95%)."""
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - confidence) / 2))


def wilson_ci(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion; ``n`` may be an effective (non-integer) sample size."""
    if n <= 0:
        return (math.nan, math.nan)
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends at 0% and 100% (no 0.9999999999999999)
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return (lo, hi)


def is_binary(values: np.ndarray) -> bool:
    """True when every value is 0 or 1: the metric is a proportion."""
    return len(values) > 0 and bool(np.all((values == 0.0) | (values == 1.0)))


def percentile(boots: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    alpha = (1 - confidence) / 2
    return float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))


def resample_indices(n: int, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """``resamples`` x ``n`` indices drawn with replacement (the bootstrap's draws), from a generator
    seeded with ``seed`` or from ``rng`` (a stratified bootstrap draws its strata from one generator)."""
    return (rng if rng is not None else np.random.default_rng(seed)).integers(0, n, size=(resamples, n))


def _cluster_codes(clusters: Sequence[Hashable]) -> np.ndarray:
    index: dict[Hashable, int] = {}
    return np.array([index.setdefault(c, len(index)) for c in clusters], dtype=int)


def cluster_stderr(values: np.ndarray, codes: np.ndarray) -> float | None:
    """Cluster-robust standard error of the mean: sqrt(G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2) / n.

    The same number as statsmodels' OLS on a constant with ``cov_type="cluster"``.
    """
    n, g = len(values), int(codes.max()) + 1 if len(codes) else 0
    if g < 2:
        return None
    resid = np.bincount(codes, weights=values - values.mean(), minlength=g)
    return math.sqrt(g / (g - 1) * float(np.sum(resid**2))) / n


def bootstrap_ci(values: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
                 codes: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; with cluster ``codes``, whole clusters are resampled."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    if n == 1 or np.all(values == values[0]):
        return (float(values.mean()),) * 2  # type: ignore[return-value]
    if codes is None:
        means = values[resample_indices(n, seed, resamples)].mean(axis=1)
    else:
        g = int(codes.max()) + 1
        sums, sizes = np.bincount(codes, weights=values, minlength=g), np.bincount(codes, minlength=g).astype(float)
        idx = resample_indices(g, seed, resamples)
        means = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    return percentile(means, confidence)


def proportion_ci(values: np.ndarray, codes: np.ndarray | None = None, confidence: float = CONFIDENCE) -> tuple[float, float, float | None]:
    """Wilson interval of a 0/1 mean and the effective n it used (None when the values are independent)."""
    n = len(values)
    p = float(values.mean())
    if codes is None:
        return (*wilson_ci(p * n, n, confidence), None)
    g = int(codes.max()) + 1
    se = cluster_stderr(values, codes)
    if se is None or se == 0 or p in (0.0, 1.0):
        n_eff = float(g)  # no information on within-cluster agreement: each cluster counts once
    else:
        var = se**2 * (g - 1) / g  # without the small-sample factor: perfectly agreeing clusters give n_eff = g
        n_eff = min(float(n), p * (1 - p) / var)  # n / design effect, never above n
    return (*wilson_ci(p * n_eff, n_eff, confidence), n_eff)


def _clean(values: Sequence[float | None], clusters: Sequence[Hashable] | None) -> tuple[np.ndarray, list[Hashable] | None]:
    keep = [i for i, v in enumerate(values) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    arr = np.asarray([float(values[i]) for i in keep], dtype=float)  # type: ignore[arg-type]
    return arr, (None if clusters is None else [clusters[i] for i in keep])


def summarize(values: Sequence[float | None], seed: int = 0, clusters: Sequence[Hashable] | None = None,
              confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean, standard error, CI and n of the non-missing values (see the module docstring).

    ``clusters``, aligned with ``values``, names the cluster of each value; the record then also
    holds ``n_clusters`` (and, for a proportion, the effective ``n_eff`` its interval used).
    """
    arr, cl = _clean(values, clusters)
    n = len(arr)
    if n == 0:
        return metric_value(math.nan, None, None, None, 0)
    codes = _cluster_codes(cl) if cl is not None else None
    if codes is not None and int(codes.max()) + 1 == n:
        codes = None  # every value its own cluster: nothing to account for
    mean = float(arr.mean())
    if codes is None:
        stderr = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    else:
        stderr = cluster_stderr(arr, codes)
    n_clusters = None if codes is None else int(codes.max()) + 1
    if is_binary(arr):
        lo, hi, n_eff = proportion_ci(arr, codes, confidence)
        return metric_value(mean, stderr, lo, hi, n, n_clusters=n_clusters,
                            n_eff=None if n_eff is None else round(n_eff, 3), ci_method="wilson")
    lo, hi = bootstrap_ci(arr, seed=seed, codes=codes, confidence=confidence)
    return metric_value(mean, stderr, lo, hi, n, n_clusters=n_clusters)


__all__ = ["BOOTSTRAP_RESAMPLES", "CONFIDENCE", "metric_value", "summarize", "wilson_ci", "bootstrap_ci", "cluster_stderr",
           "proportion_ci", "percentile", "resample_indices", "is_binary", "z_value"]
