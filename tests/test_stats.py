"""Intervals and paired comparisons against independent computations (statsmodels, scipy, hand arithmetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from alignbench.stats.intervals import bootstrap_ci, cluster_stderr, summarize, wilson_ci
from alignbench.stats.paired import SignFlip, paired_delta


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (1, 1), (3, 7), (0, 1), (37, 120), (499, 500)])
def test_wilson_equals_statsmodels(k: int, n: int) -> None:
    lo, hi = wilson_ci(k, n)
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (lo, hi) == pytest.approx(ref, abs=1e-12)
    assert hi - lo > 0  # never zero-width, also at 0% and 100%


def test_summarize_gives_proportions_wilson_and_others_the_bootstrap() -> None:
    ones = summarize([1.0] * 10)
    assert ones["value"] == 1.0 and ones["n"] == 10 and ones["ci_method"] == "wilson"
    assert (ones["ci_low"], ones["ci_high"]) == pytest.approx(proportion_confint(10, 10, method="wilson"))
    assert ones["ci_low"] == pytest.approx(0.7225, abs=1e-4)  # 1.000 [0.722, 1.000] n=10, not [1.000, 1.000]
    one = summarize([0.0, None])  # n=1 per category still gets an interval
    assert one["n"] == 1 and one["ci_high"] == pytest.approx(proportion_confint(0, 1, method="wilson")[1])
    scores = [0.2, 0.9, 0.4, 0.4, 0.7]
    s = summarize(scores, seed=3)
    # the bootstrap by hand: 1000 draws of 5 indices from default_rng(3), 2.5% / 97.5% quantiles of the means
    means = np.array(scores)[np.random.default_rng(3).integers(0, 5, size=(1000, 5))].mean(axis=1)
    assert "ci_method" not in s
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((np.quantile(means, 0.025), np.quantile(means, 0.975)), rel=1e-12)
    assert s["stderr"] == pytest.approx(np.std(scores, ddof=1) / math.sqrt(5))


def test_cluster_stderr_equals_statsmodels_cluster_robust_ols() -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), rng.integers(1, 6, size=12))
    y = (rng.random(len(groups)) < 0.3 + 0.4 * (groups % 2)).astype(float)
    fit = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert cluster_stderr(y, groups) == pytest.approx(float(fit.bse[0]), rel=1e-10)
    s = summarize(list(y), clusters=list(groups))
    assert s["stderr"] == pytest.approx(float(fit.bse[0]), rel=1e-10) and s["n_clusters"] == 12
    # Wilson on the effective n = p(1-p)/var (n / design effect), var without the G/(G-1) factor
    p, g = y.mean(), 12
    n_eff = min(len(y), p * (1 - p) / (fit.bse[0] ** 2 * (g - 1) / g))
    assert s["n_eff"] == pytest.approx(n_eff, abs=1e-3)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(wilson_ci(p * n_eff, n_eff), abs=1e-9)


def test_perfectly_correlated_clusters_count_once() -> None:
    """Each prompt answered the same way 5 times: the interval is that of 8 prompts, not of 40 answers."""
    per_prompt = [1, 0, 1, 1, 0, 1, 1, 1]
    values = [float(v) for v in per_prompt for _ in range(5)]
    clusters = [i for i in range(8) for _ in range(5)]
    s = summarize(values, clusters=clusters)
    assert s["n"] == 40 and s["n_eff"] == pytest.approx(8.0)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx(proportion_confint(6, 8, method="wilson"), abs=1e-9)
    naive = summarize(values)
    assert naive["ci_high"] - naive["ci_low"] < s["ci_high"] - s["ci_low"]
    all_one = summarize([1.0] * 40, clusters=clusters)  # 100%: each cluster once
    assert (all_one["ci_low"], all_one["ci_high"]) == pytest.approx(proportion_confint(8, 8, method="wilson"))


def test_cluster_bootstrap_resamples_clusters() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, size=10)
    values = np.repeat(centres, 6) + rng.normal(0, 0.05, size=60)
    codes = np.repeat(np.arange(10), 6)
    lo, hi = bootstrap_ci(values, seed=0, codes=codes)
    # hand arithmetic: the same draws of cluster indices, mean of the drawn clusters' values
    idx = np.random.default_rng(0).integers(0, 10, size=(1000, 10))
    sums = np.array([values[codes == c].sum() for c in range(10)])
    boots = sums[idx].sum(axis=1) / (6 * 10)
    assert (lo, hi) == pytest.approx((np.quantile(boots, 0.025), np.quantile(boots, 0.975)))
    naive = bootstrap_ci(values, seed=0)
    assert hi - lo > 2 * (naive[1] - naive[0])  # 6 near-copies per cluster: the naive CI is far too narrow
    # singleton clusters are the plain bootstrap
    assert summarize(list(values), seed=4, clusters=list(range(60))) == summarize(list(values), seed=4)


def test_bootstrap_ci_is_scipys_percentile_bootstrap_of_the_mean() -> None:
    """Same draws recomputed by hand give the same ends; scipy.stats.bootstrap (percentile method, its own
    draws) agrees within Monte Carlo error, on skewed data where the basic or BCa interval would not."""
    from scipy.stats import bootstrap

    values = np.random.default_rng(11).exponential(1.0, size=40) ** 2
    lo, hi = bootstrap_ci(values, seed=7)
    means = values[np.random.default_rng(7).integers(0, 40, size=(1000, 40))].mean(axis=1)
    assert (lo, hi) == pytest.approx((np.quantile(means, 0.025), np.quantile(means, 0.975)), rel=1e-12)
    ref = bootstrap((values,), np.mean, n_resamples=20000, method="percentile", random_state=0).confidence_interval
    basic = bootstrap((values,), np.mean, n_resamples=20000, method="basic", random_state=0).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.06) and hi == pytest.approx(ref.high, abs=0.06)
    assert abs(hi - basic.high) > 0.15  # the test can tell the percentile interval from the basic one


def test_ratio_and_stratified_bootstraps_recomputed_with_the_same_generator() -> None:
    """token shift's pooled ratio resamples samples (numerator and denominator together); the honesty
    score resamples prudence and over-conservativeness separately, prudence first, from one generator."""
    from alignbench.drift.token_shift import _pooled
    from alignbench.scorers.honesty import honesty_score

    num, den = np.array([3.0, 0.0, 5.0, 1.0, 2.0, 4.0]), np.array([10.0, 4.0, 12.0, 3.0, 9.0, 8.0])
    r = _pooled(num, den, seed=2)
    idx = np.random.default_rng(2).integers(0, 6, size=(1000, 6))
    ratios = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    assert r["value"] == pytest.approx(15 / 46) and r["n"] == 46
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((np.quantile(ratios, 0.025), np.quantile(ratios, 0.975)), rel=1e-12)
    pru, over = np.array([1.0, 0.0, 1.0, 1.0, 0.5]), np.array([0.0, 1.0, 0.0, 0.0])
    h = honesty_score(list(pru), list(over), seed=9)
    rng = np.random.default_rng(9)
    bp = pru[rng.integers(0, 5, size=(1000, 5))].mean(axis=1)
    bo = over[rng.integers(0, 4, size=(1000, 4))].mean(axis=1)
    boot = (1 - bo + bp) / 2
    assert h["value"] == pytest.approx((1 - 0.25 + 0.7) / 2)
    assert (h["ci_low"], h["ci_high"]) == pytest.approx((np.quantile(boot, 0.025), np.quantile(boot, 0.975)), abs=1e-15)


def test_sign_flip_p_against_exact_enumeration() -> None:
    """Small n: all 2^n sign vectors (the identity included). n = 14 (2^14 > 10000 resamples): random
    flips, within Monte Carlo error of the enumeration and never 0 ((hits + 1) / (resamples + 1))."""
    import itertools

    from alignbench.stats.paired import sign_flip_p

    def exact(diff: np.ndarray) -> float:
        obs = abs(diff.mean())
        null = [abs(np.mean(np.array(sv) * diff)) for sv in itertools.product((1.0, -1.0), repeat=len(diff))]
        return float(np.mean([x >= obs - 1e-12 for x in null]))

    small = np.array([0.5, 0.25, -0.1, 0.4, 0.3, 0.2])
    # by hand: |mean| = 1.55/6; only the flips of -0.1 (and none) keep the sum >= 1.55 in size, on either side: 4/64
    assert exact(small) == pytest.approx(4 / 64)
    assert sign_flip_p(small) == pytest.approx(4 / 64)
    assert sign_flip_p(np.array([0.2, -0.2, 0.1, -0.1])) == 1.0
    larger = np.random.default_rng(5).normal(0.15, 0.5, size=14)
    p_exact = exact(larger)
    assert 0.01 < p_exact < 0.5
    assert sign_flip_p(larger, seed=1) == pytest.approx(p_exact, abs=0.015)
    assert 0 < sign_flip_p(np.full(14, 0.3)) < 0.001  # only the all-same flips reach it; never 0


# paired ----------------------------------------------------------------------------------------------
def _pairs(cells: dict[tuple[int, int], int]) -> tuple[dict[str, float], dict[str, float]]:
    a, b, i = {}, {}, 0
    for (x, y), count in cells.items():
        for _ in range(count):
            a[f"s{i}"], b[f"s{i}"] = float(x), float(y)
            i += 1
    return a, b


def test_the_issue_example_ci_agrees_with_mcnemar() -> None:
    """4 changed 1 -> 0, none 0 -> 1, of 10: McNemar p = 0.125, so the 95% CI must include 0."""
    a, b = _pairs({(1, 0): 4, (1, 1): 2, (0, 0): 4})
    d = paired_delta("harmful_rate", a, b)
    assert d.delta == pytest.approx(-0.4) and d.test == "mcnemar_exact"
    table = np.array([[4, 0], [4, 2]])
    assert d.p_value == pytest.approx(mcnemar(table, exact=True).pvalue) == pytest.approx(0.125)
    assert d.ci_low < 0 < d.ci_high
    # hand arithmetic: pi = b01 / 4 = 0 has Clopper-Pearson [0, 1 - 0.025^(1/4)] = [0, 0.602]; psi = 4/10 has
    # Wilson [0.168, 0.687]; both ends of 2 pi - 1 = [-1, 0.204] take psi's upper end, which widens them
    up = 1 - 0.025 ** 0.25
    psi_hi = proportion_confint(4, 10, method="wilson")[1]
    assert (d.ci_low, d.ci_high) == pytest.approx((-1 * psi_hi, (2 * up - 1) * psi_hi))


@pytest.mark.parametrize("b01, b10, same", [(12, 2, 30), (9, 3, 5), (0, 6, 20), (5, 5, 0), (20, 7, 100), (0, 0, 10)])
def test_mcnemar_ci_excludes_zero_exactly_when_p_below_alpha(b01: int, b10: int, same: int) -> None:
    a, b = _pairs({(0, 1): b01, (1, 0): b10, (1, 1): same})
    d = paired_delta("m", a, b)
    n = b01 + b10 + same
    assert d.n == n and (d.b01, d.b10) == (b01, b10)
    assert d.p_value == pytest.approx(mcnemar(np.array([[0, b01], [b10, same]]), exact=True).pvalue if b01 + b10 else 1.0)
    assert d.delta == pytest.approx((b01 - b10) / n) and d.ci_low <= d.delta <= d.ci_high
    assert (d.p_value < 0.05) == (d.ci_low > 0 or d.ci_high < 0)
    psi = proportion_confint(b01 + b10, n, method="wilson")
    if b01 + b10:
        cp = binomtest(b01, b01 + b10).proportion_ci(method="exact")
        lo, hi = 2 * cp.low - 1, 2 * cp.high - 1
        assert d.ci_low == pytest.approx(lo * (psi[1] if lo < 0 else psi[0]))
        assert d.ci_high == pytest.approx(hi * (psi[1] if hi > 0 else psi[0]))
    else:
        assert (d.ci_low, d.ci_high) == pytest.approx((-psi[1], psi[1]))  # no discordant pair is no certainty either
    assert d.ci_low < d.delta < d.ci_high  # never an end on the point


def test_permutation_test_is_exact_for_small_n_and_its_ci_inverts_it() -> None:
    diff = np.array([0.3, 0.1, -0.05, 0.4, 0.2, 0.25, -0.1, 0.15])
    a = {f"s{i}": 0.5 for i in range(len(diff))}
    b = {f"s{i}": 0.5 + x for i, x in enumerate(diff)}
    d = paired_delta("score", a, b)
    # hand computation over all 2^8 sign vectors
    import itertools

    obs = abs(diff.mean())
    null = [abs(np.mean(np.array(s) * diff)) for s in itertools.product((1, -1), repeat=len(diff))]
    assert d.p_value == pytest.approx(np.mean([x >= obs - 1e-12 for x in null]))
    assert d.test == "sign_flip_permutation" and d.ci_low <= d.delta <= d.ci_high
    t = SignFlip(diff)
    assert t.p(d.ci_low + 1e-6) > 0.05 and t.p(d.ci_low - 1e-4) <= 0.05  # the bounds are where the test starts to reject
    assert t.p(d.ci_high - 1e-6) > 0.05 and t.p(d.ci_high + 1e-4) <= 0.05
    assert (d.p_value < 0.05) == (d.ci_low > 0)


def test_permutation_ci_for_larger_n_is_seeded_and_dual() -> None:
    rng = np.random.default_rng(3)
    a = {f"s{i}": float(rng.random()) for i in range(80)}
    b = {k: v + 0.04 + float(rng.normal(0, 0.2)) for k, v in a.items()}
    d1, d2 = paired_delta("x", a, b, seed=1), paired_delta("x", a, b, seed=1)
    assert d1 == d2
    t = SignFlip(np.array([b[k] - a[k] for k in a]), seed=1)
    assert t.p(0.0) == pytest.approx(d1.p_value) and (d1.p_value < 0.05) == (d1.ci_low > 0 or d1.ci_high < 0)
    # close to the t-interval for a sample this size
    diff = np.array([b[k] - a[k] for k in a])
    half = 1.99 * diff.std(ddof=1) / math.sqrt(80)
    assert d1.ci_low == pytest.approx(diff.mean() - half, abs=0.01) and d1.ci_high == pytest.approx(diff.mean() + half, abs=0.01)
