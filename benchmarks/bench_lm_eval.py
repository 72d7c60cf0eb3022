"""alignbench vs lm-evaluation-harness on the same model, the same multiple-choice task and the same
generation task: scores must be identical; the table gives the wall-time ratio alignbench / lm-eval.

* Model: SmolLM2-135M-Instruct (float32, transformers folder converted once from the packaged GGUF),
  or ``--model tiny`` for the tiny random Llama of the test suite. Both harnesses get the model
  already loaded (lm-eval: ``HFLM(pretrained=<model>)``; alignbench: the ``hf`` backend object), so
  the timings compare evaluation, not loading; the same ``--batch-size`` on both sides.
* Multiple choice: TruthfulQA MC1 + MC2, by default the first ``--mc-n`` (100) questions of the public
  817-question v1 file (``--mc-source v1``: the authors' ``mc_task.json`` from the shared data folder,
  put in the Hugging Face layout), or alignbench's own 40 (``--mc-source bundled``). lm-eval runs its own
  ``truthfulqa_mc1``/``truthfulqa_mc2`` task YAML and code with the dataset pointed at the local file
  (``lm_eval.simple_evaluate``); alignbench runs ``truthfulqa_mc1,truthfulqa_mc2`` with
  ``--data-files`` on the same file, once as it runs by default (shared prompt prefixes run once) and
  once with ``--model-args shared_prefix=false`` (every request in full). Compared: mc1 and mc2 values
  and every per-sample log-likelihood.
* Generation: short questions, greedy, ``until: ["\\n"]``, ``max_gen_toks``; lm-eval through a local
  ``generate_until`` task with ``exact_match`` (leading/trailing whitespace ignored); alignbench through
  a task YAML with an ``exact_match`` judge (case and punctuation kept). Half of the references are the
  model's own greedy answers (taken once at set-up with transformers), so the score is a real fraction.
  Compared: the generated texts and the exact-match score.

    python benchmarks/bench_lm_eval.py [--model smollm2|tiny] [--mc-source v1|bundled] [--mc-n 100] [--batch-size 8]
                                       [--gen-n 32] [--repeats 3] [--only mc|gen]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _common import PROMPTS, REPO, Unclosable, emit, interleaved, machine, quiet, ratio_rows, smollm2_hf_dir, table, tiny_model_dir


def _lm_eval_tasks(folder: Path, mc_data: Path, gen_data: Path, max_gen_toks: int) -> Path:
    import lm_eval

    base = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa"
    folder.mkdir(parents=True, exist_ok=True)
    for t in ("mc1", "mc2"):
        (folder / f"local_{t}.yaml").write_text(
            f"include: {base}/truthfulqa_{t}.yaml\ntask: local_truthfulqa_{t}\ntag: []\ndataset_path: json\n"
            f"dataset_name: null\ndataset_kwargs:\n  data_files:\n    validation: {mc_data}\n")
    (folder / "local_gen.yaml").write_text(
        "task: local_gen\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {gen_data}\n"
        "test_split: test\noutput_type: generate_until\ndoc_to_text: '{{prompt}}'\ndoc_to_target: '{{answer}}'\n"
        f"generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: {max_gen_toks}\n  do_sample: false\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        "    regexes_to_ignore: ['^\\s+', '\\s+$']\n")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--mc-source", choices=["v1", "bundled"], default="v1",
                    help="TruthfulQA v1 (817 questions, from the shared data folder) or the 40 bundled questions")
    ap.add_argument("--mc-n", type=int, default=100, help="TruthfulQA questions (the first N)")
    ap.add_argument("--gen-n", type=int, default=32)
    ap.add_argument("--warmup", action="store_true", help="one untimed round first")
    ap.add_argument("--only", choices=["mc", "gen"])
    ap.add_argument("--max-gen-toks", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()

    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.hf import HFBackend
    from alignbench.run.evaluate import Evaluator
    from alignbench.run.settings import EvalConfig

    torch.set_num_threads(a.threads)
    model_dir = smollm2_hf_dir() if a.model == "smollm2" else tiny_model_dir()
    backend = HFBackend(str(model_dir), BackendOptions(batch_size=a.batch_size), device="cpu", dtype="float32")
    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, batch_size=a.batch_size, device="cpu")

    work = Path(tempfile.mkdtemp(prefix="bench-lm-eval-"))
    mc_data = work / "truthfulqa_validation.jsonl"
    if a.mc_source == "v1":
        src = REPO.parent / "shared" / "data" / "truthfulqa" / "v1" / "mc_task.json"
        if not src.is_file():
            raise SystemExit(f"--mc-source v1: {src} not found; pass --mc-source bundled")
        rows = [{"question": r["question"], **{k: {"choices": list(r[k]), "labels": list(r[k].values())} for k in ("mc1_targets", "mc2_targets")}}
                for r in json.loads(src.read_text())[:a.mc_n]]
        mc_data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        lines = (REPO / "tasks" / "honesty" / "truthfulqa_style.jsonl").read_text().splitlines()[:a.mc_n]
        mc_data.write_text("\n".join(lines) + "\n")

    # generation data: greedy answers of the model itself as the reference for even rows
    prompts = [f"Question: {PROMPTS[i % len(PROMPTS)]}\nAnswer:" for i in range(a.gen_n)]
    from alignbench.types import GenerationParams, GenerationRequest

    greedy = backend.generate([GenerationRequest(prompt=p, params=GenerationParams(max_new_tokens=a.max_gen_toks, stop=("\n",)))
                               for p in prompts])
    rows = [{"id": f"g{i:03d}", "prompt": p, "answer": g.text.strip() if i % 2 == 0 else "no such answer"}
            for i, (p, g) in enumerate(zip(prompts, greedy))]
    gen_data = work / "gen.jsonl"
    gen_data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "em.yaml").write_text("name: em_exact\nkind: exact_match\nparams: {lowercase: false, strip_punctuation: false}\n")
    gen_task = work / "gen_task.yaml"
    gen_task.write_text("name: local_gen\ndataset:\n  data_files: gen.jsonl\n  columns: {id: id, references: answer}\n"
                        f"prompt: {{chat: false}}\ngeneration: {{max_new_tokens: {a.max_gen_toks}, stop: [\"\\n\"]}}\n"
                        "judges: [" + str(work / "em.yaml") + "]\n")
    tm = TaskManager(include_path=str(_lm_eval_tasks(work / "lm_eval_tasks", mc_data, gen_data, a.max_gen_toks)), include_defaults=False)

    results: dict[str, dict] = {}
    counter = {"n": 0}

    def lm_eval_run(tasks: list[str], key: str):
        def run() -> None:
            with quiet():
                results[key] = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=tm, log_samples=True, bootstrap_iters=0)
        return run

    def alignbench_run(tasks: str, key: str, data_files: dict[str, str], shared_prefix: bool = True):
        def run() -> None:
            backend.shared_prefix = shared_prefix
            counter["n"] += 1
            cfg = EvalConfig(model=f"hf:{model_dir}", tasks=tasks, output=str(work / "out"), run_id=f"r{counter['n']}", no_cache=True,
                             batch_size=a.batch_size, data_files=data_files)
            with quiet():
                rd = Evaluator(cfg, backend=Unclosable(backend)).run()
            results[key] = {"metrics": json.loads((rd.path / "metrics.json").read_text()),
                            "records": [json.loads(x) for x in (rd.path / "samples.jsonl").read_text().splitlines()]}
        return run

    out = [f"machine: {machine()}; model: {a.model} ({model_dir.name}); batch size {a.batch_size}\n"]
    checks: list[dict] = []
    cols = ["what", "median s", "best s", "ratio (median)", "ratio (best)"]
    if a.only in (None, "mc"):
        files = {"truthfulqa_mc1": str(mc_data), "truthfulqa_mc2": str(mc_data)}
        mc = interleaved({"lm-eval truthfulqa_mc1+mc2": lm_eval_run(["local_truthfulqa_mc1", "local_truthfulqa_mc2"], "lm_mc"),
                          "alignbench (shared prefixes)": alignbench_run("truthfulqa_mc1,truthfulqa_mc2", "ab_mc", files),
                          "alignbench shared_prefix=false": alignbench_run("truthfulqa_mc1,truthfulqa_mc2", "ab_mc_plain", files, False)},
                         repeats=a.repeats, warmup=a.warmup)
        lm_res = results["lm_mc"]
        for label, ab in (("alignbench", results["ab_mc"]), ("alignbench shared_prefix=false", results["ab_mc_plain"])):
            for task, key in (("truthfulqa_mc1", "mc1"), ("truthfulqa_mc2", "mc2")):
                lv = float(lm_res["results"][f"local_{task}"]["acc,none"])
                av = ab["metrics"][task][key]["value"]
                lm_s = sorted(lm_res["samples"][f"local_{task}"], key=lambda s: s["doc_id"])
                mine = [r for r in ab["records"] if r["task"] == task]
                diff = max(abs(x - float(r[0][0])) for s, rec in zip(lm_s, mine) for x, r in zip(rec["loglikelihoods"], s["resps"]))
                per_q = max(abs(float(s["acc"]) - rec["metrics"][key]) for s, rec in zip(lm_s, mine))
                checks.append({"what": f"{task} ({label})", "lm-eval": f"{lv:.9f}", "alignbench": f"{av:.9f}",
                               "|difference|": f"{abs(lv - av):.1e}", "max per-question |difference|": f"{per_q:.1e}",
                               "max per-choice |delta loglik|": f"{diff:.1e}", "n": len(mine)})
        out.append(table(f"wall time, multiple choice ({a.mc_n} {a.mc_source} questions, 2 tasks)",
                         ratio_rows(mc, "lm-eval truthfulqa_mc1+mc2"), cols))
    if a.only in (None, "gen"):
        gen = interleaved({"lm-eval generate_until": lm_eval_run(["local_gen"], "lm_gen"),
                           "alignbench generate": alignbench_run(str(gen_task), "ab_gen", {})}, repeats=a.repeats, warmup=a.warmup)
        lg = sorted(results["lm_gen"]["samples"]["local_gen"], key=lambda s: s["doc_id"])
        ag = results["ab_gen"]["records"]
        same_text = sum(s["filtered_resps"][0] == r["response"] for s, r in zip(lg, ag))
        lv = float(results["lm_gen"]["results"]["local_gen"]["exact_match,none"])
        av = results["ab_gen"]["metrics"]["local_gen"]["em_exact"]["value"]
        checks.append({"what": "generation exact_match", "lm-eval": f"{lv:.9f}", "alignbench": f"{av:.9f}", "|difference|": f"{abs(lv - av):.1e}",
                       "n": len(ag), "identical texts": f"{same_text}/{len(ag)}"})
        out.append(table(f"wall time, generation ({a.gen_n} prompts, <= {a.max_gen_toks} tokens)", ratio_rows(gen, "lm-eval generate_until"), cols))
    out.insert(1, table("scores: lm-eval vs alignbench", checks,
                        ["what", "lm-eval", "alignbench", "|difference|", "max per-question |difference|",
                         "max per-choice |delta loglik|", "n", "identical texts"]))
    shutil.rmtree(work, ignore_errors=True)
    emit("\n".join(out), a.json, {"tables": out, "checks": checks})


if __name__ == "__main__":
    main()
