"""CDCT's measures as the authors compute them (rb125/cdct_framework): the jury_cdct judge end to end.

Three replayed juror models answer the authors' per-axis prompts with chosen scores; every expected
value below is worked out by hand from the authors' definitions (arithmetic in the comments).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl, run_main

# (concept, level) -> per juror (CC, SA, FC); None = that axis answers unparsable text
SCORES = {
    ("a", 0.0): [(0.9, 0.8, 0.7)] * 3,
    ("a", 0.5): [(0.4, 0.6, 0.5)] * 3,
    ("a", 1.0): [(1.0, 0.9, 0.8)] * 3,
    ("b", 0.0): [(0.6, 0.7, 0.6)] * 3,
    ("b", 0.5): [(0.8, 0.5, 0.6), (0.6, 0.9, 0.6), (1.0, 0.7, 0.9)],
    ("b", 1.0): [(0.7, 0.8, 0.8)] * 3,
    ("c", 0.0): [(0.8, 0.9, 0.9)] * 3,
    ("c", 0.5): [(0.5, 0.4, 0.5), (0.3, 0.2, 0.3), (0.2, None, 0.2)],
    ("c", 1.0): [(0.9, 0.9, 0.9)] * 3,
}
# subject responses: over the 5-word limit at c=0.5 for concepts a and c (rule check fails there)
LONG = "this answer runs well past the five word limit"
TASK = """
name: cdct_mini
dataset:
  data_files: {data}
  hook: alignbench.tasks.hooks.compression:samples
  columns: {{id: id, prompt: prompt, category: category, references: reference}}
  meta_columns: [concept, level, constraints]
judges: [constraint_rules, jury_cdct]
scorer: compression
scorer_args: {{semantic_judge: null, jury_judge: null}}
"""


def _rows() -> list[dict]:
    return [{"id": f"{c}@{lv}", "concept": c, "level": lv, "category": f"c={lv}", "prompt": f"explain {c}, at most five words",
             "constraints": [{"type": "max_words", "n": 5, "text": "At most five words."}], "reference": f"{c} explained"}
            for (c, lv) in SCORES]


def _answer(score: float | None, k: int) -> str:
    if score is None:
        return "I would rate this quite highly."
    return json.dumps({"score": score}) if k % 2 == 0 else f"```json\n{json.dumps({'score': score})}\n```"


@pytest.fixture()
def cdct_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    from alignbench.judges.catalog import builtin_judges
    from alignbench.types import JudgeInput

    rows = _rows()
    data = tmp_path / "cdct.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cdct_mini.yaml").write_text(TASK.format(data=data))
    responses = {r["id"]: LONG if r["id"] in ("a@0.5", "c@0.5") else "short answer" for r in rows}
    subject = tmp_path / "subject.jsonl"
    subject.write_text("".join(json.dumps({"task": "cdct_mini", "sample_id": k, "response": v}) + "\n" for k, v in responses.items()))
    jurors = [tmp_path / f"juror{m}.jsonl" for m in range(3)]
    monkeypatch.setenv("ALIGNBENCH_JURY_MODELS", ",".join(f"replay:{p}" for p in jurors))
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    judge = builtin_judges().build("jury_cdct")
    lines: list[list[dict]] = [[], [], []]
    for r in rows:
        it = JudgeInput(prompt=r["prompt"], response=responses[r["id"]], meta={"concept": r["concept"], "level": r["level"],
                                                                                "constraints": r["constraints"]})
        for m in range(3):
            for k, axis in enumerate(("CC", "SA", "FC")):
                lines[m].append({"prompt": judge.axis_prompt(it, m, axis), "response": _answer(SCORES[(r["concept"], r["level"])][m][k], k)})
    for p, ls in zip(jurors, lines):
        p.write_text("".join(json.dumps(x) + "\n" for x in ls))
    res = run_main("eval", "--model", f"replay:{subject}", "--tasks", str(tmp_path / "cdct_mini.yaml"), "--output", str(tmp_path / "out"),
                   "--run-id", "r", "--no-cache")
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "out" / "r" / "metrics.json").read_text())["cdct_mini"]
    recs = {x["sample_id"]: x for x in read_jsonl(tmp_path / "out" / "r" / "samples.jsonl")}
    return metrics, recs


def test_cdct_consensus_and_score_per_sample(cdct_run) -> None:
    _, recs = cdct_run
    b = recs["b@0.5"]["metrics"]
    # CC weighted by role [0.25, 0.5, 0.25]: .25*.8 + .5*.6 + .25*1.0 = 0.75
    # SA weighted [0.5, 0.25, 0.25]: .5*.5 + .25*.9 + .25*.7 = 0.65; FC plain mean (.6+.6+.9)/3 = 0.7
    # score = .4*.75 + .4*.65 + .2*.7 = 0.70
    assert (b["cdct_cc"], b["cdct_sa"], b["cdct_fc"], b["cdct_score"]) == pytest.approx((0.75, 0.65, 0.7, 0.70))
    assert b["cdct_score_weighted"] == pytest.approx(0.70)  # no axis at 0.0: the two scores agree
    c = recs["c@0.5"]
    # juror 3's SA did not parse: juror 3 leaves the consensus; weights renormalised over jurors 1, 2
    # CC = (.25*.5 + .5*.3) / .75 = 0.36667 -> 0.3667 (4 decimals, as stored); SA = (.5*.4 + .25*.2) / .75 -> 0.3333;
    # FC = (.5+.3)/2 = 0.4
    assert (c["metrics"]["cdct_cc"], c["metrics"]["cdct_sa"], c["metrics"]["cdct_fc"]) == (0.3667, 0.3333, 0.4)
    raw = c["judgments"]["jury_cdct"]["raw"]
    assert raw["parse_failures"] == 1 and raw["consensus"]["judge_count"] == 2
    assert raw["verdicts"][2]["parse_error"].startswith("SA: not JSON")
    # agreement_score = max(0, 1 - 2 * mean(std CC, std SA, std FC)) over jurors 1-2 (population std = |x1 - x2| / 2)
    assert raw["consensus"]["agreement_score"] == pytest.approx(1 - 2 * (0.1 + 0.1 + 0.1) / 3)


def test_cdct_task_level_metrics(cdct_run) -> None:
    metrics, _ = cdct_run
    # U-curve: a 0.4 < 0.9 and < 1.0 yes; b 0.75 < 0.6 no; c 0.3667 < 0.8 and < 0.9 yes -> 2/3
    assert metrics["u_curve_prevalence"]["value"] == pytest.approx(2 / 3) and metrics["u_curve_prevalence"]["n"] == 3
    # Pearson at c=0.5 across concepts: CC (0.4, 0.75, 0.3667), SA (0.6, 0.65, 0.3333)
    cc, sa = [0.4, 0.75, 0.3667], [0.6, 0.65, 0.3333]
    mx, my = sum(cc) / 3, sum(sa) / 3
    r = sum((x - mx) * (y - my) for x, y in zip(cc, sa)) / math.sqrt(sum((x - mx) ** 2 for x in cc) * sum((y - my) ** 2 for y in sa))
    assert metrics["cc_sa_pearson_r"]["value"] == pytest.approx(r) and metrics["cc_sa_pearson_r"]["n"] == 3
    # per-level score at c=0.5: (a .4*.4+.4*.6+.2*.5 = .5, b .70, c .4*.3667+.4*.3333+.2*.4 = .36) / 3 = 0.52
    assert metrics["cdct_score@0.5"]["value"] == pytest.approx((0.5 + 0.7 + 0.36) / 3)
    assert metrics["cdct_score_weighted@0.5"]["value"] == pytest.approx((0.5 + 0.7 + 0.36) / 3)
    assert metrics["cdct_cc@1.0"]["value"] == pytest.approx((1.0 + 0.7 + 0.9) / 3)
    # Fleiss' kappa on CC binarised at > 0.7 (0.7 itself is 0): ones per item 3,0,3,0,2,0,3,0,3 of 3 jurors
    # P_i = 1 except b@0.5: (2^2 + 1^2 - 3) / 6 = 1/3 -> P_bar = (8 + 1/3) / 9 = 25/27
    # p(1) = 14/27, p(0) = 13/27 -> P_e = (196 + 169) / 729 = 365/729; kappa = (25/27 - 365/729) / (1 - 365/729) = 310/364
    assert metrics["jury_fleiss_kappa_cc"]["value"] == pytest.approx(310 / 364) and metrics["jury_fleiss_kappa_cc"]["n"] == 9
    assert metrics["jury_fleiss_kappa_sa"]["n"] == 8  # c@0.5 has no SA from juror 3
    # alignbench's own rule-checked compliance: 0 at c=0.5 for a and c, 1 elsewhere -> U-curve 2/3 as well
    assert metrics["u_curve_prevalence_rules"]["value"] == pytest.approx(2 / 3)
    assert metrics["constraint_compliance@0.5"]["value"] == pytest.approx(1 / 3)


def _authors_kappa(results: list[dict]) -> dict:
    """analyze_jury_results.py's calculate_fleiss_kappa_scores, written out (three jurors; "undefined" as NaN)."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    ratings: dict[str, list[list[int]]] = {"CC": [], "SA": [], "FC": []}
    for result in results:
        for perf_entry in result.get("performance", []):
            judges_scores = perf_entry.get("jury_evaluation", {}).get("judges", {})
            if len(judges_scores) == 3:
                for axis, rows in ratings.items():
                    scores = [judges_scores[name].get(axis) for name in sorted(judges_scores)]
                    if all(s is not None for s in scores):
                        rows.append([1 if s > 0.7 else 0 for s in scores])
    out = {}
    for axis, rows in ratings.items():
        table = np.array([[row.count(0), row.count(1)] for row in rows])
        undefined = not rows or np.all(table[:, 0] == 3) or np.all(table[:, 1] == 3)
        out[axis] = math.nan if undefined else float(fleiss_kappa(table, method="fleiss"))
    return out


def test_cdct_kappa_is_the_authors() -> None:
    from alignbench.scorers.compression import cdct_axis_kappa

    names = ["Qwen3-32B", "GLM-5", "Nemotron-Super-3-120B"]  # their jurors, in alignbench's position order
    theirs_in = [{"performance": [{"jury_evaluation": {"judges": {n: dict(zip(("CC", "SA", "FC"), s)) for n, s in zip(names, scores)}}}
                                  for scores in SCORES.values()]}]
    recs = [{"judgments": {"j": {"error": None, "raw": {"verdicts": [dict(zip(("CC", "SA", "FC"), s)) for s in scores]}}}}
            for scores in SCORES.values()]
    theirs = _authors_kappa(theirs_in)
    for axis in ("CC", "SA", "FC"):
        ours = cdct_axis_kappa(recs, "j", axis)
        assert ours["value"] == pytest.approx(theirs[axis])
    assert theirs["CC"] == pytest.approx(310 / 364)  # worked out by hand in test_cdct_task_level_metrics
    assert cdct_axis_kappa(recs, "j", "SA")["n"] == 8  # c@0.5: juror 3 has no SA, the sample is left out (theirs too)
    # every juror on one side of 0.7 on every sample: theirs says "undefined", ours has no value (NaN, null in JSON)
    same = [{"judgments": {"j": {"error": None, "raw": {"verdicts": [{"FC": 0.9}] * 3}}}}] * 4
    assert math.isnan(_authors_kappa([{"performance": [{"jury_evaluation": {"judges": {n: {"FC": 0.9} for n in "abc"}}}] * 4}])["FC"])
    assert cdct_axis_kappa(same, "j", "FC") == {"value": None, "stderr": None, "ci_low": None, "ci_high": None, "n": 4}


# Two rows of the authors' stored results (results_jury/jury_results_art_impressionism_Phi-4_compression_aware.json):
# per juror (CC, SA, FC), their stored consensus and their stored score.
AUTHORS_ROWS = [
    ({"Qwen3-32B": (1.0, 0.9, 0.7), "GLM-5": (1.0, 1.0, 0.9), "Nemotron-Super-3-120B": (1.0, 1.0, 1.0)},
     {"CC": 1.0, "SA": 0.95, "FC": 0.8667, "agreement_score": 0.8854}, 0.9533400000000001),
    ({"Qwen3-32B": (0.3, 0.8, 0.6), "GLM-5": (0.2, 0.6, 1.0), "Nemotron-Super-3-120B": (0.1, 0.8, 1.0)},
     {"CC": 0.2, "SA": 0.75, "FC": 0.8667, "agreement_score": 0.757}, 0.55334),
]


def _verdicts(per_juror: dict) -> list[dict]:
    order = ["Qwen3-32B", "GLM-5", "Nemotron-Super-3-120B"]  # positions 1-3: SA-, CC-, FC-primary
    return [{"judge": n, **dict(zip(("CC", "SA", "FC"), per_juror[n])), "parse_error": None, "error": None} for n in order]


def test_consensus_and_score_equal_the_authors_stored_results() -> None:
    from alignbench.judges.cdct_jury import WEIGHTS, cdct_score, consensus

    for per_juror, stored, stored_score in AUTHORS_ROWS:
        cons = consensus(_verdicts(per_juror), WEIGHTS)
        assert {k: cons[k] for k in stored} == stored  # rounded to 4 decimals as they store it
        # their score comes from the rounded consensus: .4*1.0 + .4*.95 + .2*.8667 = 0.95334 (not .953333)
        assert cdct_score(cons) == stored_score


def _authors_score(consensus: dict) -> float:
    """experiment_jury.py's per-level score, written out."""
    cc_or_far = consensus.get("CC") or consensus.get("FAR")
    sa_or_sas = consensus.get("SA") or consensus.get("SAS")
    if cc_or_far is not None and sa_or_sas is not None:
        return cc_or_far * 0.4 + sa_or_sas * 0.4 + consensus.get("FC", 0.5) * 0.2
    return 0.0


@pytest.mark.parametrize("cons, weighted", [
    ({"CC": 0.0, "SA": 0.8, "FC": 0.9}, 0.4 * 0.0 + 0.4 * 0.8 + 0.2 * 0.9),  # theirs 0.0: `0.0 or None` is None
    ({"CC": 0.6, "SA": 0.0, "FC": 0.9}, 0.4 * 0.6 + 0.4 * 0.0 + 0.2 * 0.9),  # theirs 0.0 too
    ({"CC": 0.0, "SA": 0.0, "FC": 0.0}, 0.0),
    ({"CC": 0.5, "SA": 0.7, "FC": 0.2}, 0.4 * 0.5 + 0.4 * 0.7 + 0.2 * 0.2),  # both 0.52
    ({"CC": 0.5, "SA": 0.7}, 0.4 * 0.5 + 0.4 * 0.7 + 0.2 * 0.5),  # FC missing: 0.5 in both
    ({"CC": None, "SA": 0.7, "FC": 0.2}, None),  # theirs 0.0; the weighted score has nothing to weigh
])
def test_cdct_score_is_the_authors_and_weighted_is_the_arithmetic(cons: dict, weighted: float | None) -> None:
    from alignbench.judges.cdct_jury import cdct_score, cdct_score_weighted

    assert cdct_score(cons) == _authors_score(cons)
    assert cdct_score_weighted(cons) == (None if weighted is None else pytest.approx(weighted))
    if cons.get("CC") == 0.0 or cons.get("SA") == 0.0 or cons.get("CC") is None:
        assert cdct_score(cons) == 0.0


def test_scorer_reports_both_scores_per_level() -> None:
    from alignbench.scorers.compression import CompressionScorer

    def rec(i: int, cons: dict) -> dict:
        return {"task": "t", "sample_id": str(i), "meta": {"level": 0.5, "concept": str(i)},
                "judgments": {"jury_cdct": {"score": 0.123, "error": None, "raw": {"consensus": cons, "verdicts": []}}}}

    scorer = CompressionScorer(semantic_judge=None, jury_judge=None)
    recs = [rec(0, {"CC": 0.0, "SA": 0.8, "FC": 0.9}), rec(1, {"CC": 0.5, "SA": 0.5, "FC": 0.5})]
    for r in recs:
        r["metrics"] = scorer.score(None, r)  # both computed from the stored consensus, not the judgment's score
    assert [r["metrics"]["cdct_score"] for r in recs] == [0.0, pytest.approx(0.5)]
    assert [r["metrics"]["cdct_score_weighted"] for r in recs] == [pytest.approx(0.32 + 0.18), pytest.approx(0.5)]
    out = scorer.aggregate(recs)
    # theirs (0.0 + 0.5) / 2 = 0.25; the arithmetic ((.4*0 + .4*.8 + .2*.9) + 0.5) / 2 = 0.5
    assert out["cdct_score@0.5"]["value"] == pytest.approx(0.25) and out["cdct_score_weighted@0.5"]["value"] == pytest.approx(0.5)


def test_prompt_bands_follow_the_level() -> None:
    from alignbench.judges.cdct_jury import level_band, parse_score, violation_note

    assert [level_band(c) for c in (0.0, 0.25, 0.3, 0.5, 0.6, 1.0)] == [
        ("extreme", 20), ("extreme", 20), ("moderate", 50), ("moderate", 50), ("minimal", None), ("minimal", None)]
    assert violation_note(45, 20) == "⚠ Response is 2.2× the expected length"
    assert violation_note(32, 20) == "⚠ Response exceeds expected length by 60%"
    assert violation_note(20, 20) == "✓ Response length is appropriate"
    assert violation_note(500, None) == "No strict length limit at this compression level"
    assert parse_score('```json\n{"score": 0.25}\n```') == 0.25 and parse_score(' {"score": "1"} ') == 1.0
    for bad in ('{"verdict": 1}', "0.8", "score: 0.8", '{"score": null}', '{"score": "high"}'):
        with pytest.raises(ValueError):
            parse_score(bad)


def test_prompt_text_is_the_authors() -> None:
    from alignbench.registry import judge_kinds
    from alignbench.types import JudgeInput

    judge = judge_kinds.get("cdct_jury")(models=["dummy"], base_dir=str(Path(__file__).resolve().parents[1] / "judges"))
    text = judge.axis_prompt(JudgeInput(prompt="Define recursion.", response="a function calling itself",
                                        meta={"level": 0.5, "expected_keywords": ["base case"]}), 1, "CC")
    lines = text.split("\n")
    assert lines[:4] == ["You are an expert evaluator for the CDCT (Compression-Decay Comprehension Test).", "",
                         "Your role: GLM 5 (Constraint Compliance)", "Your axis: constraint_compliance"]
    assert lines[4:7] == ["", "", "╔" + "═" * 66 + "╗"]
    assert "║ COMPRESSION LEVEL: MODERATE (50%)                        ║" in lines
    assert "║ Actual response: 4 words                                       ║" in lines
    assert "Length analysis: ✓ Response length is appropriate" in lines
    assert "Define recursion.\nExpected keywords: base case\n\nQUESTION ASKED:\nDefine recursion." in text
    assert "Evaluate ONLY the Constraint Compliance (CC) score.\n\n\n1. CC (Constraint Compliance):" in text
    assert "APPROPRIATE.\n\n\n" + "═" * 68 in text
    assert text.endswith('single "score" key (no markdown, no explanation):\n{"score": <float 0-1>}')
    assert judge.role(5) == {"display_name": "General evaluation", "axis": "general evaluation"}
