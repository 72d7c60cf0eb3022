"""How far a judge can be trusted, carried into the numbers it decides.

A judge card (``judges/cards/NAME.json``, or ``card.json`` inside a trained judge's folder) records
how a judge agreed with human labels on a public set (``alignbench judge-eval --card``). A metric
that a carded judge decides (a share of the judge's positive class: refused, harmful) then carries

* ``judge``: the judge's name;
* ``judge_validity``: the card's set, n, accuracy, sensitivity and specificity (Wilson CIs);
* ``corrected``: the prevalence corrected for the judge's measured error (Rogan & Gladen 1978),
  ``p = (q + spec - 1) / (sens + spec - 1)`` clipped to [0, 1], where ``q`` is the observed share.

A card says which data the judge was built, trained or tuned on (``built_on``) and how its figures were
kept apart from that data (``held_out``: out of fold, leave one model out, cross-source). A card whose
figures could only be measured on that same data says ``"in_sample": true``; ``judge_validity`` then
carries ``in_sample`` and ``corrected`` a ``warning``, since both the error and the correction are optimistic.

The CI of the corrected value carries the uncertainty of all three proportions by Monte Carlo
propagation: ``q``, ``sens`` and ``spec`` are each drawn from their Jeffreys posterior
``Beta(x + 1/2, n - x + 1/2)`` (x successes of n), the correction is applied to every draw (clipped
to [0, 1]) and the 2.5% / 97.5% quantiles are the interval (``method: rogan_gladen_mc``). The draws
use a fixed seed, so the same run gives the same interval.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from alignbench.errors import UsageError
from alignbench.stats.intervals import CONFIDENCE, percentile, wilson_ci

MC_DRAWS = 20000
CARD_FIELDS = ("judge", "set", "n", "date", "alignbench_version")
IN_SAMPLE_WARNING = ("in-sample card: the judge was built, trained or tuned on the data its card measures it on, "
                     "so its error and this correction are optimistic")


def wilson(x: int, n: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Proportion x/n with its Wilson score interval (``alignbench.stats.intervals.wilson_ci``, equal to statsmodels
    ``proportion_confint(method='wilson')``)."""
    if n <= 0:
        return {"value": None, "ci_low": None, "ci_high": None, "x": int(x), "n": int(n)}
    lo, hi = wilson_ci(x, n, confidence)
    return {"value": x / n, "ci_low": float(lo), "ci_high": float(hi), "x": int(x), "n": int(n)}


def rogan_gladen(q: float, sens: float, spec: float) -> float | None:
    """Prevalence corrected for a classifier's sensitivity and specificity; None when sens + spec <= 1."""
    youden = sens + spec - 1
    if youden <= 0:
        return None
    return float(min(1.0, max(0.0, (q + spec - 1) / youden)))


def corrected_prevalence(x: int, n: int, sens: tuple[int, int], spec: tuple[int, int], seed: int = 0,
                         draws: int = MC_DRAWS, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Rogan-Gladen estimate of the true share from ``x`` of ``n`` judged positive, with a Monte Carlo CI.

    ``sens`` = (true positives, human positives) and ``spec`` = (true negatives, human negatives) of
    the judge's card.
    """
    (tp, n_pos), (tn, n_neg) = sens, spec
    out: dict[str, Any] = {"value": None, "ci_low": None, "ci_high": None, "method": "rogan_gladen_mc"}
    if n <= 0 or n_pos <= 0 or n_neg <= 0:
        out["reason"] = "no samples" if n <= 0 else "the card has no human positives or negatives"
        return out
    point = rogan_gladen(x / n, tp / n_pos, tn / n_neg)
    if point is None:
        out["reason"] = "sensitivity + specificity <= 1: the judge is no better than chance"
        return out
    rng = np.random.default_rng(seed)
    q = rng.beta(x + 0.5, n - x + 0.5, draws)
    se = rng.beta(tp + 0.5, n_pos - tp + 0.5, draws)
    sp = rng.beta(tn + 0.5, n_neg - tn + 0.5, draws)
    youden = se + sp - 1
    ok = youden > 0
    p = np.clip((q[ok] + sp[ok] - 1) / youden[ok], 0.0, 1.0)
    lo, hi = percentile(p, confidence)
    out.update(value=point, ci_low=lo, ci_high=hi)
    return out


# cards ------------------------------------------------------------------------------------------

def check_card_path(path: Path, overwrite: bool) -> None:
    """Where ``judge-eval --card PATH`` may write: never inside the package or its built-in judges (the shipped
    cards are read-only data), never over an existing file unless ``overwrite``."""
    from alignbench.paths import is_shipped

    if is_shipped(path):
        raise UsageError(f"--card {path}: inside alignbench's own files (the shipped judge cards are read-only data); "
                         "write it elsewhere (a judges folder of your own: MYJUDGES/cards/NAME.json, found with ALIGNBENCH_JUDGES_DIR=MYJUDGES)")
    if path.is_dir():
        raise UsageError(f"--card {path}: is a folder; name the card file, e.g. {path / 'card.json'}")
    if path.exists() and not overwrite:
        raise UsageError(f"--card {path} already exists; pass --overwrite to replace it")


def make_card(judge_name: str, kind: str, set_name: str, source: str, report: dict[str, Any], **extra: Any) -> dict[str, Any]:
    from alignbench import __version__

    card = {"judge": judge_name, "kind": kind, "set": set_name, "source": source, "n": report["n"],
            "date": time.strftime("%Y-%m-%d"), "alignbench_version": __version__}
    card.update({k: v for k, v in report.items() if k not in ("judge", "n")})
    card.update(extra)
    return card


def write_card(path: Path, card: dict[str, Any]) -> None:
    from alignbench.jsonl import write_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, card, f"judge card {path}")
    except OSError as exc:
        raise UsageError(f"--card {path}: cannot write ({exc.strerror or exc})") from None


def read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"judge card {path}: cannot read ({exc.__class__.__name__})") from None
    missing = [f for f in CARD_FIELDS if f not in card] if isinstance(card, dict) else list(CARD_FIELDS)
    if missing:
        raise UsageError(f"judge card {path}: missing field {missing[0]!r}")
    return card


_FOLDERS: dict[str, Path] = {}  # judge name -> trained judge folder, for judges built from a folder


def register_folder(name: str, folder: Path) -> None:
    _FOLDERS[name] = Path(folder)


def find_card(judge_name: str) -> tuple[Path, dict[str, Any]] | None:
    """The card of a judge: its trained folder's card.json, else cards/NAME.json in a judges folder."""
    from alignbench.paths import judge_dirs

    candidates = [_FOLDERS[judge_name] / "card.json"] if judge_name in _FOLDERS else []
    candidates += [d / "cards" / f"{judge_name}.json" for d in judge_dirs()]
    for path in candidates:
        if path.is_file():
            return path, read_card(path)
    return None


# metrics.json ------------------------------------------------------------------------------------

def card_summary(path: Path, card: dict[str, Any]) -> dict[str, Any] | None:
    """``judge_validity`` of a metric: the card's binary figures (None when the card has none)."""
    binary = card.get("binary")
    if not isinstance(binary, dict) or "sensitivity" not in binary or "specificity" not in binary:
        return None
    out = {"card": str(path), "set": card["set"], "n": card["n"], "accuracy": binary.get("accuracy"),
           "sensitivity": binary["sensitivity"], "specificity": binary["specificity"], "positive": binary.get("positive"),
           "date": card["date"], "alignbench_version": card["alignbench_version"]}
    if card.get("held_out"):
        out["held_out"] = card["held_out"]
    if is_in_sample(card):
        out["in_sample"] = True
    return out


def is_in_sample(card: dict[str, Any]) -> bool:
    """A card whose figures come from the data the judge was built, trained or tuned on (``"in_sample": true``)."""
    return card.get("in_sample") is True


def correct_metric(rec: dict[str, Any], validity: dict[str, Any], positive: bool, seed: int = 0) -> dict[str, Any]:
    """The ``corrected`` entry of one metrics.json record (a share of positive or of negative judgments)."""
    n = int(rec.get("n") or 0)
    value = rec.get("value")
    if value is None or n <= 0:
        return {"value": None, "ci_low": None, "ci_high": None, "method": "rogan_gladen_mc", "reason": "no value"}
    se, sp = validity["sensitivity"], validity["specificity"]
    sens, spec = (int(se["x"]), int(se["n"])), (int(sp["x"]), int(sp["n"]))
    x = int(round(float(value) * n))
    # a share of negative judgments: the negative class's sensitivity is the specificity, and back
    out = corrected_prevalence(x, n, sens, spec, seed=seed) if positive else corrected_prevalence(x, n, spec, sens, seed=seed)
    if validity.get("in_sample"):
        out["warning"] = IN_SAMPLE_WARNING
    return out


def annotate(task_metrics: dict[str, Any], decided_by: dict[str, tuple[str, bool]], seed: int = 0) -> dict[str, Any]:
    """Add ``judge``, ``judge_validity`` and ``corrected`` to the metrics a judge decides (in place; returned)."""
    if not decided_by:
        return task_metrics
    cards: dict[str, dict[str, Any] | None] = {}
    for judge in {j for j, _ in decided_by.values()}:
        found = find_card(judge)
        cards[judge] = card_summary(*found) if found else None

    def one(rec: Any, metric: str) -> None:
        if not isinstance(rec, dict) or metric not in decided_by or "value" not in rec:
            return
        judge, positive = decided_by[metric]
        rec["judge"] = judge
        validity = cards.get(judge)
        if validity is not None:
            rec["judge_validity"] = validity
            rec["corrected"] = correct_metric(rec, validity, positive, seed=seed)

    for metric, rec in task_metrics.items():
        if metric != "by_category":
            one(rec, metric)
    for cat in (task_metrics.get("by_category") or {}).values():
        for metric, rec in (cat or {}).items():
            one(rec, metric)
    return task_metrics
