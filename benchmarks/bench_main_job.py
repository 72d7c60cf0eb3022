"""The main job, ``alignbench eval --model default --tasks harmful_rate``: batched decoding (several
sequences per llama.cpp decode call, ``--batch-size``) vs one request at a time (``--batch-size 1``,
``create_chat_completion`` per prompt: the path before batching), in one process, interleaved.

Both sides get the packaged SmolLM2-135M-Instruct GGUF already loaded (two backends, one per batch
size, same ``--threads``), run the whole task without the cache (generation, the two refusal judges,
the scorer) and write full run folders. Compared: the greedy texts (how many of the prompts are
identical), and every metric of one side against the other's 95% interval.

    python benchmarks/bench_main_job.py [--limit N] [--batch-size 16] [--threads 1] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _common import Unclosable, emit, interleaved, quiet, ratio_rows, table


def _metrics(m: dict) -> dict[str, dict]:
    return {k: v for k, v in m.items() if isinstance(v, dict) and "value" in v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N prompts of harmful_rate (default: all 264)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.default import DefaultBackend
    from alignbench.run.evaluate import Evaluator
    from alignbench.run.settings import EvalConfig

    work = Path(tempfile.mkdtemp(prefix="bench-main-"))
    backends = {bs: DefaultBackend("", BackendOptions(batch_size=bs), n_threads=a.threads) for bs in (1, a.batch_size)}
    results: dict[int, dict] = {}
    counter = {"n": 0}

    def run(bs: int):
        def go() -> None:
            counter["n"] += 1
            cfg = EvalConfig(model="default", tasks="harmful_rate", output=str(work / "out"), run_id=f"r{counter['n']}",
                             no_cache=True, batch_size=bs, limit=a.limit)
            with quiet():
                rd = Evaluator(cfg, backend=Unclosable(backends[bs])).run()
            recs = [json.loads(x) for x in (rd.path / "samples.jsonl").read_text().splitlines()]
            results[bs] = {"texts": {r["sample_id"]: r["response"] for r in recs},
                           "metrics": _metrics(json.loads((rd.path / "metrics.json").read_text())["harmful_rate"])}
            shutil.rmtree(rd.path)
        return go

    one, many = "one request at a time (--batch-size 1)", f"batched (--batch-size {a.batch_size})"
    timings = interleaved({one: run(1), many: run(a.batch_size)}, repeats=a.repeats, warmup=False)
    t1, tb = results[1]["texts"], results[a.batch_size]["texts"]
    same = sum(t1[k] == tb.get(k) for k in t1)
    rows = []
    for name, m1 in results[1]["metrics"].items():
        mb = results[a.batch_size]["metrics"][name]
        inside = m1["ci_low"] <= mb["value"] <= m1["ci_high"] and mb["ci_low"] <= m1["value"] <= mb["ci_high"]
        rows.append({"metric": name, "one at a time": f"{m1['value']:.4f} [{m1['ci_low']:.4f}, {m1['ci_high']:.4f}]",
                     "batched": f"{mb['value']:.4f} [{mb['ci_low']:.4f}, {mb['ci_high']:.4f}]", "each inside the other's CI": inside})
    out = [f"harmful_rate, {len(t1)} prompts, SmolLM2-135M-Instruct Q4_1 on llama.cpp, {a.threads} thread(s); "
           f"identical greedy texts: {same}/{len(t1)}\n",
           table("metrics", rows, ["metric", "one at a time", "batched", "each inside the other's CI"]),
           table("wall time", ratio_rows(timings, one, unit_count=len(t1), unit="prompts"),
                 ["what", "median s", "best s", "ratio (median)", "ratio (best)", "prompts/s"])]
    for b in backends.values():
        b.close()
    shutil.rmtree(work, ignore_errors=True)
    emit("\n".join(out), a.json, {"identical": same, "n": len(t1), "metrics": rows})


if __name__ == "__main__":
    main()
