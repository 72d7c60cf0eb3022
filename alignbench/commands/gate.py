"""``alignbench gate``: check a candidate run against rules and a baseline run (CI)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from alignbench.commands._options import add_log_option, log_trackers
from alignbench.errors import UsageError
from alignbench.gate.output import junit_xml, markdown_summary
from alignbench.gate.rules import RunView, load_rules, run_gates
from alignbench.registry import commands


@commands.register("gate")
class GateCommand:
    help = "fail (exit 1) when a candidate run breaks the rules of a gates YAML against a baseline run"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--baseline", help="run folder of the reference model (needed by max_increase / max_decrease)")
        p.add_argument("--candidate", required=True, help="run folder of the model being checked")
        p.add_argument("--rules", required=True, help="gates YAML (gates: [{task, metric, max, min, max_increase, max_decrease, alpha}])")
        p.add_argument("--junit", help="also write JUnit XML (one test case per gate) to this file")
        p.add_argument("--seed", type=int, default=0, help="seed of the paired permutation test (non-binary metrics)")
        add_log_option(p)

    def run(self, args: argparse.Namespace) -> int:
        trackers = log_trackers(args)
        started = time.time()
        rules = load_rules(args.rules)
        candidate = RunView.load(args.candidate, "--candidate")
        baseline = RunView.load(args.baseline, "--baseline") if args.baseline else None
        if baseline is not None and baseline.path.resolve() == candidate.path.resolve():
            print(f"alignbench: warning: --baseline and --candidate are the same run ({candidate.path}); every change is 0, "
                  "so relative limits cannot fail", file=sys.stderr)
        results = run_gates(rules, baseline, candidate, seed=args.seed)
        sys.stdout.write(markdown_summary(results, baseline, candidate))
        if args.junit:
            path = Path(args.junit)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(junit_xml(results, elapsed_s=time.time() - started), encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"--junit {path}: cannot write ({exc.strerror or exc})") from None
        if trackers:
            from alignbench.integrations.tracking import log_gate

            log_gate(trackers, results, candidate, baseline, str(args.rules))
        failed = [r for r in results if not r.passed]
        for r in failed:
            print(f"alignbench: gate failed: {r.rule.label}: {r.message}", file=sys.stderr)
        return 1 if failed else 0
