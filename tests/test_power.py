"""Detectable effects and the false-discovery-rate correction against statsmodels."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from alignbench.stats.power import benjamini_hochberg, detectable_effect, minimum_detectable_change


@pytest.mark.parametrize("n, alpha", [(10, 0.05), (50, 0.05), (200, 0.01), (1000, 0.1)])
def test_detectable_effect_equals_statsmodels(n: int, alpha: float) -> None:
    ref = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=0.8, ratio=1.0, alternative="two-sided")
    es = detectable_effect(n, alpha)
    assert es == pytest.approx(ref, rel=1e-4)  # statsmodels' solver stops at ~1e-6
    assert NormalIndPower().power(effect_size=es, nobs1=n, alpha=alpha, ratio=1.0) == pytest.approx(0.8, abs=1e-9)
    one = detectable_effect(n, alpha, groups=1)
    assert NormalIndPower().power(effect_size=one, nobs1=n, alpha=alpha, ratio=0.0) == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("p0, n", [(0.02, 100), (0.1, 50), (0.5, 400), (0.0, 30)])
def test_mde_of_a_proportion_has_80_percent_power(p0: float, n: int) -> None:
    mde = minimum_detectable_change(n, 0.05, p0=p0)
    assert mde is not None and mde > 0
    h = proportion_effectsize(p0 + mde, p0)  # Cohen's h of the increase, statsmodels' way
    power = NormalIndPower().power(effect_size=h, nobs1=n, alpha=0.05, ratio=1.0)
    assert power == pytest.approx(0.8, abs=1e-6)


def test_mde_hand_values() -> None:
    # 50 vs 50 samples at 5%: h = (1.95996 + 0.84162) * sqrt(2 / 50) ~= 0.56 -> 5% can only be told from ~20.8%
    h = (1.959964 + 0.841621) * math.sqrt(2 / 50)
    p1 = math.sin(math.asin(math.sqrt(0.05)) + h / 2) ** 2
    assert minimum_detectable_change(50, 0.05, p0=0.05) == pytest.approx(p1 - 0.05, abs=2e-3)
    assert minimum_detectable_change(50, p0=1.0) is None  # nothing above 100%
    assert minimum_detectable_change(50, p0=0.0, direction=-1) is None
    assert minimum_detectable_change(100, sd=0.3) == pytest.approx(detectable_effect(100) * 0.3)
    assert minimum_detectable_change(100, sd=0.0) is None


def test_benjamini_hochberg_equals_statsmodels() -> None:
    ps = [0.001, 0.04, 0.03, 0.2, 0.011, 0.9, 0.04]
    assert benjamini_hochberg(ps) == pytest.approx(list(multipletests(ps, method="fdr_bh")[1]))
    assert benjamini_hochberg([0.5]) == [0.5]
