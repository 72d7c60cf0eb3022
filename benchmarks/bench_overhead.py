"""Harness overhead: `alignbench eval` on the hf and default backends vs the raw library call doing
the same generations (transformers ``model.generate`` / llama.cpp ``create_chat_completion``).

Baselines, measured in the same process and run, interleaved with the alignbench runs:

* hf: SmolLM2-135M-Instruct (float32, converted once from the packaged GGUF) with transformers:
  chat template, prompts sorted by length, left-padded batches of ``--batch-size``, greedy
  ``generate`` with ``max_new_tokens``, decode - what the hf backend does, without the harness.
* default: the packaged SmolLM2-135M-Instruct Q4_1 GGUF on llama.cpp: one greedy
  ``create_chat_completion`` per prompt - what the default backend does, without the harness.

alignbench runs the same prompts as a task (in-process ``Evaluator`` with the already loaded backend,
so both sides exclude model loading) and writes a full run folder each time: samples.jsonl appended
and fsynced per chunk, run.json, metrics.json. Rows: without the generation cache, and with a cold
cache (every request a miss that is written to SQLite). The outputs must equal the raw ones.

    python benchmarks/bench_overhead.py [--n 32] [--max-new-tokens 32] [--batch-size 8] [--repeats 3] [--only hf|default]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import Unclosable, emit, interleaved, machine, quiet, ratio_rows, smollm2_gguf, smollm2_hf_dir, table, write_generation_task


def _alignbench_runner(backend, task: Path, work: Path, cache: bool, max_new_tokens: int, batch_size: int):
    from alignbench.records.files import RunDir
    from alignbench.run.evaluate import Evaluator
    from alignbench.run.settings import EvalConfig

    counter = {"n": 0}
    last: dict[str, list[str]] = {}

    def run() -> None:
        counter["n"] += 1
        rid = f"r{counter['n']}"
        cfg = EvalConfig(model="bench", tasks=str(task), output=str(work / "out"), run_id=rid, no_cache=not cache,
                         cache=str(work / f"cache-{rid}.sqlite"), max_new_tokens=max_new_tokens, batch_size=batch_size)
        with quiet():
            rd = Evaluator(cfg, backend=Unclosable(backend)).run()
        last["texts"] = [r["response"] for r in RunDir(rd.path).records()]
        shutil.rmtree(rd.path)

    return run, last


def bench_hf(n: int, max_new_tokens: int, batch_size: int, repeats: int, work: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.hf import HFBackend

    from _common import PROMPTS

    model_dir = smollm2_hf_dir()
    task = write_generation_task(work / "task", n, max_new_tokens=max_new_tokens)
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (#{i})") for i in range(n)]

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos_ids = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    raw_out: dict[str, list[str]] = {}

    def raw() -> None:
        ids = [tok(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True),
                   add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(n), key=lambda i: -len(ids[i]))
        texts: list[str] = [""] * n
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos_ids, pad_token_id=pad)
        for s in range(0, n, batch_size):
            batch = order[s:s + batch_size]
            width = max(len(ids[i]) for i in batch)
            inp = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in batch])
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in batch])
            with torch.inference_mode():
                seqs = model.generate(input_ids=inp, attention_mask=mask, generation_config=cfg)
            for i, row in zip(batch, seqs[:, width:].tolist()):
                k = next((j for j, t in enumerate(row) if t in set(eos_ids) | {pad}), len(row))
                texts[i] = tok.decode(row[:k], skip_special_tokens=True)
        raw_out["texts"] = texts

    backend = HFBackend(str(model_dir), BackendOptions(batch_size=batch_size), device="cpu", dtype="float32")
    ab_nocache, last1 = _alignbench_runner(backend, task, work, False, max_new_tokens, batch_size)
    ab_cache, last2 = _alignbench_runner(backend, task, work, True, max_new_tokens, batch_size)
    t = interleaved({"transformers generate (raw)": raw, "alignbench hf, --no-cache": ab_nocache,
                     "alignbench hf, cold cache": ab_cache}, repeats=repeats)
    same = raw_out["texts"] == last1["texts"] == last2["texts"]
    rows = ratio_rows(t, "transformers generate (raw)", unit_count=n, unit="samples")
    return table(f"hf backend vs transformers: {n} prompts, {max_new_tokens} new tokens, batch {batch_size} "
                 f"(outputs identical: {same})", rows, ["what", "median s", "best s", "ratio (median)", "ratio (best)", "samples/s"])


def bench_default(n: int, max_new_tokens: int, repeats: int, work: Path, threads: int) -> str:
    import llama_cpp

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.default import DefaultBackend, plain_cpu_buffers

    from _common import PROMPTS

    task = write_generation_task(work / "task_d", n, max_new_tokens=max_new_tokens)
    prompts = [PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (#{i})") for i in range(n)]
    backend = DefaultBackend("", BackendOptions(batch_size=1), n_threads=threads)  # the raw path: one request at a time (batching: bench_main_job.py)
    with plain_cpu_buffers(llama_cpp):  # loaded as the default backend loads it
        llm = llama_cpp.Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=threads, seed=0, verbose=False)
    raw_out: dict[str, list[str]] = {}

    def raw() -> None:
        texts = []
        for p in prompts:
            out = llm.create_chat_completion(messages=[{"role": "user", "content": p}], max_tokens=max_new_tokens, temperature=0.0,
                                             top_p=1.0, top_k=0, min_p=0.0, repeat_penalty=1.0, seed=0)
            texts.append(out["choices"][0]["message"]["content"] or "")
        raw_out["texts"] = texts

    ab_nocache, last1 = _alignbench_runner(backend, task, work, False, max_new_tokens, 8)
    ab_cache, last2 = _alignbench_runner(backend, task, work, True, max_new_tokens, 8)
    t = interleaved({"llama.cpp create_chat_completion (raw)": raw, "alignbench default, --no-cache": ab_nocache,
                     "alignbench default, cold cache": ab_cache}, repeats=repeats)
    same = raw_out["texts"] == last1["texts"] == last2["texts"]
    rows = ratio_rows(t, "llama.cpp create_chat_completion (raw)", unit_count=n, unit="samples")
    llm.close()
    backend.close()
    return table(f"default backend vs llama.cpp: {n} prompts, {max_new_tokens} new tokens (outputs identical: {same})", rows,
                 ["what", "median s", "best s", "ratio (median)", "ratio (best)", "samples/s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["hf", "default"])
    ap.add_argument("--threads", type=int, default=1, help="torch / llama.cpp threads, the same on both sides (default 1)")
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    out = [f"machine: {machine()}\n"]
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        if a.only in (None, "default"):
            out.append(bench_default(a.n, a.max_new_tokens, a.repeats, work, a.threads))
        if a.only in (None, "hf"):
            out.append(bench_hf(a.n, a.max_new_tokens, a.batch_size, a.repeats, work))
    emit("\n".join(out), a.json, {"tables": out})


if __name__ == "__main__":
    main()
