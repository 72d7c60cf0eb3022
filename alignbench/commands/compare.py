"""``alignbench compare RUN_A RUN_B [RUN ...] --judge NAME``: pairwise judging of runs, win rates and ratings.

See ``alignbench.compare.pipeline`` for the files written (``OUTPUT/<id>/compare.json``, ``pairs.jsonl``).
The judge is an ``llm_pairwise`` jury (every pair in both orders) or a ``reward_model`` judge (reward
differences decide, ties within ``--tie-margin``).
"""

from __future__ import annotations

import argparse
import json
import sys

from alignbench.commands._judge_io import build_judges
from alignbench.commands._options import add_judge_model_options, add_log_option, log_trackers, non_negative_float
from alignbench.compare.inputs import PAIR_MODES
from alignbench.compare.judging import pairwise_kind
from alignbench.compare.pipeline import CompareOptions, compare_runs, format_table, plan
from alignbench.errors import UsageError
from alignbench.judges.catalog import builtin_judges
from alignbench.registry import commands, judge_kinds


@commands.register("compare")
class CompareCommand:
    help = "judge runs pairwise on their shared samples: win rates, Bradley-Terry and Elo ratings"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("runs", nargs="*", metavar="RUN", help="two or more run folders")
        p.add_argument("--judge", required=True, help="a pairwise jury (llm_pairwise, e.g. jury_pairwise) or a reward model "
                                                      "judge (reward_model, e.g. skywork_reward)")
        p.add_argument("--output", default="results", help="folder that gets the compare folder (default: results)")
        p.add_argument("--run-id", help="name of the compare folder (default: from the runs, the judge and --pairs)")
        p.add_argument("--pairs", choices=PAIR_MODES, default="all",
                       help="all: every pair of runs (default); baseline: every run against the first")
        p.add_argument("--tie-margin", type=non_negative_float,
                       help="reward model: rewards closer than this are a tie (default: the judge's tie_margin, 0)")
        p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the Elo orders")
        p.add_argument("--allow-incomplete", action="store_true",
                       help="compare failed or unfinished runs on the samples they have (recorded in compare.json)")
        again = p.add_mutually_exclusive_group()
        again.add_argument("--resume", action="store_true",
                           help="continue an interrupted compare (keeps the pairs judged; judges failed ones again)")
        again.add_argument("--overwrite", action="store_true", help="replace an existing compare folder")
        p.add_argument("--json", action="store_true", help="print compare.json to stdout instead of a table")
        add_judge_model_options(p)
        add_log_option(p)

    def run(self, args: argparse.Namespace) -> int:
        trackers = log_trackers(args)
        if len(args.runs) < 2:
            raise UsageError(f"compare needs at least two runs (RUN_A RUN_B [RUN ...]); got {len(args.runs)}")
        catalog = builtin_judges()
        cfg = catalog.config(args.judge)
        kind_cls = judge_kinds.get(cfg.kind)
        kind = pairwise_kind(cfg.name, cfg.kind, kind_cls)  # before anything loads
        if args.tie_margin is not None and kind != "reward":
            raise UsageError(f"--tie-margin applies to reward-model judges; {args.judge!r} is a {cfg.kind} jury")
        opts = CompareOptions(runs=list(args.runs), output=args.output, compare_id=args.run_id, pairs=args.pairs, seed=args.seed,
                              tie_margin=args.tie_margin, resume=args.resume, overwrite=args.overwrite,
                              allow_incomplete=args.allow_incomplete, command=["alignbench", *getattr(args, "argv", sys.argv[1:])])
        planned = plan(opts)  # runs that share nothing fail before the judge model loads
        (judge,) = build_judges(args.judge, args)
        try:
            path, info = compare_runs(judge, opts, planned)
        finally:
            judge.close()
        if trackers:
            from alignbench.integrations.tracking import log_compare

            log_compare(trackers, path, info)
        print(json.dumps(info, indent=2, default=str) if args.json else format_table(info))
        print(f"alignbench: compare written to {path}", file=sys.stderr)
        return 0
