"""``alignbench drift``: how a model's behaviour moved between a base and a tuned version.

``drift RUN_A RUN_B`` compares two existing runs (A = base, B = tuned); ``drift --base SPEC --tuned
SPEC [--tasks ...] [eval options]`` evaluates both models on the same samples with the same seed
(runs ``<id>-base`` and ``<id>-tuned`` in ``--output``), then compares them. See
``alignbench.drift.pipeline`` for the files written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from alignbench.backends.base import parse_model_args
from alignbench.commands._options import add_run_options, eval_config, non_negative_int, positive_int
from alignbench.drift.pipeline import TokenShiftOptions, drift_models, drift_runs, format_table, new_drift_id
from alignbench.errors import UsageError
from alignbench.registry import commands
from alignbench.tasks.catalog import builtin_catalog

DEFAULT_TASKS = "harmful_rate,drift"
DEFAULT_TOKEN_SHIFT = 8
# eval options that mean nothing when comparing finished runs: (dest, default, flag)
EVAL_ONLY = [("model_args", "", "--model-args"), ("judges", "", "--judges"), ("limit", None, "--limit"),
             ("batch_size", "auto", "--batch-size"), ("concurrency", 8, "--concurrency"),
             ("max_new_tokens", None, "--max-new-tokens"), ("temperature", None, "--temperature"),
             ("system_prompt", None, "--system-prompt"), ("cache", None, "--cache"), ("no_cache", False, "--no-cache"),
             ("resume", False, "--resume"), ("shard", None, "--shard"), ("data_files", [], "--data-files"),
             ("reference_run", None, "--reference-run"),
             ("base_args", "", "--base-args"), ("tuned_args", "", "--tuned-args")]


@commands.register("drift")
class DriftCommand:
    help = "compare a base and a tuned model (paired deltas, flips, perturbation and token-shift drift)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("runs", nargs="*", metavar="RUN", help="two run folders to compare: RUN_A (base) RUN_B (tuned)")
        p.add_argument("--base", help="base model SPEC (runs eval on it)")
        p.add_argument("--tuned", help="tuned model SPEC (runs eval on it)")
        p.add_argument("--base-args", default="", help="--model-args for the base model only (k=v,...)")
        p.add_argument("--tuned-args", default="", help="--model-args for the tuned model only (k=v,...)")
        add_run_options(p, tasks_required=False)
        p.add_argument("--token-shift", type=non_negative_int, metavar="N",
                       help=f"token-shift profile on N samples per task (default {DEFAULT_TOKEN_SHIFT} with --base/--tuned "
                            "when both backends can score token distributions, 0 for RUN_A RUN_B; 0 = off)")
        p.add_argument("--token-shift-tokens", type=positive_int, default=64, metavar="N",
                       help="length of the tuned model's greedy answers scored by the token-shift profile (default 64)")
        p.add_argument("--json", action="store_true", help="print drift.json to stdout instead of a table")

    def run(self, args: argparse.Namespace) -> int:
        models = args.base is not None or args.tuned is not None
        if models and args.runs:
            raise UsageError("give either two run folders (drift RUN_A RUN_B) or --base and --tuned, not both")
        if models:
            if args.base is None or args.tuned is None:
                raise UsageError(f"--{'tuned' if args.base is not None else 'base'} is missing; drift needs both --base and --tuned")
            path, report = self._models(args)
        else:
            if len(args.runs) != 2:
                raise UsageError(f"drift compares two runs (RUN_A RUN_B) or two models (--base SPEC --tuned SPEC); got {len(args.runs)} run folder(s)")
            for dest, default, flag in EVAL_ONLY:
                if getattr(args, dest) != default:
                    raise UsageError(f"{flag} applies only with --base/--tuned (it changes how runs are made, not how they are compared)")
            tasks = [t.strip() for t in (args.tasks or "").split(",") if t.strip()] or None
            opts = TokenShiftOptions(args.token_shift or 0, args.token_shift_tokens)
            path, report = drift_runs(args.runs[0], args.runs[1], args.output, args.run_id, tasks, args.seed, opts,
                                      groups=builtin_catalog().groups)
        print(json.dumps(report, indent=2, default=str) if args.json else format_table(report))
        print(f"alignbench: drift written to {path}", file=sys.stderr)
        return 0

    def _models(self, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
        args.tasks = args.tasks or DEFAULT_TASKS
        if args.resume and not args.run_id:
            raise UsageError("--resume with --base/--tuned needs the --run-id of the drift to continue")
        common = parse_model_args(args.model_args)
        argv = ["alignbench", *sys.argv[1:]]
        base = eval_config(args, args.base, argv=argv)
        tuned = eval_config(args, args.tuned, argv=argv)
        base.model_args = {**common, **parse_model_args(args.base_args)}
        tuned.model_args = {**common, **parse_model_args(args.tuned_args)}
        drift_id = args.run_id or new_drift_id(args.base, args.tuned)
        n = DEFAULT_TOKEN_SHIFT if args.token_shift is None else args.token_shift
        return drift_models(base, tuned, drift_id, TokenShiftOptions(n, args.token_shift_tokens))
