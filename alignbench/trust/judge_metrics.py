"""Judge-versus-human figures: label agreement (accuracy, macro-F1, Cohen's kappa, confusion), the
binary view (sensitivity, specificity with Wilson CIs) and the human-human agreement of a set, the
ceiling a judge can be compared with."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from alignbench.stats.agreement import cohen_kappa, fleiss_kappa
from alignbench.trust.cards import wilson


def _clean(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def label_agreement(human: Sequence[Hashable], judge: Sequence[Hashable]) -> dict[str, Any]:
    """How well a judge's labels match human labels: accuracy, macro-F1 (over the union of labels, a
    label never predicted nor present scoring F1 0 as in scikit-learn), Cohen's kappa, and the
    confusion matrix (rows: human labels, columns: judge labels, both in ``labels`` order)."""
    if len(human) != len(judge):
        raise ValueError("human and judge label lists differ in length")
    labels = sorted(set(human) | set(judge), key=str)
    n = len(human)
    index = {c: i for i, c in enumerate(labels)}
    conf = np.zeros((len(labels), len(labels)), dtype=int)
    for h, j in zip(human, judge):
        conf[index[h], index[j]] += 1
    f1s = []
    for i in range(len(labels)):
        tp = conf[i, i]
        pred, true = conf[:, i].sum(), conf[i, :].sum()
        prec = tp / pred if pred else 0.0
        rec = tp / true if true else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return {
        "n": n,
        "accuracy": float(np.trace(conf) / n) if n else None,
        "macro_f1": float(np.mean(f1s)) if n else None,
        "cohen_kappa": _clean(cohen_kappa(list(human), list(judge))) if n else None,
        "labels": [str(c) for c in labels],
        "confusion": conf.tolist(),
    }


def binary_agreement(human: Sequence[bool], judge: Sequence[bool], positive: str) -> dict[str, Any]:
    """Accuracy, Cohen's kappa, sensitivity = P(judge positive | human positive) and specificity =
    P(judge negative | human negative), each with its Wilson 95% CI and counts (``x`` of ``n``);
    ``confusion`` = [[TN, FP], [FN, TP]] (rows: human negative/positive)."""
    tp = sum(1 for h, j in zip(human, judge) if h and j)
    fn = sum(1 for h, j in zip(human, judge) if h and not j)
    tn = sum(1 for h, j in zip(human, judge) if not h and not j)
    fp = sum(1 for h, j in zip(human, judge) if not h and j)
    n = tp + fn + tn + fp
    return {
        "positive": positive, "n": n,
        "accuracy": (tp + tn) / n if n else None,
        "cohen_kappa": _clean(cohen_kappa(list(human), list(judge))) if n else None,
        "sensitivity": wilson(tp, tp + fn), "specificity": wilson(tn, tn + fp),
        "prevalence_human": (tp + fn) / n if n else None, "prevalence_judge": (tp + fp) / n if n else None,
        "confusion": [[tn, fp], [fn, tp]],
    }


def human_agreement(annotations: Sequence[Sequence[Hashable]]) -> dict[str, Any] | None:
    """Agreement among a set's annotators (items x annotators labels, all items rated by all):
    mean pairwise percent agreement, mean pairwise Cohen's kappa and (3+ annotators) Fleiss' kappa."""
    rows = [list(r) for r in annotations if r is not None and len(r) >= 2]
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    k = len(rows[0])
    pairs = list(combinations(range(k), 2))
    acc = [sum(r[a] == r[b] for r in rows) / len(rows) for a, b in pairs]
    kap = [cohen_kappa([r[a] for r in rows], [r[b] for r in rows]) for a, b in pairs]
    kap = [x for x in kap if not math.isnan(x)]
    out: dict[str, Any] = {"annotators": k, "n": len(rows), "accuracy": sum(acc) / len(acc),
                           "cohen_kappa": sum(kap) / len(kap) if kap else None}
    if k >= 3:
        out["fleiss_kappa"] = _clean(fleiss_kappa(ratings=rows))
    return out
