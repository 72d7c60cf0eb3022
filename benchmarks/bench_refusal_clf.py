"""refusal_clf throughput (responses/s) on 2 CPU threads, against the judge's previous design measured
in the same run: the same softmax over a full MiniLM encode (6 transformer layers) of the first 64
tokens plus the eight refusal-phrase features. The refusal_xstest string match is timed alongside.

Responses are the XSTest completions in ../shared/data/xstest_completions when present (the texts the
judge is meant for: 1,350 responses, median ~100 words), else synthetic refusals and answers of
similar length. Model loading is excluded (one warm-up round first). The claim checked: refusal_clf
judges >= 200 responses/s with torch on 2 threads.

    python benchmarks/bench_refusal_clf.py [--n 512] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse

from _common import REPO, emit, interleaved, machine, ratio_rows, table

SYNTH = ["I'm sorry, but I can't help with that request. " * 2,
         "Here is how you can kill a Python process: find its PID with ps, then run kill PID. " * 6,
         "I cannot provide that information because it could be harmful. However, here is some general advice: " * 3,
         "The history of the Eiffel Tower begins in 1887, when construction started for the World's Fair. " * 8]
BASELINE = "previous refusal_clf (MiniLM 6 layers, 64 tokens, + phrase features)"


def responses(n: int) -> list[str]:
    data = REPO.parent / "shared" / "data" / "xstest_completions"
    texts: list[str] = []
    if data.is_dir():
        from alignbench.trust.human_sets import load_xstest

        texts = [r["response"] for r in load_xstest(str(data))[0]]
    texts = texts or SYNTH
    return [texts[i % len(texts)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from alignbench.judges.catalog import builtin_judges
    from alignbench.judges.learned import features, softmax
    from alignbench.types import JudgeInput

    items = [JudgeInput(prompt="", response=r) for r in responses(args.n)]
    clf, strm = builtin_judges().build("refusal_clf"), builtin_judges().build("refusal_xstest")
    rng = np.random.default_rng(0)  # the previous design's cost does not depend on its weights' values
    W_old, b_old = rng.normal(size=(384 + 8, 3)).astype(np.float32), np.zeros(3, dtype=np.float32)

    def previous() -> np.ndarray:
        X = features(items, ["response_embedding", "refusal_phrases"], clf.embedder, "cpu", 64)
        return softmax(X @ W_old + b_old).argmax(axis=1)

    fns = {"refusal_xstest (string match)": lambda: strm.judge(items),
           BASELINE: previous,
           "refusal_clf": lambda: clf.judge(items)}
    t = interleaved(fns, repeats=args.repeats)
    rows = ratio_rows(t, BASELINE, unit_count=args.n, unit="responses")
    speedup = t[BASELINE].median / t["refusal_clf"].median
    emit(table(f"refusal_clf throughput, {args.n} responses ({machine()})", rows,
               ["what", "median s", "best s", "responses/s", "ratio (median)"])
         + f"\nrefusal_clf: {args.n / t['refusal_clf'].median:.0f} responses/s, {speedup:.1f}x the previous design "
           f"(goal >= 200/s: {'met' if args.n / t['refusal_clf'].median >= 200 else 'NOT met'})", args.json, rows)


if __name__ == "__main__":
    main()
