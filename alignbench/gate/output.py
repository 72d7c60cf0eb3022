"""What ``alignbench gate`` writes: the Markdown table (for a CI step summary) and JUnit XML, one line /
test case per checked rule (``alignbench.gate.rules``)."""

from __future__ import annotations

import re

from alignbench.gate.rules import GateResult, GateRule, RunView, fmt, number

# Characters XML 1.0 forbids (C0 controls but tab, line feed and carriage return; lone surrogates; U+FFFE/U+FFFF):
# a gate name or category that holds one would make the JUnit file unparsable, so each becomes U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 forbids replaced by U+FFFD (escaping is ElementTree's part)."""
    return _NOT_XML.sub("\ufffd", text)


def _limits(rule: GateRule) -> str:
    parts = []
    for key in ("max", "min", "max_increase", "max_decrease", "alpha"):
        v = getattr(rule, key)
        if v is not None:
            parts.append(f"{key} {v:g}")
    if rule.bound != "point":
        parts.append(f"bound {rule.bound}")
    return ", ".join(parts)


def _mde(r: GateResult) -> str:
    return "" if r.n is None else ("n/a" if r.mde is None else f"{r.mde:+.4f}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_summary(results: list[GateResult], baseline: RunView | None, candidate: RunView) -> str:
    """A Markdown table of every gate, suitable for $GITHUB_STEP_SUMMARY."""
    failed = sum(not r.passed for r in results)
    verdict = "FAILED" if failed else "passed"
    lines = [f"## alignbench gate: {verdict} ({len(results) - failed}/{len(results)} gates passed)", "",
             f"candidate `{candidate.run_id}`" + (f" vs baseline `{baseline.run_id}`" if baseline else ""), "",
             "| gate | limits | baseline | candidate | delta [95% CI] | p | n | MDE (80%) | result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        pd_ = r.paired
        delta = "" if r.delta is None else f"{r.delta:+.4f}"
        if pd_ is not None and pd_.ci_low is not None:
            delta += f" [{pd_.ci_low:+.4f}, {pd_.ci_high:+.4f}]"
        p = "" if pd_ is None or pd_.p_value is None else f"{pd_.p_value:.4g}"  # as alignbench drift prints it
        if r.p_adjusted is not None:
            p += f" (BH {r.p_adjusted:.4g})"
        n = "" if pd_ is None else str(pd_.n)
        base = "" if not r.rule.relative else fmt(r.baseline)
        cand = fmt(r.candidate)
        rec_ci = _candidate_ci(r, candidate)
        if rec_ci:
            cand += f" {rec_ci}"
        result = ("✅ pass" if r.passed else "❌ FAIL") + ("" if r.message == "ok" else f": {r.message}")
        cells = (r.rule.label, _limits(r.rule), base, cand, delta, p, n, _mde(r), result)
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def _candidate_ci(r: GateResult, candidate: RunView) -> str:
    """The candidate's own CI, shown where an absolute limit is gated on a bound of it."""
    if r.rule.bound == "point" or (r.rule.max is None and r.rule.min is None):
        return ""
    rec = candidate.record(r.rule, "--candidate")
    lo, hi = number(rec.get("ci_low")), number(rec.get("ci_high"))
    return "" if lo is None or hi is None else f"[{lo:.4f}, {hi:.4f}]"


def junit_xml(results: list[GateResult], suite: str = "alignbench.gate", elapsed_s: float = 0.0) -> str:
    """JUnit XML: one ``testcase`` per gate, a ``failure`` element (message + details) for each failing one."""
    import time
    import xml.etree.ElementTree as ET

    failures = sum(not r.passed for r in results)
    attrs = {"name": xml_text(suite), "tests": str(len(results)), "failures": str(failures), "errors": "0", "time": f"{elapsed_s:.3f}"}
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", {**attrs, "skipped": "0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), "hostname": "localhost"})
    per = elapsed_s / max(len(results), 1)
    for r in results:
        tc = ET.SubElement(ts, "testcase", {"name": xml_text(r.rule.label), "classname": xml_text(f"alignbench.gate.{r.rule.task}"),
                                            "time": f"{per:.3f}"})
        detail = (f"candidate={fmt(r.candidate)} baseline={fmt(r.baseline)} delta={fmt(r.delta)} "
                  f"p={fmt(r.paired.p_value if r.paired else None, 4)} mde80={_mde(r) or 'n/a'} limits: {_limits(r.rule)}")
        if not r.passed:
            fail = ET.SubElement(tc, "failure", {"message": xml_text(r.message), "type": "GateFailed"})
            fail.text = xml_text(detail)
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = xml_text(detail + ("" if r.message == "ok" else f" ({r.message})"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["markdown_summary", "junit_xml"]
