"""Ratings of models from pairwise comparisons: Elo and Bradley-Terry.

A comparison is ``(model_a, model_b, winner)`` with ``winner`` one of ``model_a``, ``model_b`` or
``"tie"``. Ties count as half a win for each side in both methods.

* ``elo``: sequential Elo updates with factor ``k`` (expected score 1 / (1 + 10^((Rb - Ra)/scale))).
  Elo depends on the order of the comparisons: pass ``seed`` to play them in an order that seed alone
  decides (sorted, then shuffled, so the caller's order does not matter), and
  ``rounds`` > 1 to average ratings over several seeded orders.
* ``bradley_terry``: maximum-likelihood strengths p_i with P(i beats j) = p_i / (p_i + p_j), by
  Hunter's (2004) MM algorithm, normalised to geometric mean 1; ``ratings`` puts them on the Elo
  scale (``base + scale * log10(p_i)``). The MLE exists only when the comparison graph is strongly
  connected (no model that never loses or never wins against the rest); otherwise pass
  ``pseudo_count`` > 0, which adds that many virtual ties between every pair of models.

``comparisons_from_records`` turns ``llm_pairwise`` judgments (A = the response, B = the baseline)
into comparisons.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

Comparison = tuple[str, str, str]


def _models(comparisons: Sequence[Comparison]) -> list[str]:
    out: list[str] = []
    for a, b, w in comparisons:
        if w not in (a, b, "tie"):
            raise ValueError(f"winner {w!r} of ({a!r}, {b!r}) must be one of the two models or 'tie'")
        if a == b:
            raise ValueError(f"a model cannot be compared with itself ({a!r})")
        for m in (a, b):
            if m not in out:
                out.append(m)
    return out


def elo(comparisons: Sequence[Comparison], k: float = 32.0, initial: float = 1000.0, scale: float = 400.0,
        seed: int | None = None, rounds: int = 1) -> dict[str, float]:
    """Elo ratings after playing ``comparisons`` in order (or in ``rounds`` seeded shuffled orders, averaged)."""
    models = _models(comparisons)
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    totals = {m: 0.0 for m in models}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(comparisons)
        if seed is not None:  # the seed alone decides the order: the same comparisons in any order rate the same
            order.sort()
            rng.shuffle(order)
        r = {m: float(initial) for m in models}
        for a, b, w in order:
            expected_a = 1.0 / (1.0 + 10 ** ((r[b] - r[a]) / scale))
            s_a = 1.0 if w == a else 0.0 if w == b else 0.5
            r[a] += k * (s_a - expected_a)
            r[b] -= k * (s_a - expected_a)
        for m in models:
            totals[m] += r[m]
    return {m: totals[m] / rounds for m in models}


def win_matrix(comparisons: Sequence[Comparison], models: list[str] | None = None,
               pseudo_count: float = 0.0) -> tuple[list[str], np.ndarray]:
    """(models, W) with W[i, j] = wins of i over j (ties 0.5 each; ``pseudo_count`` virtual ties per pair)."""
    models = models or _models(comparisons)
    idx = {m: i for i, m in enumerate(models)}
    w = np.zeros((len(models), len(models)))
    for a, b, win in comparisons:
        i, j = idx[a], idx[b]
        if win == a:
            w[i, j] += 1
        elif win == b:
            w[j, i] += 1
        else:
            w[i, j] += 0.5
            w[j, i] += 0.5
    if pseudo_count:
        w += (np.ones_like(w) - np.eye(len(models))) * pseudo_count / 2.0
    return models, w


def bt_fit(w: np.ndarray, max_iter: int = 10000, tol: float = 1e-10) -> np.ndarray:
    """Bradley-Terry strengths (geometric mean 1) of win matrices by the MM algorithm.

    ``w`` is one ``M x M`` matrix (W[i, j] = wins of i over j) or a stack ``B x M x M`` (bootstrap
    replicates, fitted together); returns ``M`` or ``B x M`` strengths. NaN where the MLE does not
    exist (a model that never wins or never loses in that matrix).
    """
    w = np.asarray(w, dtype=float)
    single = w.ndim == 2
    w = w[None] if single else w
    n = w + np.swapaxes(w, 1, 2)  # games between i and j
    wins = w.sum(axis=2)
    bad = np.any(wins <= 0, axis=1) | np.any(n.sum(axis=2) - wins <= 0, axis=1)
    p = np.ones(wins.shape)
    live = ~bad
    for _ in range(max_iter):
        if not live.any():
            break
        q = p[live]
        denom = (n[live] / (q[:, :, None] + q[:, None, :])).sum(axis=2)
        new = wins[live] / denom
        new /= np.exp(np.log(new).mean(axis=1, keepdims=True))
        done = np.max(np.abs(new - q), axis=1) < tol
        p[live] = new
        live[np.flatnonzero(live)[done]] = False
    p[bad] = np.nan
    return p[0] if single else p


def bradley_terry(comparisons: Sequence[Comparison], pseudo_count: float = 0.0, max_iter: int = 10000,
                  tol: float = 1e-10) -> dict[str, float]:
    """Bradley-Terry strengths (geometric mean 1) by the MM algorithm."""
    models, w = win_matrix(comparisons, pseudo_count=pseudo_count)
    if len(models) < 2:
        return {m: 1.0 for m in models}
    p = bt_fit(w, max_iter=max_iter, tol=tol)
    if np.isnan(p).any():
        raise ValueError("Bradley-Terry MLE does not exist: a model never wins or never loses; pass pseudo_count > 0")
    return {m: float(x) for m, x in zip(models, p)}


def bt_ratings(comparisons: Sequence[Comparison], base: float = 1000.0, scale: float = 400.0, **kw: Any) -> dict[str, float]:
    """Bradley-Terry strengths on the Elo scale: ``base + scale * log10(p)``."""
    return {m: base + scale * math.log10(p) for m, p in bradley_terry(comparisons, **kw).items()}


def comparisons_from_records(records: Sequence[dict[str, Any]], judge_name: str, model: str, baseline: str) -> list[Comparison]:
    """Comparisons of ``model`` (the judged response, A) against ``baseline`` (B) from ``llm_pairwise``
    judgments; samples whose judgment failed are left out."""
    out: list[Comparison] = []
    for r in records:
        jd = (r.get("judgments") or {}).get(judge_name) or {}
        label = jd.get("label") if not jd.get("error") else None
        if label in ("A", "B", "tie"):
            out.append((model, baseline, model if label == "A" else baseline if label == "B" else "tie"))
    return out
