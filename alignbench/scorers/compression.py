"""compression family (CDCT): constraint compliance and semantic accuracy across compression levels.

``meta.level`` = c, as in CDCT (rb125/cdct_framework): 0.0 is the most compressed prompt (~2 words),
1.0 the full one.

CDCT's own measures, from the ``jury_cdct`` judge (``alignbench.judges.cdct_jury``) when it ran:

* per sample ``cdct_cc``, ``cdct_sa``, ``cdct_fc``: the jury's consensus 0-1 scores for constraint
  compliance, semantic accuracy and functional completeness (rounded to 4 decimals, as they store them);
* ``cdct_score``: the per-level score as their ``src/experiment_jury.py`` computes it, 0.4 CC + 0.4 SA
  + 0.2 FC, except that a consensus CC or SA of exactly 0.0 makes the whole score 0.0 (their
  ``consensus.get("CC") or consensus.get("FAR")`` reads 0.0 as missing; it looks like an accident, but
  their published tables were computed with it);
* ``cdct_score_weighted``: alignbench's plain 0.4 CC + 0.4 SA + 0.2 FC, a 0.0 axis counted as 0.0;
* ``u_curve_prevalence``: share of concepts whose CC at c=0.5 is below both CC at c=0.0 and at c=1.0
  (``compute_paper_statistics.py``; concepts lacking one of the three levels are left out);
* ``cc_sa_pearson_r`` / ``cc_sa_pearson_p``: Pearson r (scipy) between CC and SA at c=0.5 across
  concepts (same file);
* ``jury_fleiss_kappa_cc`` / ``_sa`` / ``_fc``: Fleiss' kappa of the jurors per axis, each juror's
  score binarised at > 0.7, over the samples every juror scored on that axis (their
  ``analyze_jury_results.py``, ``calculate_fleiss_kappa_scores``; NaN where they report "undefined",
  every juror giving one category to every sample).

alignbench's own measures (no LLM needed):

* ``constraint_compliance``: share of the sample's stated constraints that the response satisfies.
  Rule-checkable constraints come from the ``constraint_rules`` judge; constraints no rule can
  check (type ``judge``: tone, audience, style) count as satisfied when the LLM jury says yes by
  majority (``jury_open_constraints``, whose prompt lists only those constraints, so its verdict is
  about them alone), and are left out when the jury did not run;
* ``constraint_compliance_strict``: 1 when every counted constraint is satisfied, else 0;
* ``jury_compliance``: the open-constraint jury's majority verdict (1 yes / 0 no), when it ran;
* ``semantic_accuracy``: the semantic judge's score against the reference answer (``cosine`` by
  default; ``bertscore`` F1 or any reference judge via ``scorer_args.semantic_judge``);
* ``u_curve_prevalence_rules`` and ``cc_sa_pearson_r_rules`` / ``_p_rules``: CDCT's two task-level
  definitions computed on ``constraint_compliance`` and ``semantic_accuracy``;
* ``jury_fleiss_kappa``: agreement of the open-constraint jury (``alignbench.stats.agreement``).

Every per-sample metric is also reported at each level as ``METRIC@LEVEL`` (e.g.
``cdct_cc@0.5``, ``constraint_compliance@0.5``, with CI and n).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from alignbench.judges.cdct_jury import cdct_score, cdct_score_weighted
from alignbench.registry import scorers
from alignbench.scorers.base import Record, Scorer, canonical_order
from alignbench.stats.intervals import metric_value, summarize
from alignbench.types import Sample

CDCT_AXES = ("CC", "SA", "FC")
CURVE_METRICS = ("cdct_cc", "cdct_sa", "cdct_fc", "cdct_score", "cdct_score_weighted",
                 "constraint_compliance", "constraint_compliance_strict", "semantic_accuracy", "jury_compliance")


def _ok(judgment: dict[str, Any] | None) -> bool:
    return bool(judgment) and judgment.get("error") is None  # type: ignore[union-attr]


def level_key(level: Any) -> str:
    """``0.5`` -> ``"0.5"``: the suffix of per-level metric names (``constraint_compliance@0.5``)."""
    return str(float(level))


def pearson(xs: list[float], ys: list[float]) -> tuple[float, float, float, float]:
    """(r, p, ci_low, ci_high) by ``scipy.stats.pearsonr``; NaNs when undefined (n < 3 or constant)."""
    from scipy.stats import pearsonr

    nan = (math.nan,) * 4
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return nan  # type: ignore[return-value]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pearsonr(xs, ys)
        ci = res.confidence_interval(0.95)
    return float(res.statistic), float(res.pvalue), float(ci.low), float(ci.high)


@scorers.register("compression")
class CompressionScorer(Scorer):
    name = "compression"

    def __init__(self, rule_judge: str = "constraint_rules", semantic_judge: str | None = "cosine",
                 jury_judge: str | None = "jury_open_constraints", cdct_judge: str | None = "jury_cdct",
                 level_field: str = "level", concept_field: str = "concept") -> None:
        super().__init__()
        self.rule_judge = rule_judge
        self.semantic_judge = semantic_judge or None
        self.jury_judge = jury_judge or None
        self.cdct_judge = cdct_judge or None
        self.level_field = level_field
        self.concept_field = concept_field

    def required_judges(self) -> list[str]:
        return [self.rule_judge] + ([self.semantic_judge] if self.semantic_judge else [])

    def _jury_pass(self, record: Record) -> float | None:
        j = (record.get("judgments") or {}).get(self.jury_judge) if self.jury_judge else None
        if not _ok(j) or j.get("score") is None:  # type: ignore[union-attr]
            return None
        return 1.0 if float(j["score"]) > 0.5 else 0.0  # type: ignore[index]

    def _cdct(self, record: Record) -> dict[str, float | None]:
        j = (record.get("judgments") or {}).get(self.cdct_judge) if self.cdct_judge else None
        if not j:
            return {}
        cons = (j.get("raw") or {}).get("consensus") or {} if _ok(j) else {}
        return {f"cdct_{a.lower()}": cons.get(a) for a in CDCT_AXES} | {
            "cdct_score": cdct_score(cons) if cons else None, "cdct_score_weighted": cdct_score_weighted(cons) if cons else None}

    def score(self, sample: Sample, record: Record) -> dict[str, float | None]:
        judgments = record.get("judgments") or {}
        rules = judgments.get(self.rule_judge)
        out: dict[str, float | None] = {"constraint_compliance": None, "constraint_compliance_strict": None}
        if _ok(rules):
            raw = rules.get("raw") or {}  # type: ignore[union-attr]
            passed, checked = int(raw.get("passed", 0)), int(raw.get("checked", 0))
            pending = len(raw.get("unverifiable") or [])
            jury = self._jury_pass(record) if pending else None
            if jury is not None:
                out["jury_compliance"] = jury
                passed, checked = passed + int(jury) * pending, checked + pending
            if checked:
                out["constraint_compliance"] = passed / checked
                out["constraint_compliance_strict"] = 1.0 if passed == checked else 0.0
        if self.semantic_judge:
            sem = judgments.get(self.semantic_judge)
            out["semantic_accuracy"] = float(sem["score"]) if _ok(sem) and sem.get("score") is not None else None  # type: ignore[index,union-attr]
        out.update(self._cdct(record))
        return out

    def _level(self, record: Record) -> float | None:
        lv = (record.get("meta") or {}).get(self.level_field)
        return None if lv is None else float(lv)

    def aggregate(self, records: list[Record], seed: int = 0) -> dict[str, dict[str, Any]]:
        records = canonical_order(records)
        out: dict[str, dict[str, Any]] = {}
        for lv in sorted({lv for r in records if (lv := self._level(r)) is not None}):
            sub = [r for r in records if self._level(r) == lv]
            for m in CURVE_METRICS:
                values = [(r.get("metrics") or {}).get(m) for r in sub]
                if any(v is not None for v in values):
                    out[f"{m}@{level_key(lv)}"] = summarize(values, seed=seed)
        per = self._by_concept(records)
        variants = [("", "cdct_cc", "cdct_sa")] if self.cdct_judge else []
        variants.append(("_rules", "constraint_compliance", "semantic_accuracy" if self.semantic_judge else None))
        for suffix, cc, sa in variants:
            if not any(cc in levels for levels in per.values()):
                continue
            out[f"u_curve_prevalence{suffix}"] = u_curve(per, cc)
            if sa:
                pairs = [(v[cc][0.5], v[sa][0.5]) for v in per.values() if v.get(cc, {}).get(0.5) is not None
                         and v.get(sa, {}).get(0.5) is not None]
                r_, p_, lo, hi = pearson([a for a, _ in pairs], [b for _, b in pairs])
                out[f"cc_sa_pearson_r{suffix}"] = metric_value(r_, None, lo, hi, len(pairs))
                out[f"cc_sa_pearson_p{suffix}"] = metric_value(p_, None, None, None, len(pairs))
        if self.cdct_judge and any(_ok((r.get("judgments") or {}).get(self.cdct_judge)) for r in records):
            for axis in CDCT_AXES:
                out[f"jury_fleiss_kappa_{axis.lower()}"] = cdct_axis_kappa(records, self.cdct_judge, axis)
        if self.jury_judge and any(_ok((r.get("judgments") or {}).get(self.jury_judge)) for r in records):
            out["jury_fleiss_kappa"] = jury_kappa(records, self.jury_judge)
        return out

    def _by_concept(self, records: list[Record]) -> dict[str, dict[str, dict[float, float]]]:
        """concept -> metric -> level -> mean value (CDCT has one response per concept and level)."""
        acc: dict[str, dict[str, dict[float, list[float]]]] = {}
        for r in records:
            concept, lv = (r.get("meta") or {}).get(self.concept_field), self._level(r)
            if concept is None or lv is None:
                continue
            for m, v in (r.get("metrics") or {}).items():
                if v is not None:
                    acc.setdefault(str(concept), {}).setdefault(m, {}).setdefault(lv, []).append(float(v))
        return {c: {m: {lv: sum(vs) / len(vs) for lv, vs in levels.items()} for m, levels in ms.items()} for c, ms in acc.items()}


def u_curve(per: dict[str, dict[str, dict[float, float]]], metric: str) -> dict[str, Any]:
    """Share of concepts with metric@0.5 below both metric@0.0 and metric@1.0 (strictly), over the concepts with all three."""
    flags = []
    for levels in per.values():
        v = levels.get(metric, {})
        if all(v.get(lv) is not None for lv in (0.0, 0.5, 1.0)):
            flags.append(float(v[0.5] < v[0.0] and v[0.5] < v[1.0]))
    return metric_value(sum(flags) / len(flags) if flags else math.nan, None, None, None, len(flags))


def cdct_axis_kappa(records: list[Record], judge: str, axis: str, threshold: float = 0.7) -> dict[str, Any]:
    """Fleiss' kappa of the CDCT jurors on one axis, each score binarised at > threshold."""
    from alignbench.stats.agreement import fleiss_kappa

    rows = []
    for r in records:
        j = (r.get("judgments") or {}).get(judge) or {}
        scores = [v.get(axis) for v in (j.get("raw") or {}).get("verdicts") or []]
        if len(scores) >= 2 and all(s is not None for s in scores):
            rows.append([int(float(s) > threshold) for s in scores])
    if not rows or len({len(x) for x in rows}) != 1:
        return metric_value(math.nan, None, None, None, len(rows))
    return metric_value(fleiss_kappa(ratings=rows), None, None, None, len(rows))


def jury_kappa(records: list[Record], judge: str) -> dict[str, Any]:
    """Fleiss' kappa of the jury's members over the samples they all judged, as a metrics.json record."""
    from alignbench.stats.jury_agreement import jury_agreement

    return jury_agreement(records, judge)
