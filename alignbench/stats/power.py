"""How small a change an eval set can see, and a false-discovery-rate correction for many checks.

- ``detectable_effect``: the standardised effect (Cohen's h for proportions, d for means) that a
  two-sided z-test detects with the given power: the root of
  ``power = Phi(es * sqrt(m) - z) + Phi(-es * sqrt(m) - z)``, z = Phi^-1(1 - alpha / 2), with
  m = n / 2 for two groups of n (the same equation statsmodels' ``NormalIndPower`` solves).
- ``minimum_detectable_change``: that effect turned back into the metric's own units: for a
  proportion p0, the p1 with 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) = h; for a mean, d * sd. It is the
  smallest increase (or decrease) between two runs of n samples each that the gate could detect at
  that alpha with that power; ``None`` when none is possible (p0 already at 1, or no spread).
- ``benjamini_hochberg``: step-up adjusted p-values (statsmodels' ``multipletests(method="fdr_bh")``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

POWER = 0.8


def detectable_effect(n: float, alpha: float = 0.05, power: float = POWER, groups: int = 2) -> float | None:
    """Smallest standardised effect a two-sided z-test on ``groups`` (1 or 2) groups of n detects."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    if n <= 0:
        return None
    m = n / 2 if groups == 2 else n
    z = norm.isf(alpha / 2)

    def gap(es: float) -> float:
        d = es * math.sqrt(m)
        return float(norm.sf(z - d) + norm.cdf(-z - d)) - power

    if gap(0.0) >= 0:
        return 0.0
    return float(brentq(gap, 0.0, 100.0, xtol=1e-12))


def minimum_detectable_change(n: int, alpha: float = 0.05, power: float = POWER, *, p0: float | None = None,
                              sd: float | None = None, direction: int = 1) -> float | None:
    """Smallest change (positive number, in the metric's units) of a proportion at ``p0`` or of a mean
    with spread ``sd`` that two runs of ``n`` samples detect; ``direction`` -1 asks for a decrease."""
    es = detectable_effect(n, alpha, power)
    if es is None:
        return None
    if p0 is not None:
        phi = 2 * math.asin(math.sqrt(min(max(p0, 0.0), 1.0))) + direction * es
        if not 0.0 <= phi <= math.pi:
            return None  # no proportion is that far from p0: this n cannot detect any change in that direction
        return abs(math.sin(phi / 2) ** 2 - p0)
    if sd is None or sd <= 0 or math.isnan(sd):
        return None
    return es * sd


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, pvalues[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted


__all__ = ["POWER", "detectable_effect", "minimum_detectable_change", "benjamini_hochberg"]
