"""The ``openai`` backend at scale: ``alignbench eval`` vs a bare ``httpx.AsyncClient`` loop, against a local
OpenAI-compatible server that answers at once.

The server (tests/openai_server.py) runs in a process of its own on 127.0.0.1 and answers every chat
request immediately. Baseline: the same N chat requests (one per prompt) through one
``httpx.AsyncClient`` with ``--concurrency`` requests in flight (an ``asyncio.Semaphore``), parsing
each JSON answer. Candidate: ``alignbench eval --model openai:bench --concurrency C --no-cache`` on a
task of the same N prompts (no judges), in process: requests, chunking, records, samples.jsonl and
metrics included; and once more with a cold generation cache. Goal: <= 1.2x the bare loop.

    python benchmarks/bench_openai.py [--n 4000] [--concurrency 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, emit, interleaved, machine, quiet, ratio_rows, table, write_generation_task

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from openai_server import OpenAIServer
srv = OpenAIServer(handler=lambda req: "ok").start()
print(srv.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def bare_loop(base_url: str, prompts: list[str], concurrency: int, max_tokens: int) -> list[str]:
    import httpx

    async def main() -> list[str]:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
            async def one(p: str) -> str:
                async with sem:
                    r = await client.post("/chat/completions", json={"model": "bench", "messages": [{"role": "user", "content": p}],
                                                                     "max_tokens": max_tokens, "temperature": 0.0})
                    return r.json()["choices"][0]["message"]["content"]

            return await asyncio.gather(*(one(p) for p in prompts))

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()

    from alignbench.run.evaluate import Evaluator
    from alignbench.run.settings import EvalConfig

    server = subprocess.Popen([sys.executable, "-c", SERVER.format(tests=str(REPO / "tests"))], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
        work = Path(tempfile.mkdtemp(prefix="bench-openai-"))
        task = write_generation_task(work, a.n, name="bench_openai", max_new_tokens=16)
        prompts = [json.loads(line)["prompt"] for line in (work / "bench_openai.jsonl").read_text().splitlines()]
        counter = {"n": 0}

        def eval_run(cache: bool):
            def run() -> None:
                counter["n"] += 1
                cfg = EvalConfig(model="openai:bench", model_args={"base_url": base_url}, tasks=str(task), output=str(work / "out"),
                                 run_id=f"r{counter['n']}", concurrency=a.concurrency, no_cache=not cache,
                                 cache=str(work / f"cache{counter['n']}.sqlite"))
                with quiet():
                    rd = Evaluator(cfg).run()
                n = sum(1 for _ in (rd.path / "samples.jsonl").open())
                assert n == a.n, n
                shutil.rmtree(rd.path)
            return run

        timings = interleaved({
            "bare httpx.AsyncClient loop": lambda: bare_loop(base_url, prompts, a.concurrency, 16),
            "alignbench eval --no-cache": eval_run(cache=False),
            "alignbench eval, cold cache": eval_run(cache=True),
        }, repeats=a.repeats)
        rows = ratio_rows(timings, "bare httpx.AsyncClient loop", unit_count=a.n, unit="requests")
        out = [f"machine: {machine()}; {a.n} chat requests, concurrency {a.concurrency}, server answers at once (own process)\n",
               table("openai backend vs a bare async client", rows,
                     ["what", "median s", "best s", "ratio (median)", "ratio (best)", "requests/s"])]
        shutil.rmtree(work, ignore_errors=True)
        emit("\n".join(out), a.json, {"rows": rows})
    finally:
        server.kill()


if __name__ == "__main__":
    main()
