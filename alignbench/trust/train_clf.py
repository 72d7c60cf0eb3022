"""Training a learned judge: L2-regularised multinomial logistic regression on sentence embeddings,
cross-validated, written as a judge folder (``alignbench.judges.learned``).

The fit minimises the mean cross-entropy plus ``l2 / 2 * ||W||^2`` (bias not penalised) with
L-BFGS (scipy), from zero weights, so it is deterministic. Cross-validation is k-fold stratified by
label (or by ``groups`` when given: leave one group out, e.g. one model's completions).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from alignbench.errors import UsageError
from alignbench.trust.judge_metrics import label_agreement
from alignbench.trust.labelmap import is_label

DEFAULT_L2 = 1e-3


def fit_softmax(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float = DEFAULT_L2, max_iter: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Weights (features x classes) and bias (classes) of a multinomial logistic regression."""
    n, d = X.shape
    Y = np.eye(n_classes)[y]
    X64 = X.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: d * n_classes].reshape(d, n_classes)
        b = theta[d * n_classes:]
        P = softmax(X64 @ W + b, axis=1)
        ce = -np.log(np.clip((P * Y).sum(axis=1), 1e-300, None)).mean()
        G = (P - Y) / n
        grad = np.concatenate([(X64.T @ G + l2 * W).ravel(), G.sum(axis=0)])
        return float(ce + 0.5 * l2 * (W * W).sum()), grad

    res = minimize(loss, np.zeros(d * n_classes + n_classes), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    W = res.x[: d * n_classes].reshape(d, n_classes).astype(np.float32)
    return W, res.x[d * n_classes:].astype(np.float32)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Weights and bias of a binary logistic regression (0/1 ``y``): one logit, from a 2-class softmax fit."""
    W, b = fit_softmax(X, np.asarray(y, dtype=int), 2, l2)
    return (W[:, 1] - W[:, 0]).astype(np.float32), float(b[1] - b[0])


def fit_nested(X: np.ndarray, y: np.ndarray, l2: float, l2_partial: float,
               extra_positive: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A nested judge (``alignbench.judges.learned``, ``decision: nested``) for ``y`` in {0 negative, 1 positive,
    2 partial}: column 0 = positive-or-partial vs negative on all rows (plus the rows of ``extra_positive``,
    all positive), column 1 = partial vs positive on the positive rows (penalty ``l2_partial``)."""
    pos = y > 0
    extra = np.zeros((0, X.shape[1]), X.dtype) if extra_positive is None else extra_positive
    w0, b0 = fit_logistic(np.concatenate([X, extra]), np.concatenate([pos, np.ones(len(extra), bool)]), l2)
    w1, b1 = fit_logistic(X[pos], y[pos] == 2, l2_partial)
    return np.stack([w0, w1], axis=1), np.asarray([b0, b1], dtype=np.float32)


def predict(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return softmax(X @ W + b, axis=1).argmax(axis=1)


def folds(y: np.ndarray, k: int, groups: Sequence[str] | None = None, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(fold name, test indices): one per group, or k stratified folds (each label dealt round-robin
    after a seeded shuffle)."""
    if groups is not None:
        g = np.asarray(groups)
        return [(str(name), np.flatnonzero(g == name)) for name in dict.fromkeys(groups)]
    rng = np.random.default_rng(seed)
    assign = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        assign[idx] = np.arange(len(idx)) % k
    return [(f"fold{i + 1}", np.flatnonzero(assign == i)) for i in range(k)]


def cross_validate(X: np.ndarray, y: np.ndarray, labels: list[str], k: int = 5, groups: Sequence[str] | None = None,
                   l2: float = DEFAULT_L2, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold predictions and their figures (overall and per fold)."""
    pred = np.empty(len(y), dtype=int)
    per: dict[str, Any] = {}
    for name, test in folds(y, k, groups, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        W, b = fit_softmax(X[train], y[train], len(labels), l2)
        pred[test] = predict(X[test], W, b)
        per[name] = {"n": len(test), "accuracy": float((pred[test] == y[test]).mean())}
    rep = label_agreement([labels[i] for i in y], [labels[i] for i in pred])
    rep["folds"] = per
    rep["scheme"] = "leave one group out" if groups is not None else f"{k}-fold stratified"
    return pred, rep


def check_labels(labels: Sequence[Any], min_per_class: int, k: int) -> list[str]:
    """The sorted label set; a one-line UsageError when there is one class only or too few of one."""
    bad = [x for x in labels if not is_label(x)]
    if bad:
        raise UsageError(f"label {bad[0]!r} does not parse: labels must be non-empty strings or integers")
    counts = Counter(str(x) for x in labels)
    if len(counts) < 2:
        raise UsageError(f"only one class ({next(iter(counts), 'none')!r}): a judge needs labels of at least two classes")
    need = max(min_per_class, k)
    few = sorted((c, n) for c, n in counts.items() if n < need)
    if few:
        raise UsageError(f"too few labels of class {few[0][0]!r} ({few[0][1]}); each class needs at least {need} "
                         f"for {k}-fold cross-validation")
    return sorted(counts)


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """Where ``judge-train --output`` may write: a new or empty folder, or with ``overwrite`` an existing judge
    folder; never a run folder (its data would sit beside a judge's) and never alignbench's own files."""
    from alignbench.paths import is_shipped

    if is_shipped(folder):
        raise UsageError(f"--output {folder}: inside alignbench's own files (the shipped judges are read-only data); "
                         "write the judge elsewhere")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output {folder}: is a file; name a folder for the judge")
    if (folder / "run.json").is_file():
        raise UsageError(f"--output {folder}: is a run folder; name a folder of its own for the judge")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        what = "a judge folder" if (folder / "judge.json").exists() else "a folder that is not empty"
        raise UsageError(f"--output {folder}: {what} already exists; pass --overwrite to replace its judge or name another folder")


def write_folder(folder: Path, W: np.ndarray, b: np.ndarray, spec: dict[str, Any], card: dict[str, Any] | None,
                 weights: str = "npz") -> None:
    """A judge folder: judge.json, the weights (``weights.npz``, or ``weights.safetensors`` with ``weights="safetensors"``)
    and, given a card, card.json."""
    from alignbench.jsonl import write_json

    try:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"W": np.ascontiguousarray(W, dtype=np.float32), "b": np.ascontiguousarray(b, dtype=np.float32)}
        if weights == "safetensors":
            from safetensors.numpy import save_file

            save_file(arrays, str(folder / "weights.safetensors"))
        else:
            np.savez_compressed(folder / "weights.npz", **arrays)
        # a folder holds one weights file: a judge rewritten in the other format must not be read from the old one
        (folder / ("weights.npz" if weights == "safetensors" else "weights.safetensors")).unlink(missing_ok=True)
        write_json(folder / "judge.json", spec)
        if card is not None:
            write_json(folder / "card.json", card)
    except OSError as exc:
        raise UsageError(f"--output {folder}: cannot write ({exc.strerror or exc})") from None


def today() -> str:
    return time.strftime("%Y-%m-%d")
