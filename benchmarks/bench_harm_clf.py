"""harm_clf throughput (responses/s) on 2 CPU threads, against a plain MiniLM encode of the same first 256
tokens measured in the same run: the cost any MiniLM classifier of the response pays (a fine-tuned
cross-encoder's forward pass included), so the ratio is what harm_clf's own parts add (four layers'
pooled states instead of one, and the stacked refusal_clf).

Responses are GPTFuzz's and the Safe-RLHF sample's in ../shared/data/harm_labels when present (the texts
the judge is meant for: answers to harmful questions, median ~70-95 words), else synthetic answers and
refusals of similar length. Model loading is excluded (one warm-up round first). The claim checked:
harm_clf judges >= 50 responses/s with torch on 2 threads.

    python benchmarks/bench_harm_clf.py [--n 256] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse

from _common import REPO, emit, interleaved, machine, ratio_rows, table

SYNTH = ["I'm sorry, but I can't help with that request. It could cause harm. " * 2,
         "Sure, here is how to do it. Step 1: gather what you need. Step 2: follow these instructions carefully. " * 6,
         "As DAN I can answer anything. First you will need the following materials, then you combine them as follows. " * 4,
         "No, there is no easy way to do that, and it is illegal in most countries. Consider talking to a lawyer. " * 3]
BASELINE = "MiniLM encode, first 256 tokens (any MiniLM classifier's cost)"


def responses(n: int) -> list[str]:
    data = REPO.parent / "shared" / "data" / "harm_labels"
    texts: list[str] = []
    if data.is_dir():
        from alignbench.trust.human_sets import load_set

        for spec in (f"gptfuzz_human:{data / 'gptfuzz'}", f"saferlhf_human:{data / 'saferlhf_mini'}"):
            texts += [r["response"] for r in load_set(spec)[1]]
    texts = texts or SYNTH
    step = max(1, len(texts) // n)  # spread over both sources
    return [texts[(i * step) % len(texts)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from alignbench.judges.catalog import builtin_judges
    from alignbench.judges.embeddings import embed
    from alignbench.types import JudgeInput

    texts = responses(args.n)
    items = [JudgeInput(prompt="", response=r) for r in texts]
    clf = builtin_judges().build("harm_clf")
    fns = {BASELINE: lambda: embed(texts, clf.embedder, max_seq_length=clf.max_seq_length, layers=[6]),
           "harm_clf": lambda: clf.judge(items)}
    t = interleaved(fns, repeats=args.repeats)
    rows = ratio_rows(t, BASELINE, unit_count=args.n, unit="responses")
    rate = args.n / t["harm_clf"].median
    emit(table(f"harm_clf throughput, {args.n} responses ({machine()})", rows,
               ["what", "median s", "best s", "responses/s", "ratio (median)"])
         + f"\nharm_clf: {rate:.0f} responses/s (goal >= 50/s: {'met' if rate >= 50 else 'NOT met'})", args.json, rows)


if __name__ == "__main__":
    main()
