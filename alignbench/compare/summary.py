"""What compare.json says about judged pairs: win rates, Bradley-Terry and Elo ratings, position bias, agreement.

Computed per scope (every task together, and each task), from the ``pairs.jsonl`` lines whose judgment
did not fail:

- per pair of runs: wins / ties / losses of run a against run b and a's win rate (wins + ties / 2) / n
  with a 95% CI (``alignbench.stats.intervals.summarize``: Wilson without ties, else the percentile bootstrap);
- ``bradley_terry``: strengths (geometric mean 1) and ratings on the Elo scale (1000 + 400 log10 p),
  fitted with ``pseudo_count`` virtual ties between every two runs (so a run that never loses still gets
  a finite strength), with percentile CIs from a bootstrap that resamples samples (every comparison of
  a sample goes in or out together);
- ``elo``: Elo ratings averaged over ``rounds`` seeded orders of the comparisons (``alignbench.stats.ratings``);
- ``position_flips`` (jury): the share of juror verdicts that changed when the two responses swapped
  places, and how many of those favoured the first or the second position;
- ``agreement`` (jury with 2+ jurors): Fleiss' kappa of the jurors' verdicts over the units every juror
  decided, and the unanimous share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from alignbench.compare.pairs_file import SCORE
from alignbench.stats import agreement, ratings
from alignbench.stats.intervals import BOOTSTRAP_RESAMPLES, percentile, resample_indices, summarize

PSEUDO_COUNT = 1.0
ELO_ROUNDS = 100
ELO_K = 32
BT_BASE, BT_SCALE = 1000, 400  # rating = BT_BASE + BT_SCALE * log10(strength)


def _clean(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def pair_table(lines: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, str]], seed: int) -> list[dict[str, Any]]:
    out = []
    for a, b in pairs:
        mine = [ln for ln in lines if ln["a"] == a and ln["b"] == b]
        ok = [ln for ln in mine if ln.get("winner") is not None]
        if not mine:
            continue
        wins = sum(ln["winner"] == "a" for ln in ok)
        ties = sum(ln["winner"] == "tie" for ln in ok)
        rec = summarize([SCORE[ln["winner"]] for ln in ok], seed=seed) if ok else {"value": None, "ci_low": None, "ci_high": None}
        out.append({"a": a, "b": b, "n": len(ok), "wins": wins, "ties": ties, "losses": len(ok) - wins - ties,
                    "failed": len(mine) - len(ok), "win_rate": rec["value"], "ci_low": rec["ci_low"], "ci_high": rec["ci_high"],
                    "ci_method": rec.get("ci_method", "bootstrap")})
    return out


def unit_matrices(lines: Sequence[dict[str, Any]], models: list[str]) -> np.ndarray:
    """One win matrix per sample (task, sample id): U x M x M, ties half a win each way."""
    idx = {m: i for i, m in enumerate(models)}
    samples: dict[tuple[str, str], int] = {}
    for ln in lines:
        samples.setdefault((ln["task"], ln["sample_id"]), len(samples))
    w = np.zeros((len(samples), len(models), len(models)))
    for ln in lines:
        u, i, j = samples[(ln["task"], ln["sample_id"])], idx[ln["a"]], idx[ln["b"]]
        s = SCORE[ln["winner"]]  # counted from the winner alone (a line's score field is only checked against it)
        w[u, i, j] += s
        w[u, j, i] += 1.0 - s
    return w


def bradley_terry(lines: Sequence[dict[str, Any]], models: list[str], seed: int, pseudo_count: float = PSEUDO_COUNT,
                  resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """Strengths, ratings and bootstrap CIs (resampling samples) of ``models`` from decided lines."""
    if len(models) < 2 or not lines:
        return {}
    per_unit = unit_matrices(lines, models)
    prior = (np.ones((len(models),) * 2) - np.eye(len(models))) * pseudo_count / 2.0
    point = ratings.bt_fit(per_unit.sum(axis=0) + prior)
    idx = resample_indices(len(per_unit), seed, resamples)
    counts = np.stack([np.bincount(row, minlength=len(per_unit)) for row in idx]).astype(float)
    boot = (counts @ per_unit.reshape(len(per_unit), -1)).reshape(resamples, len(models), len(models)) + prior
    strengths = ratings.bt_fit(boot)
    out = {}
    for k, m in enumerate(models):
        col = strengths[:, k]
        col = col[~np.isnan(col)]
        lo, hi = percentile(BT_BASE + BT_SCALE * np.log10(col)) if len(col) else (math.nan, math.nan)
        out[m] = {"strength": _clean(point[k]), "rating": _clean(BT_BASE + BT_SCALE * math.log10(point[k])) if point[k] > 0 else None,
                  "ci_low": _clean(lo), "ci_high": _clean(hi)}
    return out


def elo(lines: Sequence[dict[str, Any]], seed: int, rounds: int = ELO_ROUNDS) -> dict[str, float]:
    comps = [(ln["a"], ln["b"], ln["a"] if ln["winner"] == "a" else ln["b"] if ln["winner"] == "b" else "tie") for ln in lines]
    return ratings.elo(comps, k=ELO_K, seed=seed, rounds=rounds) if comps else {}


def position_flips(lines: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    both = [v for ln in lines for v in ln.get("verdicts") or [] if v.get("first") is not None and v.get("swapped") is not None]
    if not any(ln.get("verdicts") for ln in lines):
        return None
    flipped = [v for v in both if v["first"] != v["swapped"]]
    return {"verdicts": len(both), "flipped": len(flipped), "share": _clean(len(flipped) / len(both)) if both else None,
            "favoured_first": sum(v["first"] == "A" and v["swapped"] == "B" for v in flipped),
            "favoured_second": sum(v["first"] == "B" and v["swapped"] == "A" for v in flipped)}


def jury_agreement(lines: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    jurors = sorted({str(v.get("judge")) for ln in lines for v in ln.get("verdicts") or []})
    if len(jurors) < 2:
        return None
    rows = []
    for ln in lines:
        by = {str(v.get("judge")): v.get("label") for v in ln.get("verdicts") or []}
        if all(by.get(j) is not None for j in jurors):
            rows.append([by[j] for j in jurors])
    kappa = agreement.fleiss_kappa(ratings=rows) if len(rows) >= 2 else math.nan
    return {"jurors": jurors, "n": len(rows), "fleiss_kappa": _clean(kappa),
            "unanimous": _clean(float(np.mean([len(set(r)) == 1 for r in rows]))) if rows else None,
            "disagreements": sum(bool(ln.get("disagree")) for ln in lines)}


def scope(lines: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, str]], seed: int) -> dict[str, Any]:
    """Everything compare.json reports over one set of lines (one task, or all)."""
    decided = [ln for ln in lines if ln.get("winner") is not None]
    present = {m for ln in decided for m in (ln["a"], ln["b"])}
    models = [m for m in dict.fromkeys(m for pair in pairs for m in pair) if m in present]
    return {"n": len(decided), "failed": len(lines) - len(decided), "pairs": pair_table(lines, pairs, seed),
            "bradley_terry": bradley_terry(decided, models, seed), "elo": elo(decided, seed),
            "position_flips": position_flips(lines), "agreement": jury_agreement(lines)}


def summarize_lines(lines: Sequence[dict[str, Any]], pairs: Sequence[tuple[str, str]], seed: int) -> dict[str, Any]:
    tasks = list(dict.fromkeys(ln["task"] for ln in lines))
    return {"overall": scope(lines, pairs, seed), "by_task": {t: scope([ln for ln in lines if ln["task"] == t], pairs, seed) for t in tasks}}
