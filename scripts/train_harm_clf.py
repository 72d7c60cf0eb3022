"""Train the built-in ``harm_clf`` judge from human harm labels, and write its card with cross-source figures.

    python scripts/train_harm_clf.py --data ../shared/data [--lengths]

Reads two sources in their authors' layouts: GPTFuzz's labelled responses (gpt-3.5 under jailbreak
templates, ``harm_labels/gptfuzz``) and JailbreakEval's Safe-RLHF sample (Alpaca-family answers,
``harm_labels/saferlhf_mini``), plus the XSTest completions to its unsafe (``contrast_*``) prompts, where
a full compliance is harmful (``xstest_completions``; never trained on). Writes
``judges/models/harm_clf/{judge.json,weights.safetensors}`` and ``judges/cards/harm_clf.json``.

The judge: the response's first ``--max-seq-length`` tokens through the packaged all-MiniLM-L6-v2, the
hidden states after ``--layers`` each mean-pooled and L2-normalised, beside the two logits of the
shipped ``refusal_clf`` (refused or not, partial or full); one L2-penalised logistic regression (L-BFGS
from zero weights, so a rerun on the same files gives the same judge) over both sources.

Its figures are cross-source: each source is judged by the regression trained on the other one alone,
the XSTest completions by the final one (trained on both). ``--lengths`` also measures them with every
response cut to 64, 128 and 256 tokens of the default model (what ``--max-new-tokens`` leaves of an answer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alignbench import __version__  # noqa: E402
from alignbench.commands._judge_io import judge_input  # noqa: E402
from alignbench.judges._resources import DEFAULT_EMBEDDING_MODEL  # noqa: E402
from alignbench.judges.learned import EmbeddingClassifierJudge, features, softmax  # noqa: E402
from alignbench.trust.cards import write_card  # noqa: E402
from alignbench.trust.human_sets import load_set  # noqa: E402
from alignbench.trust.judge_metrics import binary_agreement  # noqa: E402
from alignbench.trust.train_clf import fit_softmax, today, write_folder  # noqa: E402

LABELS = ["safe", "unsafe"]
FEATURES = ["response_embedding", "judge_logits"]
REFUSAL_JUDGE = REPO / "judges" / "models" / "refusal_clf"  # the judge harm_clf stacks on
SOURCES = {"gptfuzz": "gptfuzz_human:{data}/harm_labels/gptfuzz", "saferlhf": "saferlhf_human:{data}/harm_labels/saferlhf_mini"}
CUTS = (64, 128, 256)
TRAIN_BATCH = 8


def load_rows(data: Path) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Rows per source (gptfuzz, saferlhf, xstest_unsafe) with ``y`` (1 harmful), and the sha256 (first 16) of every file read."""
    rows: dict[str, list[dict]] = {name: load_set(spec.format(data=data))[1] for name, spec in SOURCES.items()}
    xs = load_set(f"xstest_human:{data}/xstest_completions")[1]
    rows["xstest_unsafe"] = [dict(r, label="harmful" if r["label"] == "full_compliance" else "not_harmful")
                             for r in xs if r["meta"]["prompt_label"] == "unsafe"]
    for group in rows.values():
        for n, r in enumerate(group, 1):
            r["_line"] = n
            r["y"] = int(r["label"] == "harmful")
    read = [*sorted((data / "harm_labels").glob("*/*.csv")), *sorted((data / "xstest_completions").glob("xstest_v2_completions_*.csv"))]
    return rows, {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in read}


def feature_matrix(rows: list[dict], args: argparse.Namespace, refusal: EmbeddingClassifierJudge) -> np.ndarray:
    # eight texts through the encoder at a time (in order of length): a third faster than the judge's one at a time,
    # and the same vectors to float32 rounding, which the regression does not notice
    return features([judge_input(r) for r in rows], FEATURES, DEFAULT_EMBEDDING_MODEL, "cpu", args.max_seq_length,
                    layers=args.layers, stacked=refusal, layer_batch=TRAIN_BATCH)


def predict(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(unsafe) of each row."""
    return softmax(X @ W + b)[:, 1]


def figures(y: np.ndarray, p: np.ndarray, groups: list[str]) -> dict:
    """Binary figures of predictions ``p`` (P(unsafe) >= 0.5 is harmful) against human labels ``y``, and per group."""
    out = binary_agreement([bool(v) for v in y], [bool(v) for v in p >= 0.5], "harmful")
    out["per_source"] = {}
    for g in dict.fromkeys(groups):
        idx = np.asarray([i for i, x in enumerate(groups) if x == g])
        sub = binary_agreement([bool(v) for v in y[idx]], [bool(v) for v in p[idx] >= 0.5], "harmful")
        out["per_source"][g] = {k: sub[k] for k in ("n", "accuracy", "cohen_kappa", "prevalence_human", "prevalence_judge")}
        out["per_source"][g].update({k: sub[k]["value"] for k in ("sensitivity", "specificity")})
        out["per_source"][g]["auc"] = float(roc_auc_score(y[idx], p[idx])) if 0 < y[idx].sum() < len(idx) else None
    return out


def cross_source(X: dict[str, np.ndarray], y: dict[str, np.ndarray], l2: float) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Held-out P(unsafe) per source (each training source judged by the regression fit on the other; XSTest by
    the final one) and the final weights, fit on both training sources."""
    held: dict[str, np.ndarray] = {}
    for test, train in (("gptfuzz", "saferlhf"), ("saferlhf", "gptfuzz")):
        W, b = fit_softmax(X[train], y[train], 2, l2)
        held[test] = predict(X[test], W, b)
    final = fit_softmax(np.concatenate([X["gptfuzz"], X["saferlhf"]]), np.concatenate([y["gptfuzz"], y["saferlhf"]]), 2, l2)
    held["xstest_unsafe"] = predict(X["xstest_unsafe"], *final)
    return held, final


def pooled(held: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict:
    names = list(held)
    return figures(np.concatenate([y[k] for k in names]), np.concatenate([held[k] for k in names]),
                   [k for k in names for _ in range(len(held[k]))])


def cut_responses(rows: list[dict], n: int, tokenizer) -> list[dict]:
    """The rows with each response cut to its first ``n`` tokens of the default model."""
    out = []
    for r in rows:
        ids = tokenizer(r["response"], add_special_tokens=False)["input_ids"]
        out.append(r if len(ids) <= n else dict(r, response=tokenizer.decode(ids[:n])))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="folder holding harm_labels/ and xstest_completions/")
    ap.add_argument("--output", default=str(REPO / "judges" / "models" / "harm_clf"))
    ap.add_argument("--card", default=str(REPO / "judges" / "cards" / "harm_clf.json"))
    ap.add_argument("--max-seq-length", type=int, default=256, help="tokens of the response read (default: 256)")
    ap.add_argument("--layers", default="3,4,5,6", help="encoder layers whose pooled states are features (default: 3,4,5,6)")
    ap.add_argument("--l2", type=float, default=3e-4, help="L2 penalty of the regression (default: 3e-4)")
    ap.add_argument("--lengths", action="store_true", help="also measure the figures with responses cut to 64/128/256 tokens")
    args = ap.parse_args()
    args.layers = [int(k) for k in args.layers.split(",")]
    data = Path(args.data)

    rows, files = load_rows(data)
    refusal = EmbeddingClassifierJudge("refusal_clf", path=str(REFUSAL_JUDGE))
    print(f"embedding {sum(map(len, rows.values()))} responses ...", file=sys.stderr)
    X = {k: feature_matrix(v, args, refusal) for k, v in rows.items()}
    y = {k: np.asarray([r["y"] for r in v]) for k, v in rows.items()}
    held, (W, b) = cross_source(X, y, args.l2)
    report = pooled(held, y)

    lengths = {}
    if args.lengths:
        from transformers import AutoTokenizer

        from alignbench.backends.default import packaged_gguf

        gguf = packaged_gguf()
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        for n in CUTS:
            print(f"responses cut to {n} tokens ...", file=sys.stderr)
            Xn = {k: feature_matrix(cut_responses(v, n, tok), args, refusal) for k, v in rows.items()}
            # the regressions stay those trained on whole responses: only what the judge reads is cut
            held_n = {"gptfuzz": predict(Xn["gptfuzz"], *fit_softmax(X["saferlhf"], y["saferlhf"], 2, args.l2)),
                      "saferlhf": predict(Xn["saferlhf"], *fit_softmax(X["gptfuzz"], y["gptfuzz"], 2, args.l2)),
                      "xstest_unsafe": predict(Xn["xstest_unsafe"], W, b)}
            fig = pooled(held_n, y)
            lengths[str(n)] = {"accuracy": fig["accuracy"], "per_source": {k: v["accuracy"] for k, v in fig["per_source"].items()}}

    spec = {"labels": LABELS, "score_label": "unsafe", "embedder": DEFAULT_EMBEDDING_MODEL, "features": FEATURES,
            "judge_logits": os.path.relpath(REFUSAL_JUDGE, Path(args.output).resolve()), "layers": args.layers, "max_seq_length": args.max_seq_length, "l2": args.l2,
            "trained_on": "gptfuzz_human + saferlhf_human", "n_train": len(rows["gptfuzz"]) + len(rows["saferlhf"]), "data": files}
    write_folder(Path(args.output), W, b, spec, None, weights="safetensors")
    cmd = (f"python scripts/train_harm_clf.py --data DATA --max-seq-length {args.max_seq_length} "
           f"--layers {','.join(map(str, args.layers))} --l2 {args.l2}" + (" --lengths" if args.lengths else ""))
    card = {"judge": "harm_clf", "kind": "embedding_clf", "set": "gptfuzz_human + saferlhf_human + xstest_human (unsafe prompts)",
            "source": f"{data}/harm_labels/gptfuzz, {data}/harm_labels/saferlhf_mini, {data}/xstest_completions", "n": report["n"],
            "date": today(), "alignbench_version": __version__,
            "built_on": ("GPTFuzz's labelled responses (gpt-3.5-turbo under jailbreak templates, MIT) and JailbreakEval's Safe-RLHF "
                         "sample (Alpaca-family answers, CC-BY-NC-4.0: a judge trained on it inherits the non-commercial terms)"),
            "held_out": ("cross-source: GPTFuzz judged by the regression trained on Safe-RLHF alone, Safe-RLHF by the one trained on "
                         "GPTFuzz alone; the XSTest completions to unsafe prompts (full compliance = harmful) by the shipped judge, "
                         "which never saw them"),
            "figures": "cross-source (each source judged by a judge that never saw it), pooled; per_source below",
            "accuracy": report["accuracy"], "cohen_kappa": report["cohen_kappa"], "binary": report,
            **({"lengths": {"tokens_of_the_default_model": lengths}} if lengths else {}),
            "trained_on": "gptfuzz_human + saferlhf_human", "command": cmd, "data": files,
            "selection": ("the layers, the length read, the penalty and the stacked refusal logits were chosen on these same "
                          "cross-source figures among about 60 variants (frozen and fine-tuned encoders, other poolings), so they "
                          "are somewhat optimistic for other sources")}
    write_card(Path(args.card), card)
    print(json.dumps({"cross-source accuracy": report["accuracy"],
                      "per_source": {k: {"accuracy": round(v["accuracy"], 4), "auc": round(v["auc"], 4)}
                                     for k, v in report["per_source"].items()},
                      **({"lengths": lengths} if lengths else {})}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
