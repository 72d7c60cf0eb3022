"""``alignbench track CHECKPOINT_DIR... --tasks ...``: one run per checkpoint on the same samples, and track.json.

Checkpoint folders, or a quoted glob (``"out/checkpoint-*"``) that track expands itself, each an ``hf:``
model, ordered by step (``trainer_state.json`` or the folder name). See ``alignbench.track.pipeline`` for
the folder written and how a second call continues. With ``--gate`` the exit code is 1 when a checkpoint
fails a rule (track.json names the first).
"""

from __future__ import annotations

import argparse
import json
import sys

from alignbench.commands._options import add_log_option, add_run_options, eval_config, log_trackers, positive_int
from alignbench.errors import UsageError
from alignbench.registry import commands
from alignbench.track.pipeline import TrackOptions, format_table, run_track


@commands.register("track")
class TrackCommand:
    help = "evaluate every checkpoint of a training run on the same samples: metrics against step, paired deltas, gates"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT_DIR",
                       help="checkpoint folders, or a quoted glob such as \"out/checkpoint-*\" (expanded by track)")
        add_run_options(p)
        p.add_argument("--baseline", metavar="SPEC|RUN_DIR",
                       help="what each checkpoint is compared with (paired by sample): a run folder, a model folder or a model SPEC")
        p.add_argument("--every", type=positive_int, metavar="N", help="only checkpoints whose step is a multiple of N")
        p.add_argument("--gate", metavar="GATES.yaml", help="gate rules checked on every checkpoint (exit 1 when one fails)")
        add_log_option(p)
        p.add_argument("--json", action="store_true", help="print track.json to stdout instead of a table")

    def run(self, args: argparse.Namespace) -> int:
        if not args.checkpoints:
            raise UsageError("track: give at least one checkpoint folder (or a quoted glob such as \"out/checkpoint-*\")")
        if args.shard is not None:
            raise UsageError("--shard does not apply to track (each checkpoint is one run); shard `alignbench eval` instead")
        trackers = log_trackers(args)
        argv = ["alignbench", *getattr(args, "argv", sys.argv[1:])]
        cfg = eval_config(args, "hf:", argv=argv, run_id=None, resume=False)
        opts = TrackOptions(checkpoints=list(args.checkpoints), eval=cfg, output=args.output, track_id=args.run_id,
                            baseline=args.baseline, every=args.every, gate=args.gate, command=cfg.command)
        result = run_track(opts)
        info = result.info
        if trackers:
            from alignbench.integrations.tracking import log_track

            log_track(trackers, result.folder, info)
        print(json.dumps(info, indent=2, default=str) if args.json else format_table(info))
        runs = len(info.get("checkpoints") or []) + (1 if (info.get("baseline") or {}).get("spec") else 0)
        print(f"alignbench: track written to {result.folder} ({len(result.evaluated)} run(s) evaluated, "
              f"{runs - len(result.evaluated)} already complete)", file=sys.stderr)
        first = (info.get("gate") or {}).get("first_failure")
        if first:
            for f in first["failed"]:
                print(f"alignbench: gate failed at step {first['step']}: {f['rule']}: {f['message']}", file=sys.stderr)
            return 1
        return 0
