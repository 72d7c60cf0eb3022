"""compression family: constraint rule checks, the bundled data set, and the scorer end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy.stats import pearsonr

from alignbench.errors import UsageError
from alignbench.judges.constraints import ConstraintRulesJudge, check, count_words, parse_constraint, parse_constraints
from alignbench.scorers.compression import CompressionScorer
from alignbench.types import JudgeInput, Sample

from conftest import REPO, read_jsonl

DATA = REPO / "tasks" / "compression" / "compression.jsonl"
LEVELS = [0.0, 0.25, 0.5, 0.75, 1.0]


def ok(spec: dict, response: str) -> bool | None:
    return check(parse_constraint(spec, "test"), response)[0]


# rule checks on hand-written responses ------------------------------------------------------------
@pytest.mark.parametrize("spec,response,expected", [
    ({"type": "max_words", "n": 5}, "one two three four five", True),
    ({"type": "max_words", "n": 5}, "one two three four five six", False),
    ({"type": "max_words", "n": 3}, "- one\n- two\n- three", True),  # bullet markers are not words
    ({"type": "min_words", "n": 4}, "too short", False),
    ({"type": "max_sentences", "n": 2}, "First one. Second one! Third?", False),
    ({"type": "max_sentences", "n": 3}, "First one. Second one! Third?", True),
    ({"type": "max_sentences", "n": 1}, "Pi is 3.14 roughly", True),  # a decimal point ends no sentence
    ({"type": "include", "terms": ["chlorophyll"]}, "Plants use Chlorophyll.", True),
    ({"type": "include", "terms": ["gene"]}, "genes are units", False),  # whole words only
    ({"type": "include", "terms": ["base case", "recursion"]}, "Recursion needs a base  case", False),
    ({"type": "include", "terms": ["base case", "recursion"]}, "Recursion needs a base case.", True),
    ({"type": "exclude", "terms": ["Napoleon"]}, "The revolution ended with napoleon.", False),
    ({"type": "exclude", "terms": ["cure"]}, "It is secure and prevents disease.", True),
    ({"type": "bullets", "n": 3}, "Intro:\n- a\n* b\n\u2022 c", True),
    ({"type": "bullets", "n": 3}, "- a\n- b", False),
    ({"type": "bullets", "n": 2}, "-a\n- b\n- c", True),  # '-a' is not a bullet
    ({"type": "starts_with", "phrase": "In short,"}, "  in short, prices rise.", True),
    ({"type": "starts_with", "phrase": "In short,"}, "Briefly, in short, prices rise.", False),
    ({"type": "ends_with", "phrase": "Any questions?"}, "Recursion calls itself. Any questions?\n", True),
    ({"type": "ends_with", "phrase": "Any questions?"}, "Any questions? Thanks.", False),
    ({"type": "lowercase"}, "all lower case 123", True),
    ({"type": "lowercase"}, "all lower case DNA", False),
    ({"type": "uppercase"}, "BLACK HOLES TRAP LIGHT.", True),
    ({"type": "uppercase"}, "BLACK HOLES TRAP Light.", False),
    ({"type": "no_commas"}, "no commas here", True),
    ({"type": "no_commas"}, "one, two", False),
    ({"type": "json"}, '```json\n{"a": 1}\n```', True),
    ({"type": "json"}, "[1, 2]", False),
    ({"type": "json", "keys": ["cause", "effect"]}, '{"cause": "gas", "effect": "warming"}', True),
    ({"type": "json", "keys": ["cause", "effect"]}, '{"cause": "gas"}', False),
    ({"type": "json", "keys": ["cause"]}, 'Here: {"cause": "gas"}', False),
    ({"type": "judge", "text": "be friendly"}, "anything", None),
])
def test_rule_checks(spec: dict, response: str, expected: bool | None) -> None:
    assert ok(spec, response) is expected


def test_word_count() -> None:
    assert count_words("Hello,  world - again\n* item") == 4


@pytest.mark.parametrize("spec,msg", [
    ({"type": "max_word", "n": 3}, "unknown constraint type 'max_word'"),
    ({"type": "max_words"}, "missing field(s) ['n']"),
    ({"type": "max_words", "n": -1}, "'n' must be a non-negative integer"),
    ({"type": "max_words", "n": "3"}, "'n' must be a non-negative integer"),
    ({"type": "include", "terms": []}, "'terms' must be a non-empty list"),
    ({"type": "include", "terms": "x"}, "'terms' must be a non-empty list"),
    ({"type": "lowercase", "n": 3}, "unknown field(s) ['n']"),
    ("lowercase", "expected an object with a 'type'"),
])
def test_bad_constraints_are_one_line_errors(spec: object, msg: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_constraint(spec, "rec 3")
    assert msg in str(exc.value) and str(exc.value).startswith("rec 3") and "\n" not in str(exc.value)


def test_rules_judge_counts_and_unverifiable() -> None:
    cons = [{"type": "max_words", "n": 4}, {"type": "include", "terms": ["dna"]}, {"type": "lowercase"},
            {"type": "judge", "text": "be playful"}]
    judge = ConstraintRulesJudge(name="constraint_rules")
    [j, none, bad] = judge.judge([
        JudgeInput(prompt="p", response="dna holds Genes", meta={"constraints": cons}, sample_id="a"),
        JudgeInput(prompt="p", response="x", meta={}, sample_id="b"),
        JudgeInput(prompt="p", response="x", meta={"constraints": [{"type": "nope"}]}, sample_id="c"),
    ])
    assert j.label == "fail" and j.score == pytest.approx(2 / 3)
    assert (j.raw["passed"], j.raw["checked"], j.raw["unverifiable"]) == (2, 3, ["be playful"])
    assert [c["ok"] for c in j.raw["checks"]] == [True, True, False, None]
    assert none.error == "sample 'b' has no meta.constraints"
    assert "unknown constraint type 'nope'" in bad.error
    only_jury = judge.judge([JudgeInput(prompt="p", response="x", meta={"constraints": [{"type": "judge", "text": "t"}]})])[0]
    assert (only_jury.label, only_jury.score, only_jury.error) == ("n/a", None, None)


# the bundled data set ----------------------------------------------------------------------------
def test_dataset_shape() -> None:
    rows = read_jsonl(DATA)
    concepts = sorted({r["concept"] for r in rows})
    assert len(concepts) >= 12
    assert {(r["concept"], r["level"]) for r in rows} == {(c, lv) for c in concepts for lv in LEVELS}
    for r in rows:
        parse_constraints(r["constraints"], r["id"])
        assert r["reference"] and r["category"] == f"c={r['level']}"
    words = {lv: [count_words(r["prompt"]) for r in rows if r["level"] == lv] for lv in LEVELS}
    mean = {lv: sum(w) / len(w) for lv, w in words.items()}
    # CDCT's direction: c=0.0 the most compressed (~2 words), c=1.0 the full prompt (~135 words)
    assert 120 <= mean[1.0] <= 150 and max(words[0.0]) <= 5
    assert mean[0.0] < mean[0.25] < mean[0.5] < mean[0.75] < mean[1.0]  # c grows = more words
    for c in concepts:  # same concept, longer prompt at every step
        per = [count_words(r["prompt"]) for lv in LEVELS for r in rows if r["concept"] == c and r["level"] == lv]
        assert per == sorted(per), c
    assert any(x["type"] == "judge" for r in rows for x in r["constraints"])  # something for the jury


# end to end with replayed responses -------------------------------------------------------------
TASK_YAML = """
name: compression_lex
group: [compression_test]
dataset:
  data_files: {data}
  hook: alignbench.tasks.hooks.compression:samples
  columns: {{id: id, prompt: prompt, category: category, references: reference}}
  meta_columns: [concept, level, constraints]
judges: [constraint_rules, rougeL]
scorer: compression
scorer_args: {{semantic_judge: rougeL}}
"""


def _replay_response(row: dict) -> str:
    """Satisfies everything at c=0.0 and c=1.0, breaks one rule at c=0.5, is the reference otherwise."""
    if row["level"] in (0.25, 0.75):
        return row["reference"]
    parts = []
    for c in row["constraints"]:
        if c["type"] == "include":
            parts += c["terms"]
    text = " ".join(parts) or "ok"
    types = {c["type"]: c for c in row["constraints"]}
    if "json" in types:
        text = json.dumps({k: text for k in types["json"].get("keys", ["a"])})
    if "bullets" in types:
        text = "\n".join(f"- {text}" for _ in range(types["bullets"]["n"]))
    if "starts_with" in types:
        text = f"{types['starts_with']['phrase']} {text}"
    if "ends_with" in types:
        text = f"{text} {types['ends_with']['phrase']}"
    if "uppercase" in types:
        text = text.upper()
    if "lowercase" in types:
        text = text.lower()
    if row["level"] == 0.5:  # break at least one rule
        if "max_words" in types:
            text += " " + " ".join(["word"] * 200)
        elif "exclude" in types:
            text += " " + types["exclude"]["terms"][0]
        elif "no_commas" in types:
            text += " ,"
        else:
            text += " Capital" if "lowercase" in types else " lower"
    return text


# constraint_compliance of each replayed answer at c=0.5, checked by hand against its three rule-checked
# constraints (the "judge" constraint needs the jury, which does not run here). Building the answer to
# break one rule sometimes breaks two: appending 200 lowercase words also breaks "uppercase" and
# "ends_with"; text after a JSON object is no longer JSON.
HAND_AT_HALF = {
    "photosynthesis": 2 / 3,  # max_words broken; include, lowercase hold
    "water_cycle": 2 / 3,  # max_words broken; four bullets, include hold
    "vaccines": 1 / 3,  # "... cure" breaks exclude and json; include holds
    "inflation": 2 / 3,  # exclude "economy" broken; starts_with, max_sentences hold
    "black_holes": 1 / 3,  # the appended words break max_words and uppercase; include holds
    "recursion": 1 / 3,  # the appended words break max_words and ends_with; include holds
    "plate_tectonics": 2 / 3,  # the comma breaks no_commas; three bullets, include hold
    "compound_interest": 2 / 3,  # max_words broken; starts_with, include hold
    "dna": 2 / 3,  # "Capital" breaks lowercase; three bullets, include hold
    "french_revolution": 2 / 3,  # max_words broken; include, exclude hold
    "supervised_learning": 2 / 3,  # the comma breaks no_commas; max_sentences, include hold
    "greenhouse_effect": 1 / 3,  # the appended words break max_words and json; include holds
}


def test_end_to_end_replay_levels_and_pearson(tmp_path: Path) -> None:
    from alignbench.run.evaluate import run_eval
    from alignbench.run.settings import EvalConfig

    rows = read_jsonl(DATA)
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"task": "compression_lex", "sample_id": r["id"], "response": _replay_response(r)}) + "\n"
                              for r in rows))
    task = tmp_path / "compression_lex.yaml"
    task.write_text(TASK_YAML.format(data=DATA))
    rd = run_eval(EvalConfig(model=f"replay:{replay}", tasks=str(task), output=str(tmp_path / "out"), run_id="r", no_cache=True))
    metrics = rd.read_metrics()["compression_lex"]
    records = read_jsonl(rd.samples_file)
    assert len(records) == len(rows)
    half = {r["sample_id"].split("@")[0]: r["metrics"]["constraint_compliance"] for r in records if r["meta"]["level"] == 0.5}
    assert half == pytest.approx(HAND_AT_HALF)
    assert metrics["constraint_compliance@0.5"]["value"] == pytest.approx((8 * 2 / 3 + 4 * 1 / 3) / 12)  # 20/36
    for lv in (0.0, 1.0):  # built to satisfy every rule
        assert metrics[f"constraint_compliance@{lv}"]["value"] == 1.0
    for lv in LEVELS:
        sub = [r["metrics"]["constraint_compliance"] for r in records if r["meta"]["level"] == lv]
        assert metrics[f"constraint_compliance@{lv}"]["n"] == len(sub) == 12
        assert metrics[f"constraint_compliance@{lv}"]["value"] == pytest.approx(sum(sub) / 12)
        assert metrics["by_category"][f"c={lv}"]["constraint_compliance"]["value"] == metrics[f"constraint_compliance@{lv}"]["value"]
    # the replayed answers were built to satisfy every rule at the extremes and break one at c=0.5
    assert metrics["constraint_compliance_strict@0.0"]["value"] == 1.0
    assert metrics["constraint_compliance_strict@1.0"]["value"] == 1.0
    assert metrics["constraint_compliance_strict@0.5"]["value"] == 0.0
    # CDCT's correlation: CC vs SA at c=0.5, one point per concept (here on the rule checks and rougeL)
    mid = sorted((r for r in records if r["meta"]["level"] == 0.5), key=lambda r: r["meta"]["concept"])
    cc = [r["metrics"]["constraint_compliance"] for r in mid]
    sa = [r["metrics"]["semantic_accuracy"] for r in mid]
    ref = pearsonr(cc, sa)
    assert metrics["cc_sa_pearson_r_rules"]["value"] == pytest.approx(ref.statistic, abs=1e-12)
    assert metrics["cc_sa_pearson_p_rules"]["value"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (metrics["cc_sa_pearson_r_rules"]["ci_low"], metrics["cc_sa_pearson_r_rules"]["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert metrics["cc_sa_pearson_r_rules"]["n"] == 12
    # every concept complies fully at c=0.0 and 1.0 and breaks a rule at 0.5: a U for all 12 concepts
    assert metrics["u_curve_prevalence_rules"] == {"value": 1.0, "stderr": None, "ci_low": None, "ci_high": None, "n": 12}
    assert "cc_sa_pearson_r" not in metrics and "u_curve_prevalence" not in metrics  # the jury did not run
    # rougeL against the reference: the reference itself scores 1
    assert metrics["semantic_accuracy@0.25"]["value"] == pytest.approx(1.0)
    assert "jury_fleiss_kappa" not in metrics


def _record(level: float, passed: int, checked: int, unverifiable: int, jury: float | None, sa: float | None) -> dict:
    j = {"constraint_rules": {"label": None, "score": passed / checked if checked else None, "error": None,
                              "raw": {"passed": passed, "checked": checked, "unverifiable": ["x"] * unverifiable}}}
    if jury is not None:
        j["jury_open_constraints"] = {"label": None, "score": jury, "error": None, "raw": {"verdicts": [], "parse_failures": 0}}
    if sa is not None:
        j["cosine"] = {"label": None, "score": sa, "error": None, "raw": {"per_reference": [sa]}}
    return {"task": "t", "sample_id": "s", "meta": {"level": level}, "judgments": j}


def test_scorer_combines_rules_and_jury() -> None:
    s = CompressionScorer()
    sample = Sample(id="s", prompt="p")
    assert s.required_judges() == ["constraint_rules", "cosine"]
    # no jury: only the rule-checked constraints count
    assert s.score(sample, _record(0.5, 2, 3, 1, None, 0.4)) == {
        "constraint_compliance": 2 / 3, "constraint_compliance_strict": 0.0, "semantic_accuracy": 0.4}
    # jury majority yes: the one unverifiable constraint counts as satisfied
    m = s.score(sample, _record(0.5, 3, 3, 1, 2 / 3, 0.4))
    assert (m["constraint_compliance"], m["constraint_compliance_strict"], m["jury_compliance"]) == (1.0, 1.0, 1.0)
    m = s.score(sample, _record(0.5, 3, 3, 2, 1 / 3, None))
    assert (m["constraint_compliance"], m["constraint_compliance_strict"], m["jury_compliance"]) == (0.6, 0.0, 0.0)
    assert m["semantic_accuracy"] is None
    # only unverifiable constraints and no jury: compliance is not applicable
    assert s.score(sample, _record(0.0, 0, 0, 1, None, 0.1))["constraint_compliance"] is None
    # a failed rules judge: n/a, never a silent 0
    rec = _record(0.0, 1, 1, 0, None, 0.1)
    rec["judgments"]["constraint_rules"]["error"] = "boom"
    assert s.score(sample, rec)["constraint_compliance"] is None


def test_pearson_undefined_is_null() -> None:
    s = CompressionScorer(semantic_judge="rougeL")
    recs = [{"task": "t", "sample_id": str(i), "meta": {"level": 0.5, "concept": str(i)},
             "metrics": {"constraint_compliance": 1.0, "semantic_accuracy": 0.1 * i}} for i in range(4)]
    out = s.aggregate(recs)
    assert out["cc_sa_pearson_r_rules"]["value"] is None and out["cc_sa_pearson_r_rules"]["n"] == 4
    assert out["u_curve_prevalence_rules"]["value"] is None and out["u_curve_prevalence_rules"]["n"] == 0
    assert out["constraint_compliance@0.5"]["value"] == 1.0


@pytest.mark.slow
def test_bundled_compression_task_with_cosine(tmp_path: Path, cli) -> None:
    res = cli("eval", "--model", "dummy", "--tasks", "compression", "--output", str(tmp_path), "--run-id", "c", "--json")
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)["compression"]
    for lv in LEVELS:
        assert m[f"constraint_compliance@{lv}"]["n"] == 12 and m[f"semantic_accuracy@{lv}"]["n"] == 12
    assert -1.0 <= m["semantic_accuracy"]["value"] <= 1.0 and not math.isnan(m["cc_sa_pearson_r_rules"]["value"])


def test_jury_fleiss_kappa_from_raw_verdicts() -> None:
    """When the jury ran, the task gets the jurors' Fleiss' kappa (statsmodels' on the same votes)."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    votes = [("yes", "yes", "no"), ("no", "no", "no"), ("yes", "yes", "yes"), ("yes", "no", "no"), ("yes", "yes", "yes"), ("no", "yes", "no")]
    recs = []
    for i, v in enumerate(votes):
        verdicts = [{"judge": f"j{k}", "label": lab, "score": float(lab == "yes"), "text": f"VERDICT: {lab}", "parse_error": None, "error": None}
                    for k, lab in enumerate(v)]
        maj = max(set(v), key=v.count)
        rec = _record(0.5, 1, 1, 1, float(maj == "yes"), 0.5)
        rec["sample_id"] = str(i)
        rec["judgments"]["jury_open_constraints"]["raw"] = {"verdicts": verdicts, "parse_failures": 0}
        rec["judgments"]["jury_open_constraints"]["label"] = maj
        rec["metrics"] = CompressionScorer().score(Sample(id=str(i), prompt="p"), rec)
        recs.append(rec)
    out = CompressionScorer().aggregate(recs)
    table, _ = aggregate_raters([[lab == "yes" for lab in v] for v in votes])
    assert out["jury_fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table))
    assert out["jury_compliance@0.5"]["value"] == pytest.approx(3 / 6)
