"""Best-of-N: how often the epoch a reward model picks beats the run's first epoch (``--reducer best_of:JUDGE``).

With ``--epochs N`` every prompt has N responses. The best-of-N response is the one JUDGE scores
highest (``alignbench.records.epochs.best_epoch_record``); its win rate against the first epoch's response,
by the same judge's rewards, is the quantity best-of-N alignment optimises (InfAlign: the win rate of
the best-of-N policy against the base policy): a win when the best reward exceeds the first epoch's
by more than ``margin``, a tie within it (also when the first epoch is the best), so the value is
(wins + ties / 2) / prompts, with the 95% CI of ``alignbench.stats.intervals.summarize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignbench.records.epochs import best_epoch_record, judge_score, record_epoch
from alignbench.stats.intervals import summarize


def win_rate_vs_first(records: Sequence[dict[str, Any]], judge: str, margin: float = 0.0, seed: int = 0) -> dict[str, Any] | None:
    """``{"value", "ci_low", "ci_high", "n", "wins", "ties", "epochs", ...}`` over the prompts with 2+ scored
    epochs (of one task); None when there are none."""
    by_sample: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_sample.setdefault(str(r.get("sample_id")), []).append(r)
    values: list[float] = []
    wins = ties = 0
    epochs = 0
    for recs in by_sample.values():
        recs = sorted(recs, key=record_epoch)
        first = recs[0]
        s0 = judge_score(first, judge)
        best = best_epoch_record(recs, judge)
        if len(recs) < 2 or s0 is None or best is None:
            continue
        epochs = max(epochs, len(recs))
        d = (judge_score(best, judge) or 0.0) - s0
        if d > margin:
            wins += 1
            values.append(1.0)
        else:
            ties += 1
            values.append(0.5)
    if not values:
        return None
    rec = summarize(values, seed=seed)
    return {"value": rec["value"], "ci_low": rec["ci_low"], "ci_high": rec["ci_high"], "n": len(values), "wins": wins, "ties": ties,
            "epochs": epochs, "judge": judge, "margin": margin}


__all__ = ["win_rate_vs_first"]
