"""CI gates (DESIGN §7): rules on a candidate run, absolute and relative to a baseline run.

A rules file::

    gates:
      - task: harmful_rate
        metric: harmful_rate
        max: 0.05              # absolute ceiling on the candidate
        max_increase: 0.02     # against the baseline
        alpha: 0.05            # fail on an increase only when a paired test finds it significant
        bound: point           # or upper / lower: compare the CI's end with the limits instead of the point
        by_category: false     # true: one check per category, p-values Benjamini-Hochberg adjusted across them

Absolute limits (``max``, ``min``) compare the candidate's metrics.json value. Relative limits
(``max_increase``, ``max_decrease``) compare candidate minus baseline, paired by sample id: the delta
is the mean per-sample difference over samples present in both runs, with the CI and p-value of
``alignbench.stats.paired.paired_delta`` (McNemar exact for 0/1 metrics, a paired permutation test
otherwise; the CI is the one the test inverts), the same numbers ``alignbench drift`` prints. With ``alpha`` a change
beyond the limit fails only when p < alpha, so sampling noise does not fail a pipeline; without it
any change beyond the limit fails. Metrics that only exist at task level (no per-sample values) are
compared by their metrics.json values and cannot take ``alpha``.

``bound: upper`` compares the upper end of the CI with every limit of the rule (the candidate's CI for
``max``/``min``, the paired delta's for ``max_increase``, the decrease's for ``max_decrease``): with a
ceiling, the gate passes only when the whole interval is under it. ``bound: lower`` compares the lower
end: a ceiling fails only when the whole interval is above it. ``by_category: true`` expands a rule
into one check per category of the candidate; with ``alpha`` their paired p-values are adjusted by
Benjamini-Hochberg across the categories (false discovery rate ``alpha``). Every line also shows the
minimum detectable change (``alignbench.stats.power``): the smallest change between two runs of this n that a
two-sided test at the rule's alpha (0.05 without one) finds with 80% power, and a rule whose
max_increase / max_decrease is below it says that its eval set is too small to enforce it.

Bad rules, a metric missing from a run and runs over different samples are usage errors (exit 2);
a failing gate is exit 1. The table and the JUnit XML are ``alignbench.gate.output``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from alignbench.config import read_yaml, validate
from alignbench.errors import UsageError
from alignbench.records.epochs import per_sample as reduced_per_sample
from alignbench.records.files import RunDir
from alignbench.stats.paired import PairedDelta, paired_delta
from alignbench.stats.power import benjamini_hochberg, minimum_detectable_change


def _a_number(v: Any) -> Any:
    """A limit is a number as written: YAML's ``true`` / ``yes`` or a quoted ``"0.05"`` is no limit (pydantic would read 1)."""
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v
    raise ValueError(f"expected a number, got {v!r}")


Number = Annotated[float, BeforeValidator(_a_number)]


class GateRule(BaseModel):
    """One gate: limits on one metric of one task."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str
    metric: str
    name: str | None = None  # shown in the table and as the JUnit test case name
    category: str | None = None  # gate one by_category value instead of the overall one
    max: Number | None = None
    min: Number | None = None
    max_increase: Number | None = Field(default=None, ge=0)
    max_decrease: Number | None = Field(default=None, ge=0)
    alpha: Number | None = Field(default=None, gt=0, lt=1)
    bound: Literal["point", "upper", "lower"] = "point"
    by_category: bool = False

    @model_validator(mode="after")
    def _has_a_limit(self) -> "GateRule":
        if all(v is None for v in (self.max, self.min, self.max_increase, self.max_decrease)):
            raise ValueError("a gate needs at least one of max, min, max_increase, max_decrease")
        if self.alpha is not None and self.max_increase is None and self.max_decrease is None:
            raise ValueError("alpha applies to max_increase / max_decrease only")
        if self.alpha is not None and self.bound != "point":
            raise ValueError("alpha and bound: upper/lower both allow for noise; use one of them")
        if self.by_category and self.category is not None:
            raise ValueError("category and by_category: true exclude each other")
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
    p_adjusted: float | None = None  # by_category: Benjamini-Hochberg across the rule's categories
    mde: float | None = None  # minimum detectable change at 80% power (signed: + increase, - decrease)
    n: int | None = None  # the n the detectable change is for
    reasons: list[str] = field(default_factory=list)  # why it failed
    notes: list[str] = field(default_factory=list)  # why a change beyond a limit did not fail

    @property
    def message(self) -> str:
        return "; ".join(self.reasons + self.notes) or "ok"


@dataclass
class RunView:
    """What gating needs from one run: its metrics and its per-sample records per task."""

    path: Path
    run_id: str
    metrics: dict[str, Any]
    records: dict[str, dict[str, dict[str, Any]]]  # task -> sample_id -> metrics (the last epoch's)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # task -> every record (all epochs)
    reducer: str = "mean"  # how the run's epochs reduce per prompt (--reducer)

    @classmethod
    def load(cls, path: str | Path, flag: str) -> "RunView":
        rd = RunDir(path)
        if not rd.exists():
            raise UsageError(f"{flag} {path}: not a run folder (no run.json)")
        info = rd.read_run()
        if not rd.metrics_file.is_file():
            raise UsageError(f"{flag} {path}: no metrics.json (run status {info.get('status')!r})")
        records: dict[str, dict[str, dict[str, Any]]] = {}
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in rd.records():
            records.setdefault(str(r.get("task")), {})[str(r.get("sample_id"))] = r.get("metrics") or {}
            rows.setdefault(str(r.get("task")), []).append(r)
        reducer = str((info.get("config") or {}).get("reducer") or "mean")
        return cls(rd.path, str(info.get("run_id") or rd.path.name), rd.read_metrics(), records, rows, reducer)

    def record(self, rule: GateRule, flag: str) -> dict[str, Any]:
        """The metrics.json record the rule gates (overall or of its category)."""
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
        for key in ("value", "ci_low", "ci_high"):
            v = rec.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise UsageError(f"{flag} {self.path}: metrics.json: task {rule.task!r} metric {rule.metric!r}: {key} {v!r:.60} is not a number")
        return rec

    def value(self, rule: GateRule, flag: str) -> float | None:
        return number(self.record(rule, flag).get("value"))

    def categories(self, task: str, metric: str) -> list[str]:
        by_cat = (self.metrics.get(task) or {}).get("by_category") or {}
        return sorted(c for c, e in by_cat.items() if isinstance(e, dict) and isinstance(e.get(metric), dict))

    def per_sample(self, task: str, metric: str, category: str | None = None) -> dict[str, float | None]:
        """``{sample_id: value}``, epochs reduced per prompt with the run's reducer."""
        rows = [r for r in self.rows.get(task, []) if category is None or r.get("category") == category]
        for r in rows:
            m = r.get("metrics") or {}
            v = m.get(metric) if isinstance(m, dict) else None
            if not isinstance(m, dict) or (v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))):
                raise UsageError(f"{self.path}: samples.jsonl: task {task!r} sample {r.get('sample_id')!r}: metrics are not numbers ({m!r:.60})")
        return reduced_per_sample(rows, metric, self.reducer)


def number(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def fmt(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ends(lo: float | None, hi: float | None, point: float | None, bound: str) -> tuple[float | None, str]:
    """The number a limit is compared with, and its name in messages."""
    if bound == "upper":
        return hi, "upper bound "
    if bound == "lower":
        return lo, "lower bound "
    return point, ""


def check_rule(rule: GateRule, baseline: RunView | None, candidate: RunView, seed: int = 0,
               p_adjusted: float | None = None) -> GateResult:
    """Evaluate one rule (one category of a by_category rule); raises ``UsageError`` when a metric is
    missing or the runs do not match. ``p_adjusted`` replaces the paired p in the alpha decision."""
    rec = candidate.record(rule, "--candidate")
    cand = number(rec.get("value"))
    res = GateResult(rule, True, cand)
    x, what = _ends(number(rec.get("ci_low")), number(rec.get("ci_high")), cand, rule.bound)
    if x is None and (rule.max is not None or rule.min is not None):
        res.reasons.append(f"candidate {what or 'value '}is missing (no sample had this metric)")
    if x is not None and rule.max is not None and x > rule.max:
        res.reasons.append(f"{what}{fmt(x)} > max {rule.max:g}")
    if x is not None and rule.min is not None and x < rule.min:
        res.reasons.append(f"{what}{fmt(x)} < min {rule.min:g}")
    if rule.relative:
        if baseline is None:
            raise UsageError(f"gate {rule.label}: max_increase/max_decrease need --baseline")
        _check_relative(rule, baseline, candidate, res, seed, p_adjusted)
    _detectable(rule, rec, res)
    res.passed = not res.reasons
    return res


def _check_relative(rule: GateRule, baseline: RunView, candidate: RunView, res: GateResult, seed: int,
                    p_adjusted: float | None) -> None:
    res.baseline = baseline.value(rule, "--baseline")
    a_ids, b_ids = set(baseline.records.get(rule.task, {})), set(candidate.records.get(rule.task, {}))
    if a_ids != b_ids:
        raise UsageError(f"task {rule.task!r}: baseline and candidate ran different samples "
                         f"({len(a_ids - b_ids)} only in baseline, {len(b_ids - a_ids)} only in candidate); re-run on the same data")
    a, b = baseline.per_sample(rule.task, rule.metric, rule.category), candidate.per_sample(rule.task, rule.metric, rule.category)
    has_samples = any(v is not None for v in a.values()) and any(v is not None for v in b.values())
    if has_samples:
        res.paired = paired_delta(rule.metric, a, b, seed=seed)
        res.delta = res.paired.delta
    else:
        if rule.alpha is not None:
            raise UsageError(f"gate {rule.label}: metric {rule.metric!r} has no per-sample values, so alpha cannot be tested; drop alpha")
        if rule.bound != "point":
            raise UsageError(f"gate {rule.label}: metric {rule.metric!r} has no per-sample values, so it has no paired CI; use bound: point")
        if res.baseline is not None and res.candidate is not None:
            res.delta = res.candidate - res.baseline
    if res.delta is None:
        res.reasons.append("no paired values to compare")
        return
    res.p_adjusted = p_adjusted
    p = p_adjusted if p_adjusted is not None else (res.paired.p_value if res.paired else None)
    p_name = "p (BH)" if p_adjusted is not None else "p"
    lo, hi = (res.paired.ci_low, res.paired.ci_high) if res.paired else (None, None)
    checks = [("increase", rule.max_increase, _ends(lo, hi, res.delta, rule.bound)),
              ("decrease", rule.max_decrease, _ends(None if hi is None else -hi, None if lo is None else -lo, -res.delta, rule.bound))]
    for word, limit, (change, what) in checks:
        if limit is None or change is None or change <= limit + 1e-12:
            continue
        text = f"{word} {what}{abs(change) if not what else change:.4f} > max_{word} {limit:g}"
        if rule.alpha is None:
            res.reasons.append(text)
        elif p is not None and p < rule.alpha:
            res.reasons.append(f"{text} ({p_name}={p:.3g} < alpha {rule.alpha:g})")
        else:
            res.notes.append(f"{text} but not significant ({p_name}={fmt(p, 3)} >= alpha {rule.alpha:g})")


def _detectable(rule: GateRule, rec: dict[str, Any], res: GateResult) -> None:
    """The minimum detectable change of the line, and a note when a relative limit is below it."""
    alpha = rule.alpha if rule.alpha is not None else 0.05
    direction = 1 if (rule.max is not None or rule.max_increase is not None) else -1
    pd_ = res.paired
    if pd_ is not None and pd_.n:
        n, binary = pd_.n, pd_.test == "mcnemar_exact"
        p0, sd = (pd_.a, None) if binary else (None, pd_.sd_a)
    else:
        n = int(rec.get("n_eff") or rec.get("n") or 0)
        binary = rec.get("ci_method") == "wilson"
        se = number(rec.get("stderr"))
        p0, sd = (res.candidate, None) if binary else (None, None if se is None else se * math.sqrt(int(rec.get("n") or 0)))
    if n <= 0 or (p0 is None and sd is None):
        return
    mde = minimum_detectable_change(int(n), alpha, p0=p0, sd=sd, direction=direction)
    res.n = int(n)
    res.mde = None if mde is None else direction * mde
    limit = rule.max_increase if direction > 0 else rule.max_decrease
    if limit is not None and (mde is None or mde > limit):
        size = "no change" if mde is None else f"only a change of {mde:.4f} or more"
        word = f"max_{'increase' if direction > 0 else 'decrease'}"
        if any(f"> {word} " in r for r in res.reasons):  # the limit failed the rule: it was enforced, on a small set
            res.notes.append(f"n={n} detects {size} (80% power, alpha {alpha:g}): the eval set is small for {word} {limit:g}")
        else:
            res.notes.append(f"n={n} detects {size} (80% power, alpha {alpha:g}), so {word} {limit:g} is not enforced: "
                             "the eval set is too small")


def expand(rule: GateRule, candidate: RunView) -> list[GateRule]:
    """A by_category rule as one rule per category of the candidate (an error when it has none)."""
    if not rule.by_category:
        return [rule]
    cats = candidate.categories(rule.task, rule.metric)
    if not cats:
        raise UsageError(f"gate {rule.label}: by_category: task {rule.task!r} has no categories with metric {rule.metric!r} in --candidate")
    return [rule.model_copy(update={"category": c, "by_category": False, "name": f"{rule.name}[{c}]" if rule.name else None})
            for c in cats]


def run_gates(rules: list[GateRule], baseline: RunView | None, candidate: RunView, seed: int = 0) -> list[GateResult]:
    out: list[GateResult] = []
    for rule in rules:
        parts = expand(rule, candidate)
        results = [check_rule(r, baseline, candidate, seed) for r in parts]
        ps = [r.paired.p_value if r.paired else None for r in results]
        if rule.by_category and rule.alpha is not None and all(p is not None for p in ps) and len(ps) > 1:
            adjusted = benjamini_hochberg([float(p) for p in ps])  # type: ignore[arg-type]
            results = [check_rule(r, baseline, candidate, seed, p_adjusted=q) for r, q in zip(parts, adjusted)]
        out += results
    return out



__all__ = ["GateRule", "GateFile", "GateResult", "RunView", "load_rules", "check_rule", "run_gates"]
