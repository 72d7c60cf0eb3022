"""reward_model judge throughput (responses/s): batched forward passes (batch size 16) vs one response at a time.

The reward model is the test suite's randomly initialised Llama sequence classifier, made larger here
(``--hidden``), saved under the benchmark cache; the rewards of both sides must agree
(max |difference| shown: padding changes only float rounding). The generation cache is off on both
sides and the model is loaded before timing.

    python benchmarks/bench_reward_model.py [--n 128] [--hidden 256] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse

from _common import CACHE, PROMPTS, emit, interleaved, machine, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch

    from alignbench.judges.reward_model import RewardModelJudge
    from alignbench.types import JudgeInput
    from tiny_model import build_tiny_reward_model

    torch.set_num_threads(a.threads)
    folder = CACHE / f"tiny-rm-h{a.hidden}"
    if not (folder / "config.json").is_file():
        build_tiny_reward_model(folder, seed=0, hidden=a.hidden)
    items = [JudgeInput(prompt=PROMPTS[i % len(PROMPTS)], response=" ".join(["answer"] * (5 + i % 40)) + f" ({i})") for i in range(a.n)]
    judges = {bs: RewardModelJudge(name="rm", model=str(folder), batch_size=bs, cache=False, device="cpu") for bs in (1, a.batch_size)}
    scores = {}
    for bs, j in judges.items():
        j.load()
        scores[bs] = [r.score for r in j.judge(items)]
    timings = interleaved({f"bs {bs}": (lambda j=j: j.judge(items)) for bs, j in judges.items()}, repeats=a.repeats, warmup=False)
    one, many = timings["bs 1"], timings[f"bs {a.batch_size}"]
    diff = max(abs(x - y) for x, y in zip(scores[1], scores[a.batch_size]))
    rows = [{"side": name, "median s": t.median, "best s": t.best, "responses/s (best)": a.n / t.best} for name, t in timings.items()]
    rows.append({"side": f"ratio bs {a.batch_size} / bs 1", "median s": many.median / one.median, "best s": many.best / one.best,
                 "responses/s (best)": None})
    out = [f"machine: {machine()}\n", table(f"reward_model judge, {a.n} responses, hidden {a.hidden}, max |reward diff| {diff:.2e}", rows,
                                           ["side", "median s", "best s", "responses/s (best)"])]
    emit("\n".join(out), a.json, {"rows": rows, "max_abs_diff": diff})


if __name__ == "__main__":
    main()
