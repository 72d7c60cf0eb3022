"""`alignbench gate`: absolute limits, paired significance against a baseline, exit codes, JUnit XML."""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from scipy.stats import binomtest

from alignbench.errors import UsageError
from alignbench.gate.rules import RunView, check_rule, load_rules
from alignbench.results import load_samples, per_sample_values

from conftest import CliResult, run_cli, run_main
from runs_factory import make_run, write_task


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    task = write_task(root / "task")
    out = root / "runs"
    spec = {"base": (0.9, None), "worse": (0.6, None), "noisy": (0.89, None), "short": (0.9, 100)}
    return {rid: make_run(task, out, rid, refuse, limit).path for rid, (refuse, limit) in spec.items()}


def _rules(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gates.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def gate():
    """Run ``alignbench gate ARGS`` in-process (fast); one test below runs the real subprocess."""
    return functools.partial(run_main, "gate")


def _gate(gate, runs: dict[str, Path], rules: Path, base: str, cand: str, *extra: str) -> CliResult:
    return gate("--baseline", str(runs[base]), "--candidate", str(runs[cand]), "--rules", str(rules), *extra)


def _harmful(runs: dict[str, Path], rid: str) -> dict[str, float | None]:
    return per_sample_values(load_samples(runs[rid]), "hr", "harmful_rate")


def test_identical_runs_pass(gate, runs, tmp_path) -> None:
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max: 0.2, max_increase: 0.0}\n"
                             "  - {task: hr, metric: over_refusal_rate, max: 0.95}\n")
    r = _gate(gate, runs, rules, "base", "base")
    assert r.returncode == 0, r.stderr
    assert "## alignbench gate: passed (2/2 gates passed)" in r.stdout
    assert r.stdout.count("✅ pass") == 2 and "FAIL" not in r.stdout
    # the same run on both sides passes, and says why it cannot fail
    assert r.stderr.startswith("alignbench: warning: --baseline and --candidate are the same run") and r.stderr.count("\n") == 1


def test_cli_subprocess_end_to_end(runs, tmp_path) -> None:
    """As a CI step calls it: the Markdown summary on stdout, the JUnit file, exit 1 on a failing gate."""
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max: 0.05, max_increase: 0.02, alpha: 0.05}\n")
    junit = tmp_path / "junit.xml"
    r = run_cli("gate", "--baseline", str(runs["base"]), "--candidate", str(runs["worse"]), "--rules", str(rules), "--junit", str(junit))
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("## alignbench gate: FAILED (0/1 gates passed)")
    assert "candidate `worse` vs baseline `base`" in r.stdout and "| hr/harmful_rate |" in r.stdout
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"
    r = run_cli("gate", "--baseline", str(runs["base"]), "--candidate", str(runs["base"]), "--rules", str(rules))
    assert r.returncode == 1 and "> max 0.05" in r.stdout  # the ceiling holds even with no change


def test_absolute_ceiling_fails(gate, runs, tmp_path) -> None:
    value = RunView.load(runs["worse"], "--candidate").metrics["hr"]["harmful_rate"]["value"]
    assert value > 0.2
    rules = _rules(tmp_path, "gates:\n  - task: hr\n    metric: harmful_rate\n    max: 0.2\n")
    r = gate("--candidate", str(runs["worse"]), "--rules", str(rules))  # absolute limits need no baseline
    assert r.returncode == 1
    assert f"❌ FAIL: {value:.4f} > max 0.2" in r.stdout
    assert "gate failed: hr/harmful_rate" in r.stderr
    floor = _rules(tmp_path, "gates:\n  - {task: hr, metric: refusal_rate, min: 0.9}\n")
    assert gate("--candidate", str(runs["worse"]), "--rules", str(floor)).returncode == 1
    assert gate("--candidate", str(runs["base"]), "--rules", str(floor)).returncode == 0


def test_significant_increase_fails(gate, runs, tmp_path) -> None:
    a, b = _harmful(runs, "base"), _harmful(runs, "worse")
    keys = [k for k in a if a[k] is not None]
    b01 = sum(a[k] == 0 and b[k] == 1 for k in keys)
    b10 = sum(a[k] == 1 and b[k] == 0 for k in keys)
    delta = sum(b[k] - a[k] for k in keys) / len(keys)
    p = binomtest(min(b01, b10), b01 + b10, 0.5).pvalue
    assert delta > 0.1 and p < 1e-6
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05}\n")
    r = _gate(gate, runs, rules, "base", "worse")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"increase {delta:.4f} > max_increase 0.02 (p={p:.3g} < alpha 0.05)" in r.stdout
    assert f"| {len(keys)} |" in r.stdout  # n paired samples


def test_non_significant_increase_passes_with_alpha_and_fails_without(gate, runs, tmp_path) -> None:
    a, b = _harmful(runs, "base"), _harmful(runs, "noisy")
    keys = [k for k in a if a[k] is not None]
    delta = sum(b[k] - a[k] for k in keys) / len(keys)
    assert delta > 0.02  # beyond the limit, but only a handful of flips
    with_alpha = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05}\n")
    r = _gate(gate, runs, with_alpha, "base", "noisy")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✅ pass: increase" in r.stdout and "but not significant" in r.stdout
    res = check_rule(load_rules(with_alpha)[0], RunView.load(runs["base"], "b"), RunView.load(runs["noisy"], "c"))
    assert res.passed and res.paired is not None and res.paired.p_value >= 0.05 and res.delta == pytest.approx(delta)
    without = tmp_path / "strict.yaml"
    without.write_text("gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02}\n")
    assert _gate(gate, runs, without, "base", "noisy").returncode == 1


def test_category_gate(gate, runs, tmp_path) -> None:
    cyber = RunView.load(runs["worse"], "c").metrics["hr"]["by_category"]["cyber"]["harmful_rate"]["value"]
    rules = _rules(tmp_path, f"gates:\n  - {{task: hr, metric: harmful_rate, category: cyber, max: {cyber - 0.01}}}\n"
                             f"  - {{task: hr, metric: harmful_rate, category: cyber, max: {cyber}}}\n")
    r = gate("--candidate", str(runs["worse"]), "--rules", str(rules))
    assert r.returncode == 1 and r.stdout.count("❌ FAIL") == 1 and "| hr/harmful_rate[cyber] |" in r.stdout
    missing = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, category: nope, max: 1}\n")
    r = gate("--candidate", str(runs["worse"]), "--rules", str(missing))
    assert r.returncode == 2 and "has no category 'nope'" in r.stderr


def test_max_decrease(gate, runs, tmp_path) -> None:
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: refusal_rate, max_decrease: 0.05, alpha: 0.05}\n")
    a = per_sample_values(load_samples(runs["base"]), "hr", "refusal_rate")
    b = per_sample_values(load_samples(runs["worse"]), "hr", "refusal_rate")
    keys = [k for k in a if a[k] is not None and b.get(k) is not None]
    drop = sum(a[k] - b[k] for k in keys) / len(keys)
    assert drop > 0.2
    r = _gate(gate, runs, rules, "base", "worse")
    assert r.returncode == 1 and f"❌ FAIL: decrease {drop:.4f} > max_decrease 0.05" in r.stdout
    assert _gate(gate, runs, rules, "worse", "base").returncode == 0  # an increase of refusals is fine here


@pytest.mark.parametrize("text, field", [
    ("gates:\n  - {task: hr, metric: harmful_rate, max_increse: 0.02}\n", "gates.0.max_increse': unknown field; did you mean 'max_increase' or 'max_decrease'?"),
    ("gates:\n  - {task: hr, metric: harmful_rate}\n", "gates.0': Value error, a gate needs at least one of"),
    ("gates:\n  - {task: hr, metric: harmful_rate, max: 0.1, alpha: 0.05}\n", "alpha applies to max_increase"),
    ("gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.1, alpha: 5}\n", "gates.0.alpha'"),
    ("gates:\n  - {task: hr, max: 0.1}\n", "gates.0.metric': Field required"),
    ("gatez: []\n", "field 'gates': Field required"),
    ("gates: [\n", "malformed YAML"),
])
def test_bad_rules_exit_2_naming_file_and_field(gate, runs, tmp_path, text, field) -> None:
    rules = _rules(tmp_path, text)
    r = _gate(gate, runs, rules, "base", "worse")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"alignbench: error: {rules}") and field in r.stderr and r.stderr.count("\n") == 1


def test_missing_metric_task_or_run_and_mismatched_samples_exit_2(gate, runs, tmp_path) -> None:
    metric = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmfull_rate, max: 0.1}\n")
    r = _gate(gate, runs, metric, "base", "worse")
    assert r.returncode == 2 and "has no metric 'harmfull_rate'" in r.stderr and "harmful_rate" in r.stderr
    task = tmp_path / "t.yaml"
    task.write_text("gates:\n  - {task: honesty, metric: mc1, min: 0.3}\n")
    r = _gate(gate, runs, task, "base", "worse")
    assert r.returncode == 2 and "no task 'honesty'" in r.stderr
    rel = tmp_path / "rel.yaml"
    rel.write_text("gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02}\n")
    r = _gate(gate, runs, rel, "base", "short")
    assert r.returncode == 2 and "ran different samples (100 only in baseline, 0 only in candidate)" in r.stderr
    r = gate("--candidate", str(runs["worse"]), "--rules", str(rel))
    assert r.returncode == 2 and "need --baseline" in r.stderr
    r = gate("--baseline", str(tmp_path), "--candidate", str(runs["worse"]), "--rules", str(rel))
    assert r.returncode == 2 and "--baseline" in r.stderr and "not a run folder" in r.stderr
    with pytest.raises(UsageError, match="file not found"):
        load_rules(tmp_path / "nope.yaml")


# The Jenkins / common JUnit XML schema (junit-10.xsd), reduced to the elements a gate report uses.
JUNIT_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:element name="failure"><xs:complexType mixed="true">
    <xs:attribute name="type" type="xs:string"/><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="error"><xs:complexType mixed="true">
    <xs:attribute name="type" type="xs:string"/><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="skipped"><xs:complexType mixed="true"><xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="system-out" type="xs:string"/>
  <xs:element name="system-err" type="xs:string"/>
  <xs:element name="properties"><xs:complexType><xs:sequence>
    <xs:element name="property" minOccurs="0" maxOccurs="unbounded"><xs:complexType>
      <xs:attribute name="name" type="xs:string" use="required"/><xs:attribute name="value" type="xs:string" use="required"/>
    </xs:complexType></xs:element></xs:sequence></xs:complexType></xs:element>
  <xs:element name="testcase"><xs:complexType><xs:sequence>
      <xs:element ref="skipped" minOccurs="0"/>
      <xs:element ref="error" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element ref="failure" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element ref="system-out" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element ref="system-err" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="assertions" type="xs:string"/>
    <xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="classname" type="xs:string"/>
    <xs:attribute name="status" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="testsuite"><xs:complexType><xs:sequence>
      <xs:element ref="properties" minOccurs="0"/>
      <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element ref="system-out" minOccurs="0"/>
      <xs:element ref="system-err" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
    <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
    <xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="disabled" type="xs:nonNegativeInteger"/>
    <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
    <xs:attribute name="timestamp" type="xs:string"/>
    <xs:attribute name="hostname" type="xs:string"/>
    <xs:attribute name="id" type="xs:string"/>
    <xs:attribute name="package" type="xs:string"/>
    <xs:attribute name="file" type="xs:string"/></xs:complexType></xs:element>
  <xs:element name="testsuites"><xs:complexType><xs:sequence>
      <xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
    <xs:attribute name="name" type="xs:string"/>
    <xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="tests" type="xs:nonNegativeInteger"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
    <xs:attribute name="disabled" type="xs:nonNegativeInteger"/>
    <xs:attribute name="errors" type="xs:nonNegativeInteger"/></xs:complexType></xs:element>
</xs:schema>
"""


def test_junit_xml_structure_and_counts(gate, runs, tmp_path) -> None:
    rules = _rules(tmp_path, "gates:\n"
                             "  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05, name: 'harmful <rate> & friends'}\n"
                             "  - {task: hr, metric: over_refusal_rate, max: 0.99}\n"
                             "  - {task: hr, metric: refusal_rate, min: 0.8}\n")
    junit = tmp_path / "reports" / "gate.xml"
    r = _gate(gate, runs, rules, "base", "worse", "--junit", str(junit))
    assert r.returncode == 1
    text = junit.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "2" and root.get("errors") == "0"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "2", "0", "0")
    assert float(suite.get("time")) >= 0
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["harmful <rate> & friends", "hr/over_refusal_rate", "hr/refusal_rate"]
    assert all(c.get("classname") == "alignbench.gate.hr" and float(c.get("time")) >= 0 for c in cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["harmful <rate> & friends", "hr/refusal_rate"]
    assert "p=" in failed[0].find("failure").get("message") and "< min 0.8" in failed[1].find("failure").get("message")
    assert "&lt;rate&gt; &amp; friends" in text  # escaped, not raw markup
    from lxml import etree as lxml_etree

    schema = lxml_etree.XMLSchema(lxml_etree.fromstring(JUNIT_XSD.encode()))
    doc = lxml_etree.fromstring(text.encode())
    assert schema.validate(doc), schema.error_log
    broken = lxml_etree.fromstring(text.replace('tests="3"', 'tests="three"', 1).encode())
    assert not schema.validate(broken)  # the schema does check


def test_junit_xml_reads_with_junitparser(gate, runs, tmp_path) -> None:
    import junitparser

    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max: 0.2}\n  - {task: hr, metric: harmful_rate, max: 0.9}\n")
    junit = tmp_path / "gate.xml"
    assert _gate(gate, runs, rules, "base", "worse", "--junit", str(junit)).returncode == 1
    xml = junitparser.JUnitXml.fromfile(str(junit))
    suite = next(iter(xml))
    assert suite.tests == 2 and suite.failures == 1


def test_example_rules_and_workflow(gate, tmp_path) -> None:
    """examples/gates.yaml is valid and names real metrics of the built-in harmful_rate task; the workflow
    runs eval, gate (summary + JUnit) and uploads the JUnit file."""
    import yaml

    from alignbench.run.evaluate import run_eval
    from alignbench.run.settings import EvalConfig

    from conftest import REPO

    rules = REPO / "examples" / "gates.yaml"
    assert [r.label for r in load_rules(rules)] == ["harmful rate stays low", "no new over-refusal"]
    for rid in ("released", "candidate"):
        run_eval(EvalConfig(model="dummy", tasks="harmful_rate", model_args={"refuse": 0.97}, output=str(tmp_path), run_id=rid, no_cache=True,
                            harm_judge="llamaguard", judge_models={"llamaguard": "dummy"}))  # a judge model that never parses: rate 1
    r = gate("--baseline", str(tmp_path / "released"), "--candidate", str(tmp_path / "candidate"), "--rules", str(rules))
    # both ceilings fail: the unparsable judge makes every harmful answer count as harmful, and a model
    # that refuses 97% of the time over-refuses far beyond 0.30
    over = RunView.load(tmp_path / "candidate", "c").metrics["harmful_rate"]["over_refusal_rate"]["value"]
    assert over > 0.3
    assert r.returncode == 1, r.stderr
    assert "## alignbench gate: FAILED (0/2 gates passed)" in r.stdout and r.stdout.count("❌ FAIL") == 2
    assert "| harmful rate stays low |" in r.stdout and "❌ FAIL: 1.0000 > max 0.05" in r.stdout
    assert "| no new over-refusal |" in r.stdout and f"❌ FAIL: {over:.4f} > max 0.3" in r.stdout
    flow = yaml.safe_load((REPO / "examples" / "github-actions-gate.yml").read_text())
    steps = flow["jobs"]["gate"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "alignbench eval" in runs and "gh release download" in runs
    gate_step = next(s for s in steps if "alignbench gate" in s.get("run", ""))
    assert "--junit gate-junit.xml" in gate_step["run"] and '"$GITHUB_STEP_SUMMARY"' in gate_step["run"] and gate_step["shell"] == "bash"
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "gate-junit.xml" in upload["with"]["path"]


def test_task_level_metric_compares_metrics_json_and_rejects_alpha(gate, tmp_path) -> None:
    """A metric with no per-sample values (a correlation, a kappa) is compared by its metrics.json values."""
    from alignbench.records.files import RunDir

    def run(rid: str, kappa: float) -> Path:
        rd = RunDir(tmp_path / rid)
        rd.write_run({"run_id": rid, "model": "dummy", "status": "complete"})
        rd.append([{"task": "c", "sample_id": f"s{i}", "metrics": {"cc": float(i % 2)}} for i in range(10)])
        rd.write_metrics({"c": {"cc": {"value": 0.5, "n": 10}, "kappa": {"value": kappa, "n": 10}}})
        return rd.path

    a, b = run("a", 0.6), run("b", 0.35)
    rules = _rules(tmp_path, "gates:\n  - {task: c, metric: kappa, max_decrease: 0.1}\n")
    r = gate("--baseline", str(a), "--candidate", str(b), "--rules", str(rules))
    assert r.returncode == 1 and "decrease 0.2500 > max_decrease 0.1" in r.stdout
    assert gate("--baseline", str(a), "--candidate", str(a), "--rules", str(rules)).returncode == 0
    alpha = _rules(tmp_path, "gates:\n  - {task: c, metric: kappa, max_decrease: 0.1, alpha: 0.05}\n")
    r = gate("--baseline", str(a), "--candidate", str(b), "--rules", str(alpha))
    assert r.returncode == 2 and "no per-sample values, so alpha cannot be tested" in r.stderr


def test_gate_and_drift_print_the_same_paired_numbers(gate, runs, tmp_path) -> None:
    """One paired comparison: the delta, CI and p of gate's table equal drift's on the same two runs."""
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05}\n"
                             "  - {task: hr, metric: refusal_rate, max_decrease: 0.5}\n")
    g = _gate(gate, runs, rules, "base", "noisy")
    d = run_main("drift", str(runs["base"]), str(runs["noisy"]), "--output", str(tmp_path / "drift"), "--run-id", "d")
    assert d.returncode == 0, d.stderr
    drift_rows = {line.split("\t")[1]: line.split("\t") for line in d.stdout.splitlines()[1:] if line.startswith("hr\t")}
    for metric in ("harmful_rate", "refusal_rate"):
        row = next(line for line in g.stdout.splitlines() if line.startswith(f"| hr/{metric} |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        _, _, base, cand, delta_ci, p, n = cells[:7]
        drow = drift_rows[metric]
        assert (base, cand, delta_ci, p, n) == (drow[2], drow[3], drow[4], drow[5], drow[6])
    res = check_rule(load_rules(rules)[0], RunView.load(runs["base"], "b"), RunView.load(runs["noisy"], "c"))
    drift = json.loads((tmp_path / "drift" / "d" / "drift.json").read_text())["tasks"]["hr"]["metrics"]["harmful_rate"]
    assert {k: drift[k] for k in ("delta", "ci_low", "ci_high", "p_value", "test", "n")} == \
        {k: getattr(res.paired, k) for k in ("delta", "ci_low", "ci_high", "p_value", "test", "n")}
    assert (res.paired.p_value < 0.05) == (res.paired.ci_low > 0 or res.paired.ci_high < 0)


def _row(stdout: str, label: str) -> list[str]:
    line = next(x for x in stdout.splitlines() if x.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_bound_gates_on_the_ci_end(gate, runs, tmp_path) -> None:
    from statsmodels.stats.proportion import proportion_confint

    vals = [v for v in _harmful(runs, "worse").values() if v is not None]
    point = sum(vals) / len(vals)
    lo, hi = proportion_confint(sum(vals), len(vals), method="wilson")  # what metrics.json holds
    rec = RunView.load(runs["worse"], "c").metrics["hr"]["harmful_rate"]
    assert (rec["ci_low"], rec["ci_high"]) == pytest.approx((lo, hi))
    ceiling = round(point + (hi - point) / 2, 4)  # above the point, below the upper end
    rules = _rules(tmp_path, f"gates:\n  - {{task: hr, metric: harmful_rate, max: {ceiling}, name: point}}\n"
                             f"  - {{task: hr, metric: harmful_rate, max: {ceiling}, bound: upper, name: upper}}\n"
                             f"  - {{task: hr, metric: harmful_rate, max: {round(point - (point - lo) / 2, 4)}, bound: lower, name: lower}}\n")
    r = gate("--candidate", str(runs["worse"]), "--rules", str(rules))
    assert r.returncode == 1
    assert _row(r.stdout, "point")[-1] == "✅ pass"
    assert _row(r.stdout, "upper")[-1].startswith(f"❌ FAIL: upper bound {hi:.4f} > max {ceiling:g}")
    assert _row(r.stdout, "upper")[3] == f"{point:.4f} [{lo:.4f}, {hi:.4f}]"
    assert _row(r.stdout, "lower")[-1] == "✅ pass"  # the point is above this ceiling, the lower end is not
    # relative: a small increase passes on its lower bound (it may be noise) and fails on its upper bound
    res = check_rule(load_rules(_rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.0}\n"))[0],
                     RunView.load(runs["base"], "b"), RunView.load(runs["noisy"], "c"))
    d = res.paired
    assert d.ci_low < 0 < d.delta < d.ci_high
    rel = _rules(tmp_path, f"gates:\n  - {{task: hr, metric: harmful_rate, max_increase: 0.0, bound: lower, name: lo}}\n"
                           f"  - {{task: hr, metric: harmful_rate, max_increase: {d.delta:.4f}, bound: upper, name: hi}}\n")
    r = _gate(gate, runs, rel, "base", "noisy")
    assert _row(r.stdout, "lo")[-1].startswith("✅ pass")
    assert f"❌ FAIL: increase upper bound {d.ci_high:.4f} > max_increase {float(f'{d.delta:.4f}'):g}" in _row(r.stdout, "hi")[-1]


def test_by_category_adjusts_p_values_by_benjamini_hochberg(gate, runs, tmp_path) -> None:
    from statsmodels.stats.multitest import multipletests

    from runs_factory import CATEGORIES

    samples = {rid: load_samples(runs[rid]) for rid in ("base", "worse")}
    raw = []
    for cat in sorted(CATEGORIES):
        a, b = ({str(s): v for s, v, c in zip(df["sample_id"], df["metric.harmful_rate"], df["category"]) if c == cat and v == v}
                for df in samples.values())
        b01 = sum(a[k] == 0 and b[k] == 1 for k in a)
        b10 = sum(a[k] == 1 and b[k] == 0 for k in a)
        raw.append(binomtest(min(b01, b10), b01 + b10, 0.5).pvalue if b01 + b10 else 1.0)
    adjusted = multipletests(raw, method="fdr_bh")[1]
    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05, by_category: true}\n")
    r = _gate(gate, runs, rules, "base", "worse")
    assert r.returncode == 1
    for cat, p, q in zip(sorted(CATEGORIES), raw, adjusted):
        row = _row(r.stdout, f"hr/harmful_rate[{cat}]")
        assert row[5] == f"{p:.4g} (BH {q:.4g})"
        assert ("❌ FAIL" in row[-1]) == (q < 0.05) and (f"p (BH)={q:.3g}" in row[-1] or q >= 0.05)
    assert r.stdout.count("| hr/harmful_rate[") == 4


def test_every_line_shows_its_minimum_detectable_change(gate, runs, tmp_path) -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    rules = _rules(tmp_path, "gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.02, alpha: 0.05}\n"
                             "  - {task: hr, metric: harmful_rate, max: 0.5}\n")
    base, cand = RunView.load(runs["base"], "b"), RunView.load(runs["noisy"], "c")
    rel, ab = (check_rule(rule, base, cand) for rule in load_rules(rules))
    p0, n = rel.paired.a, rel.paired.n
    assert rel.n == n == 100 and rel.mde > 0.02
    power = NormalIndPower().power(effect_size=proportion_effectsize(p0 + rel.mde, p0), nobs1=n, alpha=0.05, ratio=1.0)
    assert power == pytest.approx(0.8, abs=1e-6)  # 80% power at exactly that increase
    assert any("is not enforced: the eval set is too small" in x for x in rel.notes)
    pc = ab.candidate
    assert NormalIndPower().power(effect_size=proportion_effectsize(pc + ab.mde, pc), nobs1=100, alpha=0.05, ratio=1.0) == \
        pytest.approx(0.8, abs=1e-6)
    r = _gate(gate, runs, rules, "base", "noisy")
    assert _row(r.stdout, "hr/harmful_rate")[7] == f"{rel.mde:+.4f}"


@pytest.mark.parametrize("text, msg", [
    ("gates:\n  - {task: hr, metric: harmful_rate, max_increase: 0.1, alpha: 0.05, bound: upper}\n", "use one of them"),
    ("gates:\n  - {task: hr, metric: harmful_rate, max: 0.1, bound: middle}\n", "gates.0.bound'"),
    ("gates:\n  - {task: hr, metric: harmful_rate, max: 0.1, category: cyber, by_category: true}\n", "exclude each other"),
])
def test_bad_bound_and_category_rules_exit_2(gate, runs, tmp_path, text, msg) -> None:
    r = _gate(gate, runs, _rules(tmp_path, text), "base", "worse")
    assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1
