"""`alignbench report`: tables equal metrics.json, plots embedded, model output escaped, optional sections."""

from __future__ import annotations

import base64
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from alignbench.report import collect, write_report
from alignbench.report.browser import asset, script_hash
from alignbench.report.drift import drift_entries, flip_lists, token_shift_profiles
from alignbench.report.jury import fleiss_kappa, jury_agreement_table
from alignbench.report.levels import level_curve, parse_level
from alignbench.report.tables import fmt_value, parse_judge_eval
from alignbench.results import load_samples, per_sample_values
from alignbench.stats.paired import paired_delta

from conftest import run_cli, run_main
from runs_factory import make_run, rewrite_samples, synthetic_run, write_task

XSS = "<script>alert(1)</script>"
JURORS = ("judge_a", "judge_b", "judge_c")


def _share(v: float) -> dict:
    return {"value": v, "stderr": None, "ci_low": v - 0.05, "ci_high": v + 0.05, "n": 1000}


# the shape `alignbench drift` writes (alignbench.drift.token_shift): share records, per-sample KL by position
TOKEN_SHIFT = {"base": "hf:base", "tuned": "hf:tuned", "n_positions": 1000,
               "rank_bins": {"unshifted": "base rank 1", "marginal": "base rank 2-3", "shifted": "base rank > 3"},
               "unshifted": _share(0.77), "marginal": _share(0.15), "shifted": _share(0.08), "kl_mean": _share(0.3),
               "top_shifted_tokens": [{"token": "<b>Sure", "count": 12, "share_of_shifted": 0.15}],
               "by_task": {"hr": {"unshifted": _share(0.7), "marginal": _share(0.2), "shifted": _share(0.1)}},
               "samples": [{"task": "hr", "positions": [0, 1, 3], "kl": [0.9, 0.5, 0.1]},
                           {"task": "hr", "positions": [0, 1], "kl": [0.5, 0.3]}]}


def _verdict(i: int, j: int) -> dict:
    if i == 3 and j == 2:
        return {"judge": JURORS[j], "label": None, "score": None, "parse_error": "no verdict line", "error": None}
    if i == 7 and j == 0:
        return {"judge": JURORS[j], "label": None, "score": None, "parse_error": None, "error": "BackendError: HTTP 500"}
    label = "unsafe" if (i * (j + 1)) % 3 == 0 or (i + j) % 5 == 0 else "safe"
    return {"judge": JURORS[j], "label": label, "score": float(label == "unsafe")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    task = write_task(root / "task", n=80)
    base = make_run(task, root / "runs", "base", 0.9)
    cand = make_run(task, root / "runs", "cand", 0.5)
    state = {"i": 0, "xss": False}

    def edit(r):
        i = state["i"]
        state["i"] += 1
        if not state["xss"] and r["metrics"].get("harmful_rate") == 1.0:
            r["response"] = f"Sure! {XSS} here is how & why"
            state["xss"] = True
        r["judgments"]["jury"] = {"label": "safe", "score": 0.0, "error": None,
                                  "raw": {"verdicts": [_verdict(i, j) for j in range(3)], "aggregate": "majority"}}
        if i == 5:
            r["judgments"]["refusal_gcg"] = {"label": None, "score": None, "raw": None, "error": "RuntimeError: boom"}
        return r

    rewrite_samples(cand, edit)
    assert state["xss"]
    a = per_sample_values(load_samples(base.path), "hr", "harmful_rate")
    b = per_sample_values(load_samples(cand.path), "hr", "harmful_rate")
    cyber = [k for k in a if k in ("s000", "s002", "s016", "s018")]
    pd_cyber = paired_delta("harmful_rate", {k: a[k] for k in cyber}, {k: b[k] for k in cyber}).as_dict()
    drift = {"base": "base", "tuned": "cand",
             "tasks": {"hr": {"metrics": {"harmful_rate": {**paired_delta("harmful_rate", a, b).as_dict(), "by_category": {"cyber": pd_cyber}}},
                              "flips": {"harmful_rate": {"0->1": 3, "1->0": 0}}, "flipped_ids": ["s000", "s004"]}}}
    (cand.path / "drift.json").write_text(json.dumps(drift))
    (cand.path / "token_shift.json").write_text(json.dumps(TOKEN_SHIFT))
    flips = [{"task": "hr", "metric": "harmful_rate", "sample_id": f"s{i:03d}", "category": "cyber", "direction": "0->1",
              "change": "refused -> answered", "base_value": 0.0, "tuned_value": 1.0,
              "prompt": [{"role": "user", "content": f"Request {i}"}], "base_response": "I'm sorry, I can't.",
              "tuned_response": f"Sure {XSS} step {i}"} for i in range(0, 12, 2)]
    (cand.path / "flips.jsonl").write_text("".join(json.dumps(f) + "\n" for f in flips))
    (cand.path / "judge_eval.json").write_text(json.dumps({"judges": {"refusal_xstest": {"accuracy": 0.91, "macro_f1": 0.87,
                                                                                         "cohen_kappa": 0.78, "n": 120, "confusion": [[1]]}}}))
    return {"base": base.path, "cand": cand.path, "root": root}


@pytest.fixture
def report():
    return functools.partial(run_main, "report")


def test_html_report_is_self_contained_escaped_and_complete(runs, tmp_path, report) -> None:
    out = tmp_path / "r.html"
    r = report(runs["base"], runs["cand"], "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and f"report written to {out}" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # one file, nothing beside it
    html = out.read_text(encoding="utf-8")
    # the only scripts are the report's own: the browser's data (JSON, inert) and its code, allowed by hash in the CSP
    assert re.findall(r"<script[^>]*>", html, re.I) == ['<script type="application/json" id="ab-data">', "<script>"]
    data = html.split('id="ab-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data and "&" not in data and XSS not in data
    code = html.rsplit("<script>", 1)[1].split("</script>", 1)[0]
    assert code == asset("browser.js")
    assert f"script-src {script_hash(code)};" in html and "connect-src 'none'" in html
    assert XSS not in html  # the model's script only appears escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt; here is how &amp; why" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html) and "<link" not in html and "@import" not in html
    imgs = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == html.count("<img")
    for _, data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    alts = [a for a, _ in imgs]
    assert "Harmful rate and over-refusal per run" in alts
    assert "hr: harmful_rate by category" in alts and "hr: over_refusal_rate by category" in alts
    assert any(a.startswith("drift:") for a in alts) and any(a.startswith("token shift:") for a in alts)
    # summary cells equal metrics.json
    for rid in ("base", "cand"):
        m = json.loads((runs[rid] / "metrics.json").read_text())["hr"]
        for metric in ("harmful_rate", "refusal_rate", "over_refusal_rate"):
            rec = m[metric]
            assert f"<td>{fmt_value(rec['value'], rec['ci_low'], rec['ci_high'], rec['n'])}</td>" in html
        rec = m["by_category"]["cyber"]["harmful_rate"]
        assert f"<td>{fmt_value(rec['value'], rec['ci_low'], rec['ci_high'], digits=2)}</td>" in html  # wide breakdown table
    assert "<td>1 / 80</td>" in html  # the judge error
    assert "<td>hr/harmful_rate</td>" in html  # drift table, and by category in wide form
    cyber = json.loads((runs["cand"] / "drift.json").read_text())["tasks"]["hr"]["metrics"]["harmful_rate"]["by_category"]["cyber"]
    assert cyber["n"] == 4 and f"<tr class=\"small-n\"><td>cyber †</td><td>4</td><td>{cyber['delta']:+.2f} [{cyber['ci_low']:+.2f}, {cyber['ci_high']:+.2f}] (p={cyber['p_value']:.2g})</td>" in html
    assert "<td>0.770 [0.720, 0.820]</td>" in html and "<td>hr</td>" in html  # token shift, overall and per task
    assert "<td>&lt;b&gt;Sure</td>" in html  # a token is model output too
    assert html.count("refused -&gt; answered (harmful_rate 0-&gt;1)") == 3  # flips.jsonl: 3 examples of 6 shown
    assert "<td>hr</td><td>refused -&gt; answered</td><td>harmful_rate 0-&gt;1</td><td>6</td>" in html  # once per sample and decision
    assert f"Sure {XSS}".replace("<", "&lt;").replace(">", "&gt;") + " step 0" in html and "base response" in html
    sections = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', html)
    assert sections == ["Headline", "Harm vs over-refusal", "Runs", "Summary", "Breakdowns", "Judges", "Drift", "Samples"]
    assert "<td>refusal_xstest</td>" in html and "<td>0.910</td>" in html and "confusion" not in html


def test_fmt_value() -> None:
    assert fmt_value(0.12345, 0.1, 0.15, 40) == "0.123 [0.100, 0.150] (n=40)"
    assert fmt_value(float("nan"), None, None, 0) == "n/a (n=0)"
    assert fmt_value(0.5) == "0.500"


def test_jury_agreement_equals_statsmodels_fleiss(runs) -> None:
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    data = collect([runs["cand"]])
    t = jury_agreement_table(data.samples)
    assert len(t) == 1
    row = t.iloc[0]
    assert (row.run, row.task, row.judge, row.jurors) == ("cand", "hr", "jury", "judge_a, judge_b, judge_c")
    assert row.samples == 80 and row["parse failures"] == 1 and row["backend errors"] == 1 and row["fully rated"] == 78
    rows = [[_verdict(i, j)["label"] for j in range(3)] for i in range(80) if i not in (3, 7)]
    codes = np.array([[1 if x == "unsafe" else 0 for x in r] for r in rows])
    expected = sm_fleiss(aggregate_raters(codes)[0])
    assert row.fleiss_kappa == pytest.approx(expected)
    assert row.unanimous == pytest.approx(np.mean([len(set(r)) == 1 for r in rows]))
    # textbook case (Fleiss 1971 style): perfect agreement -> 1, and a known mixed table
    assert fleiss_kappa([["a", "a"], ["b", "b"], ["a", "a"]]) == pytest.approx(1.0)
    assert fleiss_kappa([["a", "b"], ["a", "b"], ["b", "a"]]) == pytest.approx(sm_fleiss(np.array([[1, 1], [1, 1], [1, 1]])))


def test_jury_agreement_per_aspect() -> None:
    import pandas as pd

    def raw(i: int) -> dict:
        return {"verdicts": [{"judge": j, "label": None, "parse_error": None, "error": None,
                              "aspects": {"helpful": {"label": str((i + k) % 2 * 5)}, "harmless": {"label": "5"}}}
                             for k, j in enumerate(JURORS)]}

    samples = pd.DataFrame({"run": "r", "task": "t", "judge.rubric.raw": [raw(i) for i in range(6)]})
    t = jury_agreement_table(samples).set_index("judge")
    assert list(t.index) == ["rubric:helpful", "rubric:harmless"]
    assert t.loc["rubric:helpful", "fully rated"] == 6 and t.loc["rubric:helpful", "parse failures"] == 0
    assert t.loc["rubric:harmless", "unanimous"] == 1.0 and np.isnan(t.loc["rubric:harmless", "fleiss_kappa"])  # one label: undefined


def test_markdown_report_writes_plots_beside_it_and_escapes(runs, tmp_path, report) -> None:
    out = tmp_path / "sub" / "rep.md"
    r = report(runs["base"], runs["cand"], "--format", "md", "--out", out)
    assert r.returncode == 0, r.stderr
    md = out.read_text(encoding="utf-8")
    pngs = sorted(p.name for p in out.parent.glob("*.png"))
    assert pngs and all(n.startswith("rep-") for n in pngs)
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(linked) == pngs
    for n in pngs:
        assert (out.parent / n).read_bytes()[:4] == b"\x89PNG"
    assert "| task | metric | base | cand |" in md
    script_lines = [ln for ln in md.splitlines() if "<script" in ln]
    assert script_lines and all(ln.startswith("    ") for ln in script_lines)  # only inside code blocks (shown literally)
    r = report(runs["cand"], "--format", "md", "--out", "-")
    assert r.returncode == 0 and r.stdout.startswith("# alignbench report: cand")
    assert "_Plots omitted: " in r.stdout and "![" not in r.stdout


def test_default_output_and_errors(runs, tmp_path, report, monkeypatch) -> None:
    import shutil

    one = tmp_path / "one"
    shutil.copytree(runs["base"], one)
    r = report(one)
    assert r.returncode == 0 and (one / "report.html").is_file()
    monkeypatch.chdir(tmp_path)
    assert report(runs["base"], runs["cand"], "--format", "md").returncode == 0
    assert (tmp_path / "report.md").is_file()
    r = report(tmp_path / "nope")
    assert r.returncode == 2 and r.stderr.strip() == f"alignbench: error: {tmp_path / 'nope'}: no such run folder"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = report(empty)
    assert r.returncode == 2 and "not a run folder" in r.stderr and r.stderr.count("\n") == 1
    r = report(runs["base"], "--out", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    parent = tmp_path / "parent"
    shutil.copytree(runs["base"], parent / "base")
    shutil.copytree(runs["base"], parent / "unfinished")
    (parent / "unfinished" / "metrics.json").unlink()
    r = report(parent, "--out", tmp_path / "p.html")
    assert r.returncode == 0 and r.stderr.startswith("alignbench: warning: ") and "unfinished: no metrics.json" in r.stderr
    assert r.stderr.count("\n") == 2  # the warning and the "written to" note, nothing else
    bad = tmp_path / "drift.json"
    bad.write_text("{oops")
    r = report(bad)
    assert r.returncode == 2 and "drift.json: invalid JSON" in r.stderr


def test_cli_subprocess(runs, tmp_path) -> None:
    out = tmp_path / "x.html"
    r = run_cli("report", str(runs["root"] / "runs"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "<th>base</th><th>cand</th>" in html and XSS not in html
    r = run_cli("report", str(runs["base"]), "--format", "pdf")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_drift_and_token_shift_parsing(runs) -> None:
    data = json.loads((runs["cand"] / "drift.json").read_text())
    e, cat = drift_entries(data)
    src = data["tasks"]["hr"]["metrics"]["harmful_rate"]
    assert e.label == "hr/harmful_rate" and e.category is None and e.delta == src["delta"] and (e.b01, e.b10) == (src["b01"], src["b10"])
    assert e.b01 > 0 and e.p_value == src["p_value"] and e.n == 40
    assert cat.label == "hr/harmful_rate [cyber]" and cat.category == "cyber" and cat.n == 4
    assert flip_lists(data) == [("tasks/hr/flipped_ids", 2)]
    unpaired = drift_entries({"tasks": {"hr": {"task_metrics": {"kappa": {"delta": 0.1, "a": 0.5, "b": 0.6, "test": "mover_unpaired"}}}}})
    assert [(u.label, u.p_value, u.b01) for u in unpaired] == [("hr/kappa (unpaired)", None, None)]
    p, task = token_shift_profiles(json.loads((runs["cand"] / "token_shift.json").read_text()))
    assert p.label == "token shift" and p.shares == pytest.approx({"unshifted": 0.77, "marginal": 0.15, "shifted": 0.08})
    assert p.ci["shifted"] == pytest.approx((0.03, 0.13)) and p.top_tokens[0]["token"] == "<b>Sure"
    assert p.kl[:2] == pytest.approx([0.7, 0.4]) and np.isnan(p.kl[2]) and p.kl[3] == pytest.approx(0.1)  # mean by position
    assert task.label == "hr" and task.shares["unshifted"] == 0.7 and task.kl[0] == pytest.approx(0.7)
    (counts,) = token_shift_profiles({"unshifted": 770, "marginal": 150, "shifted": 80, "kl": [0.9, 0.5]})
    assert counts.shares == pytest.approx({"unshifted": 0.77, "marginal": 0.15, "shifted": 0.08}) and counts.kl == [0.9, 0.5]
    sibling = token_shift_profiles({"profile": {"unshifted": 1, "marginal": 1, "shifted": 2}, "kl_per_position": [1, 2]})
    assert sibling[0].kl == [1.0, 2.0] and sibling[0].shares["shifted"] == 0.5
    assert drift_entries({"x": 1}) == [] and token_shift_profiles([]) == []


def test_judge_eval_shapes() -> None:
    stats = {"accuracy": 0.9, "n": 10}
    assert parse_judge_eval({"judge": "j", **stats}) == {"j": stats}
    assert parse_judge_eval([{"judge": "j", **stats}, {"judge": "k", "accuracy": 0.5}]) == {"j": stats, "k": {"accuracy": 0.5}}
    assert parse_judge_eval({"judges": {"j": {**stats, "cm": [[1]]}}}) == {"j": stats}
    assert parse_judge_eval({"j": stats}) == {"j": stats}
    assert parse_judge_eval("nonsense") == {}


def _rec(v: float, lo: float | None = None, hi: float | None = None, n: int = 10) -> dict:
    return {"value": v, "stderr": None, "ci_low": lo, "ci_high": hi, "n": n}


def test_compression_curve_from_levels_metric_names_and_samples(tmp_path, report) -> None:
    levels = [0.0, 0.25, 0.5, 0.75, 1.0]
    cc = [0.9, 0.7, 0.4, 0.7, 0.85]
    by_level = {f"c={c}": {"constraint_compliance": _rec(v, v - 0.1, v + 0.05), "semantic_accuracy": _rec(1 - c / 2)} for c, v in zip(levels, cc)}
    a = synthetic_run(tmp_path, "cdct-a", {"compression": {"constraint_compliance": _rec(0.71), "by_level": by_level, "by_category": {}}})
    named = {f"constraint_compliance@{c}": _rec(v) for c, v in zip(levels, cc)}
    named.update({f"constraint_compliance_strict@{c}": _rec(v / 2) for c, v in zip(levels, cc)})
    b = synthetic_run(tmp_path, "cdct-b", {"compression": {"constraint_compliance": _rec(0.71), **named}})
    recs = [{"task": "compression", "sample_id": f"{c}-{k}", "category": None, "prompt": "p", "response": "r", "judgments": {},
             "metrics": {"constraint_compliance": float(k < v * 4)}, "meta": {"level": c}} for c, v in zip(levels, cc) for k in range(4)]
    c = synthetic_run(tmp_path, "cdct-c", {"compression": {"constraint_compliance": _rec(0.7)}}, recs)
    for path in (a, b, c):
        data = collect([path])
        curve = level_curve(data.runs, data.samples)
        cc_curve = curve[curve.metric == "constraint_compliance"]
        assert list(cc_curve.level) == levels
        expected = [v if path != c else sum(k < v * 4 for k in range(4)) / 4 for v in cc]
        assert list(cc_curve.value) == pytest.approx(expected)
    assert list(level_curve(collect([a]).runs).query("metric == 'semantic_accuracy'").value) == pytest.approx([1, 0.875, 0.75, 0.625, 0.5])
    strict = level_curve(collect([b]).runs).query("metric == 'constraint_compliance_strict'")
    assert list(strict.level) == levels and list(strict.value) == pytest.approx([v / 2 for v in cc])
    out = tmp_path / "c.html"
    assert report(a, b, "--out", out).returncode == 0
    html = out.read_text()
    assert '<h2 id="sec-compression-levels">Compression levels</h2>' in html and 'alt="Constraint compliance and semantic accuracy by compression level"' in html
    assert "<th>c=0.5</th>" in html
    assert [parse_level(x) for x in ("0.5", "c=0.25", "c0.75", "level_1", "burglary", "2.5", 0.5)] == [0.5, 0.25, 0.75, 1.0, None, None, 0.5]


def test_generic_task_gets_a_plot_and_tables(tmp_path) -> None:
    run = synthetic_run(tmp_path, "h", {"honesty": {"mc1": _rec(0.31, 0.2, 0.4, 40), "elo": _rec(1012.0), "by_category": {}}})
    text, _ = write_report([run], tmp_path / "h.html")
    assert 'alt="honesty: metrics in [0, 1] per run"' in text
    assert "<td>0.310 [0.200, 0.400] (n=40)</td>" in text and "<td>1012.000 (n=10)</td>" in text
    assert "Examples" not in text  # no risk metric, no examples section
