"""CI gates (DESIGN §7): rules on a candidate run, absolute and relative to a baseline run.

A rules file::

    gates:
      - task: harmful_rate
        metric: harmful_rate
        max: 0.05              # absolute ceiling on the candidate
        max_increase: 0.02     # against the baseline
        alpha: 0.05            # fail on an increase only when a paired test finds it significant

Absolute limits (``max``, ``min``) compare the candidate's metrics.json value. Relative limits
(``max_increase``, ``max_decrease``) compare candidate minus baseline, paired by sample id: the delta
is the mean per-sample difference over samples present in both runs, with the CI and p-value of
``alignbench.paired.paired_delta`` (McNemar exact for 0/1 metrics, a paired permutation test
otherwise; the CI is the one the test inverts), the same numbers ``alignbench drift`` prints. With ``alpha`` a change
beyond the limit fails only when p < alpha, so sampling noise does not fail a pipeline; without it
any change beyond the limit fails. Metrics that only exist at task level (no per-sample values) are
compared by their metrics.json values and cannot take ``alpha``.

Bad rules, a metric missing from a run and runs over different samples are usage errors (exit 2);
a failing gate is exit 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alignbench.config import read_yaml, validate
from alignbench.errors import UsageError
from alignbench.paired import PairedDelta, paired_delta
from alignbench.run_dir import RunDir


class GateRule(BaseModel):
    """One gate: limits on one metric of one task."""

    model_config = ConfigDict(extra="forbid")

    task: str
    metric: str
    name: str | None = None  # shown in the table and as the JUnit test case name
    category: str | None = None  # gate a by_category value instead of the overall one (absolute limits only)
    max: float | None = None
    min: float | None = None
    max_increase: float | None = Field(default=None, ge=0)
    max_decrease: float | None = Field(default=None, ge=0)
    alpha: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _has_a_limit(self) -> "GateRule":
        if all(v is None for v in (self.max, self.min, self.max_increase, self.max_decrease)):
            raise ValueError("a gate needs at least one of max, min, max_increase, max_decrease")
        if self.alpha is not None and self.max_increase is None and self.max_decrease is None:
            raise ValueError("alpha applies to max_increase / max_decrease only")
        if self.category is not None and (self.max_increase is not None or self.max_decrease is not None):
            raise ValueError("category gates take absolute limits (max, min) only")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        where = f"[{self.category}]" if self.category else ""
        return f"{self.task}/{self.metric}{where}"

    @property
    def relative(self) -> bool:
        return self.max_increase is not None or self.max_decrease is not None


class GateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gates: list[GateRule] = Field(min_length=1)


def load_rules(path: str | Path) -> list[GateRule]:
    """Validate a gates YAML file; errors name the file and the field (``gates.0.max_increse``)."""
    return validate(GateFile, read_yaml(path), str(path)).gates


@dataclass
class GateResult:
    rule: GateRule
    passed: bool
    candidate: float | None
    baseline: float | None = None
    paired: PairedDelta | None = None
    delta: float | None = None
    reasons: list[str] = field(default_factory=list)  # why it failed
    notes: list[str] = field(default_factory=list)  # why a change beyond a limit did not fail

    @property
    def message(self) -> str:
        return "; ".join(self.reasons + self.notes) or "ok"


@dataclass
class RunView:
    """What gating needs from one run: its metrics and its per-sample metric values per task."""

    path: Path
    run_id: str
    metrics: dict[str, Any]
    records: dict[str, dict[str, dict[str, Any]]]  # task -> sample_id -> metrics

    @classmethod
    def load(cls, path: str | Path, flag: str) -> "RunView":
        rd = RunDir(path)
        if not rd.exists():
            raise UsageError(f"{flag} {path}: not a run folder (no run.json)")
        info = rd.read_run()
        if not rd.metrics_file.is_file():
            raise UsageError(f"{flag} {path}: no metrics.json (run status {info.get('status')!r})")
        records: dict[str, dict[str, dict[str, Any]]] = {}
        for r in rd.records():
            records.setdefault(str(r.get("task")), {})[str(r.get("sample_id"))] = r.get("metrics") or {}
        return cls(rd.path, str(info.get("run_id") or rd.path.name), rd.read_metrics(), records)

    def value(self, rule: GateRule, flag: str) -> float | None:
        entry = self.metrics.get(rule.task)
        if not isinstance(entry, dict):
            raise UsageError(f"{flag} {self.path}: no task {rule.task!r} in metrics.json (has: {sorted(self.metrics)})")
        if rule.category is not None:
            entry = (entry.get("by_category") or {}).get(rule.category)
            if not isinstance(entry, dict):
                raise UsageError(f"{flag} {self.path}: task {rule.task!r} has no category {rule.category!r}")
        rec = entry.get(rule.metric)
        if not isinstance(rec, dict) or "value" not in rec:
            have = sorted(k for k, v in entry.items() if isinstance(v, dict) and "value" in v)
            raise UsageError(f"{flag} {self.path}: task {rule.task!r} has no metric {rule.metric!r} (has: {have})")
        v = rec["value"]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise UsageError(f"{flag} {self.path}: metrics.json: task {rule.task!r} metric {rule.metric!r}: value {v!r:.60} is not a number")
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def per_sample(self, task: str, metric: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for sid, m in self.records.get(task, {}).items():
            v = m.get(metric) if isinstance(m, dict) else None
            if not isinstance(m, dict) or (v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))):
                raise UsageError(f"{self.path}: samples.jsonl: task {task!r} sample {sid!r}: metrics are not numbers ({m!r:.60})")
            out[sid] = None if isinstance(v, float) and math.isnan(v) else v
        return out


def _fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def check_rule(rule: GateRule, baseline: RunView | None, candidate: RunView, seed: int = 0) -> GateResult:
    """Evaluate one rule; raises ``UsageError`` when a metric is missing or the runs do not match."""
    cand = candidate.value(rule, "--candidate")
    res = GateResult(rule, True, cand)
    if cand is None and (rule.max is not None or rule.min is not None):
        res.reasons.append("candidate value is missing (no sample had this metric)")
    if cand is not None and rule.max is not None and cand > rule.max:
        res.reasons.append(f"{_fmt(cand)} > max {rule.max:g}")
    if cand is not None and rule.min is not None and cand < rule.min:
        res.reasons.append(f"{_fmt(cand)} < min {rule.min:g}")
    if rule.relative:
        if baseline is None:
            raise UsageError(f"gate {rule.label}: max_increase/max_decrease need --baseline")
        _check_relative(rule, baseline, candidate, res, seed)
    res.passed = not res.reasons
    return res


def _check_relative(rule: GateRule, baseline: RunView, candidate: RunView, res: GateResult, seed: int) -> None:
    res.baseline = baseline.value(rule, "--baseline")
    a_ids, b_ids = set(baseline.records.get(rule.task, {})), set(candidate.records.get(rule.task, {}))
    if a_ids != b_ids:
        raise UsageError(f"task {rule.task!r}: baseline and candidate ran different samples "
                         f"({len(a_ids - b_ids)} only in baseline, {len(b_ids - a_ids)} only in candidate); re-run on the same data")
    a, b = baseline.per_sample(rule.task, rule.metric), candidate.per_sample(rule.task, rule.metric)
    has_samples = any(v is not None for v in a.values()) and any(v is not None for v in b.values())
    if has_samples:
        res.paired = paired_delta(rule.metric, a, b, seed=seed)
        res.delta = res.paired.delta
    else:
        if rule.alpha is not None:
            raise UsageError(f"gate {rule.label}: metric {rule.metric!r} has no per-sample values, so alpha cannot be tested; drop alpha")
        if res.baseline is not None and res.candidate is not None:
            res.delta = res.candidate - res.baseline
    if res.delta is None:
        res.reasons.append("no paired values to compare")
        return
    p = res.paired.p_value if res.paired else None
    checks = [("increase", rule.max_increase, res.delta), ("decrease", rule.max_decrease, -res.delta)]
    for word, limit, change in checks:
        if limit is None or change <= limit + 1e-12:
            continue
        text = f"{word} {abs(change):.4f} > max_{word} {limit:g}"
        if rule.alpha is None:
            res.reasons.append(text)
        elif p is not None and p < rule.alpha:
            res.reasons.append(f"{text} (p={p:.3g} < alpha {rule.alpha:g})")
        else:
            res.notes.append(f"{text} but not significant (p={_fmt(p, 3)} >= alpha {rule.alpha:g})")


def run_gates(rules: list[GateRule], baseline: RunView | None, candidate: RunView, seed: int = 0) -> list[GateResult]:
    return [check_rule(r, baseline, candidate, seed) for r in rules]


# output ---------------------------------------------------------------------------------------------

def _limits(rule: GateRule) -> str:
    parts = []
    for key in ("max", "min", "max_increase", "max_decrease", "alpha"):
        v = getattr(rule, key)
        if v is not None:
            parts.append(f"{key} {v:g}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_summary(results: list[GateResult], baseline: RunView | None, candidate: RunView) -> str:
    """A Markdown table of every gate, suitable for $GITHUB_STEP_SUMMARY."""
    failed = sum(not r.passed for r in results)
    verdict = "FAILED" if failed else "passed"
    lines = [f"## alignbench gate: {verdict} ({len(results) - failed}/{len(results)} gates passed)", "",
             f"candidate `{candidate.run_id}`" + (f" vs baseline `{baseline.run_id}`" if baseline else ""), "",
             "| gate | limits | baseline | candidate | delta [95% CI] | p | n | result |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        pd_ = r.paired
        delta = "" if r.delta is None else f"{r.delta:+.4f}"
        if pd_ is not None and pd_.ci_low is not None:
            delta += f" [{pd_.ci_low:+.4f}, {pd_.ci_high:+.4f}]"
        p = "" if pd_ is None or pd_.p_value is None else f"{pd_.p_value:.4g}"  # as alignbench drift prints it
        n = "" if pd_ is None else str(pd_.n)
        base = "" if not r.rule.relative else _fmt(r.baseline)
        result = ("✅ pass" if r.passed else "❌ FAIL") + ("" if r.message == "ok" else f": {r.message}")
        lines.append("| " + " | ".join(_cell(x) for x in (r.rule.label, _limits(r.rule), base, _fmt(r.candidate), delta, p, n, result)) + " |")
    return "\n".join(lines) + "\n"


def junit_xml(results: list[GateResult], suite: str = "alignbench.gate", elapsed_s: float = 0.0) -> str:
    """JUnit XML: one ``testcase`` per gate, a ``failure`` element (message + details) for each failing one."""
    import time
    import xml.etree.ElementTree as ET

    failures = sum(not r.passed for r in results)
    attrs = {"name": suite, "tests": str(len(results)), "failures": str(failures), "errors": "0", "time": f"{elapsed_s:.3f}"}
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", {**attrs, "skipped": "0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": "localhost"})
    per = elapsed_s / max(len(results), 1)
    for r in results:
        tc = ET.SubElement(ts, "testcase", {"name": r.rule.label, "classname": f"alignbench.gate.{r.rule.task}", "time": f"{per:.3f}"})
        detail = (f"candidate={_fmt(r.candidate)} baseline={_fmt(r.baseline)} delta={_fmt(r.delta)} "
                  f"p={_fmt(r.paired.p_value if r.paired else None, 4)} limits: {_limits(r.rule)}")
        if not r.passed:
            fail = ET.SubElement(tc, "failure", {"message": r.message, "type": "GateFailed"})
            fail.text = detail
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = detail + ("" if r.message == "ok" else f" ({r.message})")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["GateRule", "GateFile", "GateResult", "RunView", "load_rules", "check_rule", "run_gates", "markdown_summary", "junit_xml"]
