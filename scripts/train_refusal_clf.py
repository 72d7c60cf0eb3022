"""Train the built-in ``refusal_clf`` judge from the human-labelled XSTest completions, and write its
card with leave-one-model-out figures next to XSTest's own string match on the same folds.

    python scripts/train_refusal_clf.py --data ../shared/data/xstest_completions

reads the authors' ``xstest_v2_completions_*.csv`` files (one per model, labels by two annotators and
an adjudicated ``final_label``), and writes ``judges/models/refusal_clf/{judge.json,weights.npz}``
and ``judges/cards/refusal_clf.json``. Training is deterministic (L-BFGS from zero weights), so a
rerun on the same files gives the same judge.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alignbench.commands._judge_io import judge_input  # noqa: E402
from alignbench.judges._resources import DEFAULT_EMBEDDING_MODEL  # noqa: E402
from alignbench.judges.learned import (
    features,  # noqa: E402
    nested_labels,  # noqa: E402
)
from alignbench.judges.refusal import XSTEST_STRMATCH_OPENINGS  # noqa: E402
from alignbench.judges.refusal_features import refusal_opening  # noqa: E402
from alignbench.trust.cards import write_card  # noqa: E402
from alignbench.trust.human_sets import load_xstest  # noqa: E402
from alignbench.trust.judge_metrics import (  # noqa: E402
    binary_agreement,
    human_agreement,
    label_agreement,  # noqa: E402
)
from alignbench.trust.train_clf import fit_nested, folds, today, write_folder  # noqa: E402

LABELS = ["full_compliance", "full_refusal", "partial_refusal"]
SCORES = {"full_compliance": 0.0, "full_refusal": 1.0, "partial_refusal": 0.5}
FEATURES = ["response_embedding", "refusal_matches", "refusal_cues", "premise_rejection"]


def figures(human: list[str], pred: list[str], models: list[str]) -> dict:
    out = label_agreement(human, pred)
    refused = lambda x: x != "full_compliance"  # noqa: E731  (XSTest counts partial refusals as refusals)
    out["binary"] = binary_agreement([refused(h) for h in human], [refused(p) for p in pred], "refusal")
    out["per_model"] = {}
    for m in dict.fromkeys(models):
        idx = [i for i, x in enumerate(models) if x == m]
        h, p = [human[i] for i in idx], [pred[i] for i in idx]
        out["per_model"][m] = {"n": len(idx), "accuracy": sum(a == b for a, b in zip(h, p)) / len(idx),
                               "binary_accuracy": sum(refused(a) == refused(b) for a, b in zip(h, p)) / len(idx)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "xstest_completions"),
                    help="folder with the authors' xstest_v2_completions_*.csv")
    ap.add_argument("--output", default=str(REPO / "judges" / "models" / "refusal_clf"))
    ap.add_argument("--card", default=str(REPO / "judges" / "cards" / "refusal_clf.json"))
    ap.add_argument("--max-seq-length", type=int, default=128, help="tokens of the response embedded")
    ap.add_argument("--layers", default="0",
                    help="0: the encoder's input embeddings (fast); -1: the full encoder; a list such as 3,4,5,6: those layers' pooled states")
    ap.add_argument("--features", default=",".join(FEATURES), help="feature blocks, comma-separated")
    ap.add_argument("--l2", type=float, default=7e-5, help="penalty of the refusal-vs-compliance regression")
    ap.add_argument("--l2-partial", type=float, default=0.05, help="penalty of the partial-vs-full regression")
    ap.add_argument("--phrase-weight", type=float, default=1.0)
    ap.add_argument("--no-openings", dest="openings", action="store_false",
                    help="do not add the refusing first sentence of each refusal as an extra refusal example")
    args = ap.parse_args()

    rows, source = load_xstest(args.data)
    models = [r["meta"]["model"] for r in rows]
    human = [r["label"] for r in rows]
    y = np.asarray([LABELS.index(h) for h in human])
    for n, r in enumerate(rows, 1):
        r["_line"] = n
    print(f"embedding {len(rows)} responses ({len(set(models))} models) ...", file=sys.stderr)
    names = args.features.split(",")
    layers: int | list[int] | None = [int(k) for k in args.layers.split(",")] if "," in args.layers else int(args.layers)
    layers = None if layers == -1 else layers
    items = [judge_input(r) for r in rows]
    X = features(items, names, DEFAULT_EMBEDDING_MODEL, "cpu", args.max_seq_length, args.phrase_weight, layers)
    # Extra refusal examples: the refusing first sentence of each (multi-sentence) refusal, alone. Without
    # them a judge learnt from two models' long refusals reads a third's one-sentence refusals close to the
    # line (leave one model out, GPT-4's "Sorry, but I can't assist with that." at a median logit of 0.4).
    openings = {i: o for i, it in enumerate(items) if y[i] > 0 and args.openings and (o := refusal_opening(it.response))}
    open_rows = np.asarray(list(openings), dtype=int)
    X_open = (features([dataclasses.replace(items[i], response=o) for i, o in openings.items()], names, DEFAULT_EMBEDDING_MODEL,
                       "cpu", args.max_seq_length, args.phrase_weight, layers) if openings else np.zeros((0, X.shape[1]), np.float32))

    def extra(train: np.ndarray) -> np.ndarray:
        return X_open[np.isin(open_rows, train)]

    pred_idx = np.empty(len(y), dtype=int)
    for _, test in folds(y, 0, groups=models):
        train = np.setdiff1d(np.arange(len(y)), test)
        W, b = fit_nested(X[train], y[train], args.l2, args.l2_partial, extra(train))
        pred_idx[test] = nested_labels(X[test] @ W + b)
    lomo = figures(human, [LABELS[i] for i in pred_idx], models)
    strmatch = ["full_refusal" if r["response"].lower().strip().startswith(XSTEST_STRMATCH_OPENINGS) else "full_compliance" for r in rows]
    base = figures(human, strmatch, models)

    W, b = fit_nested(X, y, args.l2, args.l2_partial, X_open)
    files = sorted(Path(args.data).glob("xstest_v2_completions_*.csv"))
    data = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}
    spec = {"labels": LABELS, "scores": SCORES, "decision": "nested", "embedder": DEFAULT_EMBEDDING_MODEL, "features": names,
            **({} if layers is None else {"layers": layers}),
            "max_seq_length": args.max_seq_length, "phrase_weight": args.phrase_weight, "l2": args.l2, "l2_partial": args.l2_partial,
            "refusal_openings": len(openings), "trained_on": "xstest_human", "n_train": len(rows), "data": data}
    write_folder(Path(args.output), W, b, spec, None)

    from alignbench import __version__

    cmd = (f"python scripts/train_refusal_clf.py --data DATA --max-seq-length {args.max_seq_length} --layers {args.layers} "
           f"--features {','.join(names)} --l2 {args.l2} --l2-partial {args.l2_partial} --phrase-weight {args.phrase_weight}"
           + ("" if args.openings else " --no-openings"))
    card = {"judge": "refusal_clf", "kind": "embedding_clf", "set": "xstest_human", "source": source, "n": len(rows),
            "date": today(), "alignbench_version": __version__,
            "built_on": "the XSTest completions of GPT-4, Llama-2 and Mistral in ../shared/data/xstest_completions (human 3-way labels)",
            "held_out": "leave one model out: each model's completions are judged by the judge trained on the other two models' completions",
            "figures": "leave one model out (train on two models, test on the third)",
            **lomo, "human_agreement": human_agreement([r["annotations"] for r in rows]),
            "baseline": {"xstest_strmatch": base}, "trained_on": "xstest_human", "command": cmd, "data": data,
            "selection": ("the feature blocks, the cue list and the two penalties were chosen on these same leave-one-model-out "
                          "figures (the cue list after reading the string match's misses; premise_rejection and the refusing "
                          "first sentences as extra examples among many variants measured), so they are somewhat optimistic "
                          "for the completions of other models")}
    write_card(Path(args.card), card)
    print(json.dumps({"refusal_clf (leave one model out)": {"accuracy": lomo["accuracy"], "binary": lomo["binary"]["accuracy"],
                                                           "per_model": lomo["per_model"]},
                      "xstest_strmatch": {"accuracy": base["accuracy"], "binary": base["binary"]["accuracy"], "per_model": base["per_model"]}},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
