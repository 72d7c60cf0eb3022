"""``alignbench merge RUN_DIR ... --output DIR``: join the runs of ``--shard I/N`` into one run."""

from __future__ import annotations

import argparse
import json
import sys

from alignbench.commands.eval import print_summary
from alignbench.registry import commands
from alignbench.scale.merge import merge_runs


@commands.register("merge")
class MergeCommand:
    help = "join the run folders of --shard I/N runs into one run (metrics recomputed)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="the shard runs' folders, every shard once")
        p.add_argument("--output", default="results", help="folder that gets the merged run's folder (default: results)")
        p.add_argument("--run-id", help="name of the merged run's folder (default: time + model)")
        p.add_argument("--json", action="store_true", help="print metrics.json to stdout instead of a table")

    def run(self, args: argparse.Namespace) -> int:
        rd = merge_runs(args.runs, args.output, run_id=args.run_id, command=["alignbench", *sys.argv[1:]])
        metrics = rd.read_metrics()
        if args.json:
            print(json.dumps(metrics, indent=2))
        else:
            print_summary(metrics)
        info = rd.read_run()
        n = sum(t.get("n_samples", 0) for t in info["tasks"].values())
        print(f"alignbench: merged {len(info['merged_from'])} shards ({n} samples) into {rd.path}", file=sys.stderr)
        return 0
