"""Agreement coefficients equal statsmodels', krippendorff's and scikit-learn's; Elo and Bradley-Terry ratings."""

from __future__ import annotations

import math
import random

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from alignbench.stats.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha, pairwise_cohen_kappa
from alignbench.stats.jury_agreement import jury_agreement
from alignbench.stats.ratings import bradley_terry, bt_ratings, comparisons_from_records, elo

# Fleiss (1971) example as used in statsmodels' tests: 10 subjects, 14 raters, 5 categories
FLEISS_TABLE = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                         [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])


def test_fleiss_kappa_table_equals_statsmodels() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(sm_fleiss(FLEISS_TABLE), abs=1e-12)
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.20993, abs=1e-4)  # the published value


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda r: st.lists(st.lists(st.sampled_from("abc"), min_size=r, max_size=r), min_size=2, max_size=25)))
def test_fleiss_kappa_from_ratings_equals_statsmodels(ratings) -> None:
    table, _ = aggregate_raters(np.array(ratings))
    expected = sm_fleiss(table)
    got = fleiss_kappa(ratings=ratings)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4).flatmap(lambda r: st.lists(st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=r, max_size=r), min_size=3, max_size=20)))
def test_krippendorff_alpha_equals_krippendorff(units) -> None:
    data = [list(col) for col in zip(*units)]  # raters x units
    pairable = sum(1 for u in units if sum(x is not None for x in u) >= 2)
    values = {x for u in units if sum(x is not None for x in u) >= 2 for x in u if x is not None}
    if pairable == 0 or len(values) < 2:
        return  # the reference library refuses these
    arr = np.array([[np.nan if x is None else float(x) for x in row] for row in data])
    for level in ("nominal", "interval"):
        expected = krippendorff.alpha(reliability_data=arr, level_of_measurement=level)
        assert krippendorff_alpha(data, level=level) == pytest.approx(expected, abs=1e-9)


def test_krippendorff_nominal_accepts_string_labels() -> None:
    data = [["yes", "no", "yes", None], ["yes", "no", "no", "yes"], ["yes", "yes", "no", "yes"]]
    codes = {"yes": 1.0, "no": 0.0}
    arr = np.array([[np.nan if x is None else codes[x] for x in r] for r in data])
    assert krippendorff_alpha(data) == pytest.approx(krippendorff.alpha(reliability_data=arr, level_of_measurement="nominal"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from("xyz")), min_size=2, max_size=30))
def test_cohen_kappa_equals_sklearn(pairs) -> None:
    a, b = [p for p, _ in pairs], [q for _, q in pairs]
    expected = cohen_kappa_score(a, b)
    got = cohen_kappa(a, b)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-10)


def test_pairwise_cohen_kappa_skips_missing() -> None:
    out = pairwise_cohen_kappa({"a": ["y", "n", None, "y"], "b": ["y", "n", "y", "n"], "c": ["y", "y", "n", None]})
    assert out["a|b"] == pytest.approx(cohen_kappa_score(["y", "n", "y"], ["y", "n", "n"]))
    assert out["b|c"] == pytest.approx(cohen_kappa_score(["y", "n", "y"], ["y", "y", "n"]))
    assert set(out) == {"a|b", "a|c", "b|c"}


def _record(verdicts):
    return {"judgments": {"jury": {"label": None, "score": None, "error": None,
                                   "raw": {"verdicts": verdicts, "parse_failures": sum(v["parse_error"] is not None for v in verdicts)}}}}


def _v(judge, label, score=None, parse_error=None):
    return {"judge": judge, "label": None if parse_error else label, "score": None if parse_error else score,
            "text": "", "parse_error": parse_error, "error": None}


def test_jury_agreement_reads_verdicts() -> None:
    rows = [("yes", "yes", "yes"), ("yes", "no", "yes"), ("no", "no", "no"), ("no", "no", "yes"), ("yes", "yes", None)]
    recs = [_record([_v(j, lab, {"yes": 1.0, "no": 0.0}.get(lab), None if lab else "no verdict") for j, lab in zip("abc", row)])
            for row in rows]
    recs.append({"judgments": {"other": {}}})  # records without the jury are ignored
    out = jury_agreement(recs, "jury")
    complete = [r for r in rows if None not in r]
    table, _ = aggregate_raters(np.array(complete))
    assert out["value"] == out["fleiss_kappa"] == pytest.approx(sm_fleiss(table))
    assert out["n"] == 4 and out["n_items"] == 5 and out["n_judges"] == 3 and out["parse_failures"] == 1
    assert out["cohen_kappa"]["a|b"] == pytest.approx(cohen_kappa_score([r[0] for r in rows], [r[1] for r in rows]))
    assert out["cohen_kappa"]["a|c"] == pytest.approx(cohen_kappa_score([r[0] for r in complete], [r[2] for r in complete]))
    arr = np.array([[np.nan if r[i] is None else float(r[i] == "yes") for r in rows] for i in range(3)])
    assert out["krippendorff_alpha"] == pytest.approx(krippendorff.alpha(reliability_data=arr, level_of_measurement="nominal"))
    assert out["krippendorff_alpha_interval"] == pytest.approx(krippendorff.alpha(reliability_data=arr, level_of_measurement="interval"))
    assert set(out) >= {"value", "stderr", "ci_low", "ci_high", "n"}  # a metrics.json record


def test_jury_agreement_per_aspect() -> None:
    def v(j, h, c):
        return {"judge": j, "label": None, "score": (h + c) / 2, "text": "", "parse_error": None, "error": None,
                "aspects": {"helpfulness": {"label": str(h), "score": float(h)}, "clarity": {"label": str(c), "score": float(c)}}}
    recs = [_record([v("a", 4, 5), v("b", 4, 3), v("c", 4, 5)]), _record([v("a", 2, 1), v("b", 3, 1), v("c", 2, 1)]),
            _record([v("a", 5, 5), v("b", 5, 4), v("c", 5, 5)])]
    out = jury_agreement(recs, "jury", aspect="helpfulness")
    assert out["fleiss_kappa"] == pytest.approx(fleiss_kappa(ratings=[["4", "4", "4"], ["2", "3", "2"], ["5", "5", "5"]]))
    arr = np.array([[4, 2, 5], [4, 3, 5], [4, 2, 5]], dtype=float)
    assert out["krippendorff_alpha_interval"] == pytest.approx(krippendorff.alpha(reliability_data=arr, level_of_measurement="interval"))



def test_report_and_metrics_read_one_verdict_table() -> None:
    """The report's jury section and metrics.json's jury agreement count the same items and failures:
    a verdict with a backend error, one with a parse error and one with neither label nor aspects."""
    import pandas as pd

    from alignbench.report.jury import jury_agreement_table

    backend = {"judge": "b", "label": None, "score": None, "text": None, "parse_error": None, "error": "timeout"}
    silent = {"judge": "c", "label": None, "score": None, "text": "", "parse_error": None, "error": None}
    recs = [_record([_v("a", "yes", 1.0), _v("b", "yes", 1.0), _v("c", "no", 0.0)]),
            _record([_v("a", "no", 0.0), _v("b", "no", 0.0), _v("c", "no", 0.0)]),
            _record([_v("a", "yes", 1.0), backend, _v("c", "yes", 1.0)]),
            _record([_v("a", "yes", 1.0), _v("b", None, None, "no verdict"), _v("c", "yes", 1.0)]),
            _record([_v("a", "no", 0.0), _v("b", "yes", 1.0), silent]),
            _record([_v("a", "yes", 1.0), _v("b", "yes", 1.0), _v("c", "yes", 1.0)])]
    metrics = jury_agreement(recs, "jury")
    samples = pd.DataFrame({"run": "r", "task": "t", "judge.jury.raw": [r["judgments"]["jury"]["raw"] for r in recs]})
    row = jury_agreement_table(samples).iloc[0]
    # hand count: 6 items, rows 3-5 each lose one juror -> 3 complete; failures: 2 parse (row 4, row 5), 1 backend
    assert (metrics["n_items"], metrics["n"], metrics["parse_failures"], metrics["backend_errors"]) == (6, 3, 2, 1)
    assert (row.samples, row["fully rated"], row["parse failures"], row["backend errors"]) == (6, 3, 2, 1)
    assert row.jurors == "a, b, c" and metrics["judges"] == ["a", "b", "c"]
    complete = [["yes", "yes", "no"], ["no", "no", "no"], ["yes", "yes", "yes"]]
    expected = sm_fleiss(aggregate_raters(np.array(complete))[0])
    assert metrics["fleiss_kappa"] == pytest.approx(expected) and row.fleiss_kappa == pytest.approx(expected)
    assert row.unanimous == pytest.approx(2 / 3)

# ratings -------------------------------------------------------------------------------------------

def test_bradley_terry_two_models_fixed_point() -> None:
    comps = [("a", "b", "a")] * 3 + [("a", "b", "b")]
    p = bradley_terry(comps)
    assert p["a"] / p["b"] == pytest.approx(3.0, rel=1e-8)  # MLE: p_a/p_b = wins ratio
    assert p["a"] * p["b"] == pytest.approx(1.0)
    r = bt_ratings(comps)
    assert r["a"] - r["b"] == pytest.approx(400 * math.log10(3))


def test_bradley_terry_is_the_mle() -> None:
    from scipy.optimize import minimize

    comps = ([("a", "b", "a")] * 5 + [("a", "b", "b")] * 2 + [("b", "c", "b")] * 4 + [("b", "c", "c")] * 3
             + [("a", "c", "a")] * 2 + [("a", "c", "c")] * 3 + [("a", "c", "tie")] * 2)
    p = bradley_terry(comps)
    models = ["a", "b", "c"]
    idx = {m: i for i, m in enumerate(models)}

    def nll(theta):
        ll = 0.0
        for a, b, w in comps:
            pa = 1 / (1 + math.exp(theta[idx[b]] - theta[idx[a]]))
            s = 1.0 if w == a else 0.0 if w == b else 0.5
            ll += s * math.log(pa) + (1 - s) * math.log(1 - pa)
        return -ll

    res = minimize(nll, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
    theta = res.x - res.x.mean()
    assert [math.log(p[m]) for m in models] == pytest.approx(theta.tolist(), abs=1e-5)


def test_bradley_terry_needs_pseudo_count_when_a_model_never_loses() -> None:
    comps = [("a", "b", "a"), ("a", "b", "a")]
    with pytest.raises(ValueError, match="pseudo_count"):
        bradley_terry(comps)
    p = bradley_terry(comps, pseudo_count=1.0)
    assert p["a"] / p["b"] == pytest.approx(2.5 / 0.5)


def test_elo_invariants() -> None:
    comps = [("a", "b", "a"), ("b", "c", "b"), ("a", "c", "tie"), ("c", "a", "a"), ("b", "a", "a")]
    r = elo(comps, k=32, initial=1500)
    assert sum(r.values()) == pytest.approx(1500 * 3)  # zero-sum
    assert r["a"] > r["b"] > r["c"]
    first = elo([("a", "b", "a")], k=32, initial=1000)
    assert first == {"a": 1016.0, "b": 984.0}  # equal ratings: expected 0.5, k/2 moves
    assert elo([("a", "b", "tie")]) == {"a": 1000.0, "b": 1000.0}
    # with a seed, the seed alone decides the order: sorted, then shuffled by random.Random(seed)
    order = sorted(comps)
    random.Random(3).shuffle(order)
    assert order != comps and elo(comps, seed=3) == elo(order)
    assert elo(comps, seed=3) == elo(list(reversed(comps)), seed=3) == elo(comps[2:] + comps[:2], seed=3)
    assert elo(comps, seed=4) != elo(comps, seed=3)  # another seed, another order, other ratings
    averaged = elo(comps, seed=1, rounds=20)
    assert sum(averaged.values()) == pytest.approx(3000) and averaged["a"] > averaged["c"]
    with pytest.raises(ValueError, match="winner"):
        elo([("a", "b", "c")])


def test_comparisons_from_pairwise_records() -> None:
    recs = [{"judgments": {"pw": {"label": lab, "error": err}}} for lab, err in
            [("A", None), ("B", None), ("tie", None), (None, "no usable verdict")]]
    assert comparisons_from_records(recs, "pw", "m1", "m0") == [("m1", "m0", "m1"), ("m1", "m0", "m0"), ("m1", "m0", "tie")]
