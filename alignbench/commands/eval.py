"""``alignbench eval``: run tasks on a model and write a run folder."""

from __future__ import annotations

import argparse
import json
import sys

from alignbench.commands._executor import add_executor_options, run_with_executor
from alignbench.commands._options import add_log_option, add_run_options, eval_config, log_trackers
from alignbench.records.accounting import truncation_warnings
from alignbench.registry import commands
from alignbench.run.evaluate import run_eval


def _value_ci(m: dict) -> str:
    v = m.get("value")
    ci = f" [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m.get("ci_low") is not None and m.get("ci_high") is not None else ""
    return (f"{v:.4f}" if isinstance(v, float) else str(v)) + ci


def print_summary(metrics: dict, out=None) -> None:
    """One line per task and metric: value [CI], n, and for a metric a judge decides, the judge and the rate
    corrected for its carded error (``in-sample`` when the card's figures are)."""
    out = out or sys.stdout  # looked up at call time, so a redirected stdout is honoured
    for task, ms in metrics.items():
        for name, m in ms.items():
            if name == "by_category" or not isinstance(m, dict) or "value" not in m:
                continue
            cols = [task, name, _value_ci(m), f"n={m['n']}"]
            if m.get("judge"):
                cols.append(f"judge={m['judge']}")
            corrected = m.get("corrected")
            if isinstance(corrected, dict) and corrected.get("value") is not None:
                cols.append(f"corrected={_value_ci(corrected)}" + (" in-sample" if corrected.get("warning") else ""))
            print("\t".join(cols), file=out)


@commands.register("eval")
class EvalCommand:
    help = "evaluate a model on tasks"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="BACKEND:TARGET, e.g. hf:Qwen/Qwen2.5-0.5B-Instruct, replay:out.jsonl, default")
        add_run_options(p)
        add_executor_options(p)
        p.add_argument("--json", action="store_true", help="print metrics.json to stdout instead of a table")
        add_log_option(p)

    def run(self, args: argparse.Namespace) -> int:
        trackers = log_trackers(args)
        cfg = eval_config(args, args.model, argv=["alignbench", *getattr(args, "argv", sys.argv[1:])])
        run_dir = run_with_executor(args, cfg) or run_eval(cfg)
        metrics = run_dir.read_metrics()
        info = run_dir.read_run()
        if trackers:
            from alignbench.integrations.tracking import log_eval

            log_eval(trackers, run_dir)
        if args.json:
            print(json.dumps(metrics, indent=2))
        else:
            print_summary(metrics)
        for note in info.get("notices") or []:
            print(f"alignbench: {note}", file=sys.stderr)
        errs = info.get("judge_errors") or {}
        for task, counts in errs.items():
            for judge, n in counts.items():
                print(f"alignbench: warning: task {task}: judge {judge} failed on {n} sample(s); see samples.jsonl", file=sys.stderr)
        for line in truncation_warnings(metrics):
            print(line, file=sys.stderr)
        print(f"alignbench: run written to {run_dir.path} (model calls: {info.get('model_calls')})", file=sys.stderr)
        return 0
