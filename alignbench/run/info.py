"""What a run records about itself in run.json when it starts (DESIGN §4): how it was called, on
what, with which versions of alignbench, its tasks and its judges."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from alignbench.backends.base import Backend
from alignbench.judges.catalog import builtin_judges, judge_version_hash
from alignbench.records.epochs import task_epochs
from alignbench.records.files import RunDir
from alignbench.run.provenance import git_commit, scrub, scrub_argv, versions
from alignbench.run.settings import EvalConfig, PreparedTask
from alignbench.run.urial import Urial
from alignbench.tasks.catalog import task_version_hash
from alignbench.types import GenerationParams


def judge_hashes(prepared: list["PreparedTask"]) -> dict[str, str]:
    """Each judge's version hash (of its YAML), by name, in the order the tasks use them."""
    catalog = builtin_judges()
    judges = {j.name: j for p in prepared for j in p.judges}
    return {n: judge_version_hash(getattr(j, "definition", None) or catalog.config(n)) for n, j in judges.items()}


def run_info(eval_cfg: "EvalConfig", run_dir: RunDir, backend: Backend, prepared: list["PreparedTask"],
             task_params: Callable[["PreparedTask"], GenerationParams], urial: Urial | None = None) -> dict[str, Any]:
    """A new run's run.json (DESIGN §4): command, resolved config (scrubbed of secrets), model fingerprint,
    versions, and each task's and judge's version hash; ``task_params`` gives a task's decoding; with URIAL, the
    prompt file's name and sha256 (``urial``), since the same name may hold another prompt in another version."""
    cfg = asdict(eval_cfg)
    cfg.pop("command", None)
    judges = {j.name: j for p in prepared for j in p.judges}
    hashes = judge_hashes(prepared)
    return {
        "run_id": run_dir.path.name,
        "status": "running",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished": None,
        "command": scrub_argv(eval_cfg.command or sys.argv),
        "config": scrub(cfg),
        "model": eval_cfg.model,
        "model_fingerprint": scrub(backend.fingerprint()),
        "versions": versions(),
        "git_commit": git_commit(),
        "seed": eval_cfg.seed,
        "shard": f"{eval_cfg.shard[0]}/{eval_cfg.shard[1]}" if eval_cfg.shard else None,
        "tasks": {
            p.cfg.name: {"version": p.cfg.version, "hash": task_version_hash(p.cfg, p.data_paths), "source": p.cfg.source,
                         "data": [str(x) for x in p.data_paths] or p.cfg.dataset.hub, "n_samples": len(p.samples),
                         "epochs": task_epochs(p.cfg, eval_cfg.epochs),
                         "config": p.cfg.model_dump(mode="json"),
                         # what the backend sends for this task's decoding (servers apply their own defaults otherwise)
                         "decoding": backend.decoding_fields(task_params(p)) if p.cfg.output_type == "generate" else None}
            for p in prepared
        },
        "judges": {n: {"kind": j.kind, "hash": hashes[n]} for n, j in judges.items()},
        **({"urial": {"prompt": urial.name, "sha256": urial.digest}} if urial is not None else {}),
    }
