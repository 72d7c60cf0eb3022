"""``eval``'s options for running one eval as shards on an executor (``--executor local|ray --shards N``)."""

from __future__ import annotations

import argparse

from alignbench.commands._options import non_negative_int, positive_int
from alignbench.errors import UsageError
from alignbench.records.files import RunDir
from alignbench.run.settings import EvalConfig
from alignbench.scale.executors import make_executor
from alignbench.scale.sharded import ShardedRun


def non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def add_executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where --shards run: local (here, one after another) or ray (Ray tasks on RAY_ADDRESS's cluster, "
                        "or a local Ray); default local")
    p.add_argument("--shards", type=positive_int, help="run the eval as N shards and merge them into one run")
    p.add_argument("--shard-retries", type=non_negative_int, default=2,
                   help="times a failed shard is run again, resuming its folder (default 2)")
    p.add_argument("--ray-cpus-per-shard", type=non_negative_float, help="CPUs each shard's Ray task asks for (default 1)")
    p.add_argument("--ray-gpus-per-shard", type=non_negative_float, help="GPUs each shard's Ray task asks for (default 0)")


def run_with_executor(args: argparse.Namespace, cfg: EvalConfig) -> RunDir | None:
    """The merged run when ``--shards`` was given; None for a plain (unsharded) run."""
    if args.shards is None:
        if args.executor == "ray":
            raise UsageError("--executor ray needs --shards N (the number of Ray tasks to split the eval into)")
        if args.ray_cpus_per_shard is not None or args.ray_gpus_per_shard is not None:
            raise UsageError("--ray-cpus-per-shard/--ray-gpus-per-shard need --executor ray --shards N")
        return None
    run = ShardedRun(cfg, args.shards, retries=args.shard_retries, argv=cfg.command)
    run.check()  # bad usage fails before Ray starts
    return run.run(make_executor(args.executor, args.ray_cpus_per_shard, args.ray_gpus_per_shard))
