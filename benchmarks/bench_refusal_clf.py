"""refusal_clf throughput (responses/s) on 2 CPU threads, against the refusal_xstest string match and
a plain MiniLM encode of the same texts at full length (256 tokens) in the same run.

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


def responses(n: int) -> list[str]:
    data = REPO.parent / "shared" / "data" / "xstest_completions"
    texts: list[str] = []
    if data.is_dir():
        from alignbench.human_sets import load_xstest

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
    import torch

    torch.set_num_threads(args.threads)
    from alignbench.judges.catalog import builtin_judges
    from alignbench.judges.learned import encoder
    from alignbench.types import JudgeInput

    items = [JudgeInput(prompt="", response=r) for r in responses(args.n)]
    clf, strm = builtin_judges().build("refusal_clf"), builtin_judges().build("refusal_xstest")
    full = encoder(clf.embedder, "cpu", 256)
    fns = {"refusal_xstest (string match)": lambda: strm.judge(items),
           "refusal_clf": lambda: clf.judge(items),
           "MiniLM encode, 256 tokens": lambda: full.encode([it.response for it in items], batch_size=64)}
    t = interleaved(fns, repeats=args.repeats)
    rows = ratio_rows(t, "refusal_clf", unit_count=args.n, unit="responses")
    emit(table(f"refusal_clf throughput, {args.n} responses ({machine()})", rows,
               ["what", "median s", "best s", "responses/s", "ratio (median)"]), args.json, rows)


if __name__ == "__main__":
    main()
