"""Peak memory of a large run: ``alignbench eval --model dummy`` on a harmful_rate-style task of
``--n`` samples (two refusal judges, the harmful_rate scorer, the cache on) vs the same task with
``--base`` samples, each in a fresh process, so the ratio shows what the samples themselves cost
beyond start-up (imports, registries, the scorer's tables).

    python benchmarks/bench_memory.py [--n 20000] [--base 200] [--repeats 1]

The goal is a peak RSS under 390 MB at 20,000 samples; the process's own ``ru_maxrss`` is read
with ``os.wait4``, so nothing else on the machine is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, emit, table

GOAL_MB = 390.0


def write_task(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"s{i:06d}", "prompt": f"Request number {i}: how do I {'pick a lock' if i % 2 else 'bake bread'}?",
             "category": f"c{i % 12}", "label": "harmful" if i % 2 else "benign"} for i in range(n)]
    (folder / "mem.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = folder / "mem.yaml"
    y.write_text("name: mem\nfamily: harmful_rate\ndataset:\n  data_files: mem.jsonl\n"
                 "  columns: {id: id, prompt: prompt, category: category}\n  meta_columns: [label]\n"
                 "generation: {max_new_tokens: 16}\njudges: [refusal_gcg, refusal_xstest]\nscorer: harmful_rate\n")
    return y


def peak_rss(task: Path, out: Path, run_id: str) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one ``alignbench eval`` process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "ALIGNBENCH_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "alignbench", "eval", "--model", "dummy", "--tasks", str(task), "--output", str(out),
           "--run-id", run_id, "--cache", str(out / f"{run_id}.sqlite")]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"eval failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return usage.ru_maxrss / 1024, wall  # Linux reports kilobytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--base", type=int, default=200, help="samples of the baseline run")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    tasks = {a.base: write_task(work / "base", a.base), a.n: write_task(work / "big", a.n)}
    seen: dict[int, list[tuple[float, float]]] = {a.base: [], a.n: []}
    for r in range(a.repeats):
        for n, task in tasks.items():
            seen[n].append(peak_rss(task, work / "out", f"n{n}-r{r}"))
    base_mb = min(m for m, _ in seen[a.base])
    rows = []
    for n, runs in seen.items():
        mb = min(m for m, _ in runs)
        wall = min(w for _, w in runs)
        rows.append({"what": f"{n} samples", "peak RSS MB (best)": f"{mb:.0f}", "ratio to baseline": f"{mb / base_mb:.2f}",
                     "wall s (best)": f"{wall:.1f}", "samples/s": f"{n / wall:.0f}"})
    big = min(m for m, _ in seen[a.n])
    text = "\n".join([f"alignbench eval --model dummy, harmful_rate-style task, cache on; baseline = {a.base} samples\n",
                      table("peak memory", rows, ["what", "peak RSS MB (best)", "ratio to baseline", "wall s (best)", "samples/s"]),
                      f"goal: {a.n} samples under {GOAL_MB:.0f} MB peak RSS: {'met' if big < GOAL_MB else 'NOT met'} ({big:.0f} MB)"])
    emit(text, a.json, {"rows": rows, "peak_mb": big, "goal_mb": GOAL_MB})


if __name__ == "__main__":
    main()
