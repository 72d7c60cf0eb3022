"""Agreement of an LLM jury, read back from the raw verdicts its judgments keep.

A jury judgment's ``raw`` is ``{"verdicts": [{"judge": NAME, "label": .., "score": .., "parse_error": ..,
"error": .., "aspects": {aspect: {"label", "score"}}}, ...], ...}`` (``alignbench.judges.jury``): one
verdict per juror. ``verdict_table`` turns a column of such ``raw`` values into one items x jurors
table (None where a juror gave no usable verdict); ``jury_agreement`` (metrics.json) and the report's
jury section (``alignbench.report.jury``) both read it, so they count the same items and failures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignbench.stats.agreement import fleiss_kappa, krippendorff_alpha, missing, pairwise_cohen_kappa
from alignbench.stats.intervals import metric_value


def verdicts_of(raw: Any) -> list[dict[str, Any]] | None:
    """The verdict list of a jury ``raw`` field, or None when it is not a jury judgment."""
    if isinstance(raw, dict) and isinstance(raw.get("verdicts"), list):
        return [v for v in raw["verdicts"] if isinstance(v, dict)]
    return None


def failure(v: dict[str, Any]) -> tuple[bool, bool]:
    """(parse failure, backend failure) of one verdict; a verdict with neither label nor aspects did not parse."""
    backend = v.get("error") is not None
    parse = v.get("parse_error") is not None or (not backend and v.get("label") is None and not v.get("aspects"))
    return parse, backend


@dataclass
class VerdictTable:
    """Items x jurors values of one jury (and aspect); ``rows[i][j]`` is None when juror j's verdict on
    item i failed (to parse or to run) or lacks the field."""

    jurors: list[str]
    rows: list[list[Any]]
    parse_failures: int
    backend_errors: int

    @property
    def complete(self) -> list[list[Any]]:
        """The rows every juror rated."""
        return [row for row in self.rows if row and all(not missing(x) for x in row)]

    def by_juror(self) -> list[list[Any]]:
        """Jurors x items (the layout of Krippendorff's reliability data)."""
        return [[row[j] for row in self.rows] for j in range(len(self.jurors))]

    def fleiss_kappa(self) -> float:
        """Fleiss' kappa over the complete rows (NaN with fewer than two jurors or no complete row)."""
        done = self.complete
        return fleiss_kappa(ratings=done) if len(self.jurors) >= 2 and done else math.nan


def aspects_of(raws: Iterable[Any]) -> list[str]:
    """Aspect names of a multi-aspect rubric jury, in first-seen order ([] for a single-verdict jury)."""
    return list(dict.fromkeys(a for raw in raws for v in (verdicts_of(raw) or []) for a in (v.get("aspects") or {})))


def verdict_table(raws: Iterable[Any], aspect: str | None = None, field: str = "label") -> VerdictTable:
    """The jury's items x jurors table of ``field`` (``label`` or ``score``), of ``aspect`` when given.

    Values that are not jury judgments are skipped; jurors are in first-seen order."""
    jurors: list[str] = []
    items: list[dict[str, Any]] = []
    parse = backend = 0
    for raw in raws:
        verdicts = verdicts_of(raw)
        if verdicts is None:
            continue
        row: dict[str, Any] = {}
        for v in verdicts:
            jid = str(v.get("judge"))
            if jid not in jurors:
                jurors.append(jid)
            p, b = failure(v)
            parse, backend = parse + p, backend + b
            if p or b:
                row[jid] = None
            elif aspect is not None:
                row[jid] = ((v.get("aspects") or {}).get(aspect) or {}).get(field)
            else:
                row[jid] = v.get(field)
        items.append(row)
    return VerdictTable(jurors, [[row.get(j) for j in jurors] for row in items], parse, backend)


def _raws(records: Sequence[dict[str, Any]], judge_name: str) -> list[Any]:
    out = []
    for r in records:
        jd = (r.get("judgments") or {}).get(judge_name)
        out.append(jd.get("raw") if isinstance(jd, dict) else None)
    return out


def jury_ratings(records: Sequence[dict[str, Any]], judge_name: str, aspect: str | None = None,
                 field: str = "label") -> tuple[list[str], list[list[Any]], int]:
    """(juror ids, items x jurors ratings with None for unusable verdicts, parse failures) of an LLM jury
    in samples.jsonl records (``record["judgments"][judge_name]["raw"]``)."""
    t = verdict_table(_raws(records, judge_name), aspect, field)
    return t.jurors, t.rows, t.parse_failures


def _clean(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def jury_agreement(records: Sequence[dict[str, Any]], judge_name: str, aspect: str | None = None) -> dict[str, Any]:
    """Agreement of an LLM jury's members, as a metrics.json record with extra keys.

    ``value`` is Fleiss' kappa over the items every juror rated (``n`` of them); the record also
    holds ``fleiss_kappa``, ``krippendorff_alpha`` (nominal, all items with >= 2 ratings),
    ``krippendorff_alpha_interval`` (on the verdict scores, when numeric), ``cohen_kappa``
    (``{"a|b": kappa}`` per pair of jurors), ``mean_cohen_kappa``, ``n_items``, ``n_judges``,
    ``parse_failures``, ``backend_errors`` and ``judges``. Coefficients that cannot be computed are None.
    """
    raws = _raws(records, judge_name)
    labels = verdict_table(raws, aspect, "label")
    scores = verdict_table(raws, aspect, "score")
    judges, several = labels.jurors, len(labels.jurors) >= 2
    fk = labels.fleiss_kappa()
    ka = krippendorff_alpha(labels.by_juror()) if several and labels.rows else math.nan
    numeric = [x for row in scores.rows for x in row if not missing(x)]
    ka_int = math.nan
    if several and numeric and all(isinstance(x, (int, float)) for x in numeric):
        ka_int = krippendorff_alpha(scores.by_juror(), level="interval")
    ck = pairwise_cohen_kappa(dict(zip(judges, labels.by_juror()))) if several else {}
    ck_vals = [v for v in ck.values() if not math.isnan(v)]
    rec = metric_value(fk, None, None, None, len(labels.complete))
    rec.update({
        "fleiss_kappa": _clean(fk), "krippendorff_alpha": _clean(ka), "krippendorff_alpha_interval": _clean(ka_int),
        "cohen_kappa": {k: _clean(v) for k, v in ck.items()},
        "mean_cohen_kappa": float(np.mean(ck_vals)) if ck_vals else None,
        "n_items": len(labels.rows), "n_judges": len(judges), "parse_failures": labels.parse_failures,
        "backend_errors": labels.backend_errors, "judges": judges,
    })
    return rec
