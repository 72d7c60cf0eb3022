"""The one paired comparison of two runs on the same samples: delta B - A, its CI and its test.

``alignbench gate`` and ``alignbench drift`` both call ``paired_delta``, so they print the same numbers
for the same two runs. Per-sample values of one metric in run A and run B are joined on sample id;
only samples with a value in both count.

- 0/1 metrics: McNemar's exact test (two-sided binomial test of the b01 discordant pairs among the
  b01 + b10 that changed; the same p as statsmodels' ``mcnemar(exact=True)``). delta = psi (2 pi - 1)
  with psi = (b01 + b10) / n the share that changed and pi = b01 / (b01 + b10) the share of those that
  went up. The CI combines the interval the test inverts, Clopper-Pearson for pi, with the Wilson
  interval of psi (each end of 2 pi - 1 times the psi end that widens it). The sign of an end depends
  on pi alone, so the CI excludes 0 exactly when p < 1 - confidence; psi's interval keeps an end
  from sitting on the point when every change went one way. Coverage by simulation is >= 97% for
  n = 30..500. With no discordant pair the CI is +-(upper Wilson end of psi = 0).
- Other metrics: a paired permutation test (random sign flips of the per-sample differences, or all
  2^n of them when that is no more than ``resamples``), and the CI that test inverts: every shift d0
  for which the test of mean(diff - d0) = 0 does not reject. Again the CI excludes 0 exactly when
  p < 1 - confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alignbench.stats.intervals import CONFIDENCE, is_binary, wilson_ci

PERMUTATIONS = 10000


@dataclass
class PairedDelta:
    """B minus A over paired samples."""

    metric: str
    n: int
    a: float | None
    b: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None  # McNemar exact (binary values) or paired sign-flip permutation test
    test: str | None
    b01: int = 0  # binary only: A=0 -> B=1
    b10: int = 0  # binary only: A=1 -> B=0
    ci_method: str | None = None  # the interval the test inverts: "mcnemar_exact_inverted" | "permutation_inverted"
    sd_a: float | None = None  # standard deviation of A's values (for the detectable-effect size of a gate)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_values(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys present (and not None) in both, with their values."""
    keys = [k for k in a if k in b and a[k] is not None and b[k] is not None]
    return keys, np.array([float(a[k]) for k in keys]), np.array([float(b[k]) for k in keys])  # type: ignore[arg-type]


def mcnemar_exact(b01: int, b10: int) -> float:
    """Two-sided exact McNemar test (binomial on the discordant pairs); equals statsmodels' exact=True."""
    from scipy.stats import binomtest

    n = b01 + b10
    return float(binomtest(min(b01, b10), n, 0.5).pvalue) if n else 1.0


def mcnemar_ci(b01: int, b10: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """CI of (b01 - b10) / n that inverts the exact McNemar test (see the module docstring)."""
    from scipy.stats import binomtest

    nd = b01 + b10
    psi_lo, psi_hi = wilson_ci(nd, n, confidence)
    if nd == 0:
        return -psi_hi, psi_hi
    ci = binomtest(b01, nd, 0.5).proportion_ci(confidence_level=confidence, method="exact")
    lo, hi = 2 * ci.low - 1, 2 * ci.high - 1
    return lo * (psi_hi if lo < 0 else psi_lo), hi * (psi_hi if hi > 0 else psi_lo)


class SignFlip:
    """The paired permutation test of mean(diff) = d0 for any shift d0, on one fixed set of sign vectors."""

    def __init__(self, diff: np.ndarray, seed: int = 0, resamples: int = PERMUTATIONS) -> None:
        n = len(diff)
        self.mean = float(diff.mean())
        self.exact = n <= 30 and 2**n <= resamples
        rng = np.random.default_rng(seed)
        ms, ss = [], []
        total = 2**n if self.exact else resamples
        for start in range(0, total, 2048):  # in blocks, so a large n does not hold every sign vector at once
            rows = min(2048, total - start)
            if self.exact:
                signs = 1.0 - 2.0 * ((np.arange(start, start + rows)[:, None] >> np.arange(n)[None, :]) & 1)
            else:
                signs = rng.choice([-1.0, 1.0], size=(rows, n))
            ms.append(signs @ diff / n)  # mean of the sign-flipped differences
            ss.append(signs.mean(axis=1))  # what a shift d0 contributes to each: -d0 * s
        self.m, self.s = np.concatenate(ms), np.concatenate(ss)

    def p(self, d0: float = 0.0) -> float:
        observed = abs(self.mean - d0)
        null = np.abs(self.m - d0 * self.s)
        hits = int(np.sum(null >= observed - 1e-12 * max(1.0, observed)))
        if self.exact:  # the identity is among the sign vectors
            return hits / len(self.m)
        return (hits + 1) / (len(self.m) + 1)

    def ci(self, confidence: float = CONFIDENCE, lo_edge: float = -1.0, hi_edge: float = 1.0) -> tuple[float, float]:
        """The shifts the test does not reject at 1 - confidence, found by bisection out from the mean
        (an edge is returned when the test cannot reject even there)."""
        alpha = 1 - confidence

        def bound(edge: float) -> float:
            if self.p(edge) > alpha:
                return edge
            inside, outside = self.mean, edge
            for _ in range(60):
                mid = (inside + outside) / 2
                if self.p(mid) > alpha:
                    inside = mid
                else:
                    outside = mid
                if abs(outside - inside) <= 1e-9 * max(1.0, abs(self.mean)):
                    break
            return self._snap(inside, outside, alpha)

        return bound(lo_edge), bound(hi_edge)


    def _snap(self, inside: float, outside: float, alpha: float) -> float:
        """The exact end of the accepted shifts: p(d0) only changes where |mean - d0| = |m - d0 s| for
        some sign vector, so the end is the accepted one of those points that lies farthest out."""
        with np.errstate(divide="ignore", invalid="ignore"):
            points = np.concatenate([(self.mean - self.m) / (1 - self.s), (self.mean + self.m) / (1 + self.s)])
        lo, hi = min(inside, outside), max(inside, outside)
        pad = 1e-6 * max(1.0, hi - lo, abs(self.mean))
        near = points[np.isfinite(points) & (points >= lo - pad) & (points <= hi + pad)]
        accepted = [float(c) for c in near if self.p(float(c)) > alpha]
        if not accepted:
            return inside
        return min(accepted) if outside < inside else max(accepted)


def sign_flip_p(diff: np.ndarray, seed: int = 0, resamples: int = PERMUTATIONS) -> float:
    """Two-sided paired permutation (sign-flip) test of mean(diff) == 0."""
    if len(diff) == 0 or np.allclose(diff, 0):
        return 1.0
    return SignFlip(diff, seed, resamples).p(0.0)


def paired_delta(metric: str, a: Mapping[str, float | None], b: Mapping[str, float | None], seed: int = 0,
                 resamples: int = PERMUTATIONS, confidence: float = CONFIDENCE) -> PairedDelta:
    """Delta (B - A), its CI and p over the samples with a value in both runs."""
    keys, va, vb = pair_values(a, b)
    n = len(keys)
    if n == 0:
        return PairedDelta(metric, 0, None, None, None, None, None, None, None)
    diff = vb - va
    delta = float(diff.mean())
    sd_a = float(va.std(ddof=1)) if n > 1 else None
    if is_binary(va) and is_binary(vb):
        b01, b10 = int(np.sum((va == 0) & (vb == 1))), int(np.sum((va == 1) & (vb == 0)))
        lo, hi = mcnemar_ci(b01, b10, n, confidence)
        return PairedDelta(metric, n, float(va.mean()), float(vb.mean()), delta, lo, hi, mcnemar_exact(b01, b10),
                           "mcnemar_exact", b01, b10, "mcnemar_exact_inverted", sd_a)
    if np.allclose(diff, 0):
        lo = hi = delta
        p = 1.0
    else:
        test = SignFlip(diff, seed, resamples)
        span = float(diff.max() - diff.min()) or abs(delta) or 1.0
        lo, hi = test.ci(confidence, float(diff.min()) - span, float(diff.max()) + span)
        p = test.p(0.0)
    return PairedDelta(metric, n, float(va.mean()), float(vb.mean()), delta, lo, hi, p, "sign_flip_permutation",
                       ci_method="permutation_inverted", sd_a=sd_a)


__all__ = ["PairedDelta", "paired_delta", "pair_values", "mcnemar_exact", "mcnemar_ci", "sign_flip_p", "SignFlip"]
