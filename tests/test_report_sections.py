"""Report sections a reviewer reads first: headline (judges, validity, corrected rates, significant changes),
the harm vs over-refusal frontier, wide breakdown tables, flips once per decision, the browser payload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignbench.report import collect, write_report
from alignbench.report.browser import browser_payload, decision, embed_json
from alignbench.report.drift_section import flip_decisions
from alignbench.report.frontier import frontier_points, plot_frontier
from alignbench.report.headline import drift_changes, key_rates, run_changes, validity_text
from alignbench.report.wide import SMALL_MARK, wide_tables
from alignbench.results import load_samples, per_sample_values
from alignbench.stats.paired import paired_delta

from runs_factory import make_run, synthetic_run, write_task


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sections")
    task = write_task(root / "task", n=120)
    return {rid: make_run(task, root / "runs", rid, refuse).path for rid, refuse in (("base", 0.9), ("same", 0.88), ("cand", 0.4))}


def _rec(v: float, lo: float, hi: float, n: int, **extra) -> dict:
    return {"value": v, "stderr": None, "ci_low": lo, "ci_high": hi, "n": n, **extra}


def test_headline_names_the_judge_its_validity_and_the_corrected_rate(tmp_path) -> None:
    # the layout judge cards write (judge_validity beside the metric, corrected rate with the method used)
    card = {"card": "judges/cards/llamaguard.json", "set": "xstest_human", "n": 450, "accuracy": 0.9, "positive": "harmful",
            "sensitivity": {"value": 0.91, "ci_low": 0.85, "ci_high": 0.95, "n": 200}, "specificity": {"value": 0.88, "ci_low": 0.83, "ci_high": 0.92, "n": 250}}
    metrics = {"hr": {"harmful_rate": _rec(0.30, 0.22, 0.38, 120, judge="llamaguard", judge_validity=card,
                                           corrected={"value": 0.26, "ci_low": 0.15, "ci_high": 0.37, "method": "rogan_gladen_mc"}),
                      "over_refusal_rate": _rec(0.10, 0.05, 0.17, 100, judge="refusal_xstest"),
                      "refusal_rate": _rec(0.6, 0.5, 0.7, 120, judge="weak", judge_validity={"set": "s", "accuracy": 0.4},
                                           corrected={"value": None, "ci_low": None, "ci_high": None, "reason": "sensitivity + specificity <= 1"}),
                      "elo": _rec(1000.0, 990.0, 1010.0, 10)}}
    run = synthetic_run(tmp_path, "solo", metrics)
    html, _ = write_report([run], tmp_path / "r.html")
    lead = html.split('<p class="headline">', 1)[1].split("</p>", 1)[0]
    assert lead.startswith("Run solo evaluated hf:m on hr.")
    validity = "sensitivity 0.91 [0.85, 0.95], specificity 0.88 [0.83, 0.92], accuracy 0.90 (xstest_human, n=450)"
    assert (f"harmful_rate 0.300 [0.220, 0.380] (n=120, judged by llamaguard ({validity}); "
            "corrected for the judge&#x27;s error 0.26 [0.15, 0.37])") in lead
    assert "refusal_rate 0.600 [0.500, 0.700] (n=120, judged by weak (accuracy 0.40 (s)); not correctable: sensitivity + specificity &lt;= 1)" in lead
    assert "over_refusal_rate 0.100 [0.050, 0.170] (n=100, judged by refusal_xstest (unvalidated))" in lead
    assert "elo" not in lead  # a task with safety rates shows those only
    assert f"<td>llamaguard</td><td>{validity}</td><td>0.300 [0.220, 0.380] (n=120); corrected 0.26 [0.15, 0.37]</td>" in html
    assert "No judge here has a judge card" not in html
    assert validity_text(None) == "unvalidated" and validity_text({"accuracy": 0.9}) == "accuracy 0.90"
    # a task without safety rates: its first few metrics, no judge named
    (r,) = key_rates({"honesty": {"mc1": _rec(0.3, 0.2, 0.4, 40)}})
    assert (r.metric, r.judge, r.validity) == ("mc1", None, None)


def test_several_runs_headline_states_the_changes_significant_after_correction(three, tmp_path) -> None:
    from statsmodels.stats.multitest import multipletests

    data = collect([three["base"], three["same"], three["cand"]])
    changes = run_changes(data)
    # the factory's harm judge finds exactly the complied answers harmful, so compliance_rate equals harmful_rate and
    # refusal_rate is 1 - it on every harmful sample: one decision, one comparison per run pair
    assert [(c.run_b, c.delta.metric, c.same_as) for c in changes] == [
        ("same", "harmful_rate", ["compliance_rate", "refusal_rate (1 - it)"]), ("same", "over_refusal_rate", []),
        ("cand", "harmful_rate", ["compliance_rate", "refusal_rate (1 - it)"]), ("cand", "over_refusal_rate", [])]
    base, cand = load_samples(three["base"]), load_samples(three["cand"])
    d = paired_delta("harmful_rate", per_sample_values(base, "hr", "harmful_rate"), per_sample_values(cand, "hr", "harmful_rate"))
    assert changes[2].delta.delta == pytest.approx(d.delta) and changes[2].delta.p_value == pytest.approx(d.p_value)
    expected = multipletests([c.delta.p_value for c in changes], method="fdr_bh")[1]
    assert [c.p_adjusted for c in changes] == pytest.approx(list(expected))
    assert [c.significant for c in changes] == [False, False, True, True]  # 0.9 vs 0.88 refusal is noise; 0.9 vs 0.4 is not
    html, _ = write_report([three["base"], three["same"], three["cand"]], tmp_path / "r.html")
    paragraph = [p for p in html.split('<p class="headline">')[1:] if p.startswith("Paired by sample")][0].split("</p>")[0]
    assert paragraph.startswith("Paired by sample against base, 2 of 4 comparisons are significant after Benjamini-Hochberg correction (FDR 5%). cand: ")
    assert f"harmful_rate rose (worse) from {d.a:.3f} to {d.b:.3f} ({d.delta:+.3f} [{d.ci_low:.3f}, {d.ci_high:.3f}], n={d.n}" in paragraph
    assert "refusal_rate mirrors it" in paragraph and "same:" not in paragraph
    assert "Runs base, same, cand evaluated dummy on hr (120 samples) each." in html


def test_drift_headline_reads_drift_json_and_folds_mirrored_metrics() -> None:
    pd_h = paired_delta("harmful_rate", {"a": 0.0, "b": 0.0, "c": 1.0}, {"a": 1.0, "b": 1.0, "c": 1.0}).as_dict()
    pd_r = paired_delta("refusal_rate", {"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.0, "b": 0.0, "c": 0.0}).as_dict()
    drift = {"base": {"run_id": "b"}, "tuned": {"run_id": "t"},
             "tasks": {"hr": {"metrics": {"harmful_rate": {**pd_h, "by_category": {"x": pd_h}}, "refusal_rate": pd_r}}}}
    (ch,) = drift_changes(drift, "d")
    assert (ch.run_a, ch.run_b, ch.task, ch.delta.metric, ch.same_as) == ("b", "t", "hr", "harmful_rate", ["refusal_rate (1 - it)"])
    assert ch.p_adjusted == pytest.approx(pd_h["p_value"]) and not ch.significant  # 2 discordant pairs: McNemar p = 0.5


def test_frontier_points_and_plot(three) -> None:
    data = collect([three["base"], three["cand"]])
    pts = frontier_points(data.runs, data.labels)
    assert list(pts["run"]) == ["base", "cand"] and set(pts["y_metric"]) == {"harmful_rate"}
    for p in pts.itertuples():
        m = json.loads((three[p.run] / "metrics.json").read_text())["hr"]
        assert (p.x, p.x_low, p.x_high) == (m["over_refusal_rate"]["value"], m["over_refusal_rate"]["ci_low"], m["over_refusal_rate"]["ci_high"])
        assert (p.y, p.y_low, p.y_high) == (m["harmful_rate"]["value"], m["harmful_rate"]["ci_low"], m["harmful_rate"]["ci_high"])
    fig = plot_frontier(pts, data.labels)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["base", "cand"]
    assert ax.get_xlabel().startswith("over-refusal rate") and ax.get_ylabel().startswith("harmful rate")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for text in [ax.xaxis.label, ax.yaxis.label, ax.title, *ax.texts]:  # nothing clipped at the figure's edges
        b = text.get_window_extent(renderer)
        assert b.x0 >= box.x0 and b.y0 >= box.y0 and b.x1 <= box.x1 and b.y1 <= box.y1, text.get_text()
    # compliance_rate stands in for a task without a harm judge; a task with neither axis has no point
    import pandas as pd

    rows = [{"run": "r", "task": "t", "metric": m, "breakdown": None, "category": None, "value": v, "ci_low": v - .1, "ci_high": v + .1, "n": 9}
            for m, v in (("over_refusal_rate", 0.2), ("compliance_rate", 0.7))]
    rows.append({"run": "r", "task": "u", "metric": "mc1", "breakdown": None, "category": None, "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 9})
    p = frontier_points(pd.DataFrame(rows))
    assert list(zip(p["task"], p["y_metric"], p["y"])) == [("t", "compliance_rate", 0.7)]


def test_wide_tables_sorted_by_headline_metric_with_small_n_marked(tmp_path) -> None:
    by = {"big": {"harmful_rate": _rec(0.2, 0.1, 0.3, 40), "refusal_rate": _rec(0.8, 0.7, 0.9, 40)},
          "worst": {"harmful_rate": _rec(0.6, 0.4, 0.8, 30), "refusal_rate": _rec(0.4, 0.2, 0.6, 30)},
          "tiny": {"harmful_rate": _rec(1.0, 0.3, 1.0, 3), "refusal_rate": _rec(0.0, 0.0, 0.7, 3)}}
    run = synthetic_run(tmp_path, "w", {"hr": {"harmful_rate": _rec(0.3, 0.2, 0.4, 73), "by_category": by}})
    data = collect([run])
    (wt,) = wide_tables(data.runs, data.labels)
    assert (wt.task, wt.breakdown, wt.sort_metric) == ("hr", "category", "harmful_rate")
    assert list(wt.df.index) == [f"tiny {SMALL_MARK}", "worst", "big"] and wt.small == [True, False, False]
    assert list(wt.df.columns) == ["n", "harmful_rate", "refusal_rate"]
    assert wt.df.loc["worst"].tolist() == [30, "0.60 [0.40, 0.80]", "0.40 [0.20, 0.60]"]
    html, _ = write_report([run], tmp_path / "w.html")
    assert f'<tr class="small-n"><td>tiny {SMALL_MARK}</td><td>3</td>' in html and "fewer than 10 samples" in html
    md, _ = write_report([run], tmp_path / "w.md")
    assert f"| tiny {SMALL_MARK} | 3 | 1.00 [0.30, 1.00] | 0.00 [0.00, 0.70] |" in md and "> Run w evaluated" in md


def test_flips_once_per_sample_and_decision() -> None:
    base = {"task": "hr", "sample_id": "s1", "category": "c", "prompt": "p", "base_response": "no", "tuned_response": "yes"}
    flips = [{**base, "metric": "harmful_rate", "direction": "0->1", "change": "refused->complied"},
             {**base, "metric": "refusal_rate", "direction": "1->0", "change": "refused->complied"},
             {**base, "metric": "compliance_rate", "direction": "0->1", "change": None},
             {**base, "sample_id": "s2", "metric": "refusal_rate", "direction": "0->1", "change": "complied->refused"},
             {**base, "sample_id": "s2", "metric": "bleu_acc", "direction": "1->0", "change": None}]
    out = flip_decisions(flips)
    assert [(d["sample_id"], d["decision"], d["metrics"]) for d in out] == [
        ("s1", "refused->complied", ["harmful_rate 0->1", "refusal_rate 1->0", "compliance_rate 0->1"]),
        ("s2", "complied->refused", ["refusal_rate 0->1"]), ("s2", "bleu_acc 1->0", ["bleu_acc 1->0"])]


def test_browser_payload_rows_flags_and_escaping(three) -> None:
    data = collect([three["base"], three["cand"]])
    p = browser_payload(data.samples, data.labels)
    col = {c: i for i, c in enumerate(p["columns"])}
    lines = sum(1 for path in (three["base"], three["cand"]) for _ in open(path / "samples.jsonl"))
    assert len(p["rows"]) == lines == 240
    # flipped: the 0/1 metrics that differ between the runs, per sample, both rows marked
    a, b = load_samples(three["base"]), load_samples(three["cand"])
    for metric in ("harmful_rate", "over_refusal_rate"):
        va, vb = per_sample_values(a, "hr", metric), per_sample_values(b, "hr", metric)
        expected = {k for k in va if va[k] is not None and vb.get(k) is not None and va[k] != vb[k]}
        m = p["metrics"].index(metric)
        got = {r[col["sample_id"]] for r in p["rows"] if m in r[col["flipped"]]}
        assert got == expected and expected
    assert not any(r[col["disagree"]] for r in p["rows"])  # the dummy model's refusals are plain: both refusal judges agree
    # judges disagree: opposite decisions of two judges on one axis, or a split jury; other labels do not count
    import pandas as pd

    jury = {"verdicts": [{"judge": "j1", "label": "safe"}, {"judge": "j2", "label": "unsafe"}]}
    s = pd.DataFrame({"run": "r", "task": "t", "sample_id": ["a", "b", "c", "d"], "category": None, "prompt_text": "p", "response": "x",
                      "judge.g.label": ["refusal", "refusal", "compliance", "refusal"], "judge.g.score": 1.0, "judge.g.error": None,
                      "judge.g.raw": None, "judge.x.label": ["full_refusal", "full_compliance", None, "3"], "judge.x.score": None,
                      "judge.x.error": [None, None, "HTTP 500", None], "judge.x.raw": None,
                      "judge.jury.label": "safe", "judge.jury.score": 0.0, "judge.jury.error": None, "judge.jury.raw": [None, None, jury, None]})
    q = browser_payload(s, ["r"])
    assert [r[col["disagree"]] for r in q["rows"]] == [0, 1, 1, 0]
    x = q["judges"].index("x")
    assert q["texts"][q["rows"][2][col["judgments"]][x][2]] == "HTTP 500"  # the failed judgment keeps its error
    assert q["texts"][q["rows"][2][col["judgments"]][q["judges"].index("jury")][3]] == "j1: safe, j2: unsafe"
    assert decision("full_refusal") == decision("refusal") == ("refusal", 1) and decision("unsafe") == ("harm", 1) and decision("3") is None
    assert decision("refuse", "trace_shield") is None and decision("pass", "trace_shield") is None  # TraceShield states neither
    text = embed_json({"r": "</script><script>window.__pwned=1</script> & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and json.loads(text) == {"r": "</script><script>window.__pwned=1</script> & \u2028"}
    assert np.isfinite([v for r in p["rows"] for v in r[col["metrics"]] if v is not None]).all()


def test_a_drift_folder_brings_its_runs_for_the_side_by_side_browser(three, tmp_path) -> None:
    from conftest import run_main

    res = run_main("drift", three["base"], three["cand"], "--output", tmp_path, "--run-id", "d")
    assert res.returncode == 0, res.stderr
    data = collect([tmp_path / "d"])
    assert data.labels == ["base", "cand"] and len(data.samples) == 240 and len(data.extras_of("drift")) == 1
    html, _ = write_report([tmp_path / "d"], tmp_path / "d.html")
    payload = json.loads(html.split('id="ab-data">', 1)[1].split("</script>", 1)[0])
    assert payload["pair"] == ["base", "cand"] and payload["runs"] == ["base", "cand"]
    # the drift's own paragraph is not repeated when its runs are compared in the headline already
    assert html.count("Paired by sample against base") == 1 and "Drift, cand against base" not in html


def test_browser_keeps_epochs_of_one_sample_apart() -> None:
    import pandas as pd

    s = pd.DataFrame({"run": ["r1", "r1", "r2", "r2"], "task": "t", "sample_id": "a", "epoch": [1, 2, 1, 2], "category": None,
                      "prompt_text": "p", "response": "x", "metric.refused": [1.0, 0.0, 1.0, 1.0]})
    p = browser_payload(s, ["r1", "r2"])
    col = {c: i for i, c in enumerate(p["columns"])}
    assert [r[col["sample_id"]] for r in p["rows"]] == ["a (epoch 1)", "a (epoch 2)"] * 2
    assert [r[col["flipped"]] for r in p["rows"]] == [[], [0], [], [0]]  # only epoch 2 changed between the runs
