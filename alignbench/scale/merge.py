"""Join the run folders of ``--shard I/N`` runs into one run, as if it had run unsharded.

The shards must be complete runs of the same model, tasks, judges and settings (only the shard and
the run-level plumbing such as ``--concurrency`` may differ), every shard 0..N-1 exactly once, and no
sample may appear twice. metrics.json is recomputed from the joined samples with each task's
scorer, rebuilt from the resolved task config that run.json keeps, in the canonical record order:
a merged run's metrics equal an unsharded run's, bootstrap CIs included.
"""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.records import lock
from alignbench.records.accounting import token_totals
from alignbench.records.epochs import record_epoch
from alignbench.records.files import RunDir, check_run_id
from alignbench.run.folder import new_run_id
from alignbench.run.provenance import scrub_argv
from alignbench.run.task_setup import task_scorer_args
from alignbench.scorers.base import build_scorer, canonical_order, task_metrics

# EvalConfig fields that change what a run computes; the others (shard, output, run_id, cache,
# concurrency, batch size, resume, command) do not.
SAME_CONFIG = ("model", "model_args", "tasks", "judges", "limit", "seed", "max_new_tokens", "temperature",
               "system_prompt", "data_files", "reference_run", "urial", "harm_judge", "refusal_judge")


def _shard_of(info: dict[str, Any], path: Path) -> tuple[int, int]:
    raw = info.get("shard") or (info.get("config") or {}).get("shard")
    if isinstance(raw, str) and re.fullmatch(r"\d+/\d+", raw):
        i, n = (int(x) for x in raw.split("/"))
        return i, n
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return int(raw[0]), int(raw[1])
    raise UsageError(f"{path}: not a sharded run (run.json has no shard); merge joins runs made with --shard I/N")


def _signature(info: dict[str, Any]) -> dict[str, Any]:
    cfg = info.get("config") or {}
    sig: dict[str, Any] = {f"config.{k}": cfg.get(k) for k in SAME_CONFIG}
    sig["model_fingerprint"] = (info.get("model_fingerprint") or {}).get("hash")
    for name, t in (info.get("tasks") or {}).items():
        sig[f"tasks.{name}.hash"] = t.get("hash")
    sig["tasks"] = list(info.get("tasks") or {})
    for name, j in (info.get("judges") or {}).items():
        sig[f"judges.{name}.hash"] = j.get("hash")
    sig["judges"] = sorted(info.get("judges") or {})
    return sig


def _check_same(first: tuple[Path, dict[str, Any]], other: tuple[Path, dict[str, Any]]) -> None:
    a, b = _signature(first[1]), _signature(other[1])
    for key in list(a) + [k for k in b if k not in a]:
        if a.get(key) != b.get(key):
            raise UsageError(f"{other[0]}: differs from {first[0]} in {key} ({b.get(key)!r} vs {a.get(key)!r}); "
                             "shards must be runs of the same model, tasks and settings")


def task_scorer(name: str, task_info: dict[str, Any], source: Path, run_config: dict[str, Any]) -> Any:
    """The scorer of a task, rebuilt from the resolved config run.json keeps, with the run's --harm-judge /
    --refusal-judge (``run_config``: run.json's ``config``) as eval applied them."""
    raw = task_info.get("config")
    if not isinstance(raw, dict):
        raise UsageError(f"{source}: run.json has no resolved config for task {name!r} (made by an older alignbench?)")
    try:
        cfg = TaskConfig.model_validate(raw)
    except Exception as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"{source}: run.json: task {name!r}: config does not validate ({first})") from None
    return build_scorer(cfg.scorer, task_scorer_args(cfg, run_config), f"{source}/run.json: task {name!r}")


Shard = tuple[Path, dict[str, Any]]  # (run folder, run.json)


def merge_runs(paths: list[str | Path], output: str | Path, run_id: str | None = None,
               command: list[str] | None = None) -> RunDir:
    """Check the shards, join their samples, recompute metrics and write ``output/run_id``."""
    if run_id is not None:
        check_run_id(run_id)
    runs = read_shards(paths)
    check_shards(runs)
    base = runs[0][1]
    by_task = join_samples(runs)
    metrics, judge_errors = recompute_metrics(runs, by_task)
    rid = run_id or new_run_id(str(base.get("model") or "merged"))
    _new_run_dir(Path(output), rid, runs)
    with lock.writing(Path(output) / rid, "run folder"):  # one writer per run folder
        rd = _new_run_dir(Path(output), rid, runs)  # still free now that it is ours
        info = merged_info(runs, by_task, rd, Path(output), command, judge_errors)
        rd.write_run(info)
        for recs in by_task.values():
            rd.append(recs)
        rd.write_metrics(metrics)
        rd.update_run(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return rd


def read_shards(paths: list[str | Path]) -> list[Shard]:
    """The run folders and their run.json, each a complete run."""
    if not paths:
        raise UsageError("merge: name at least one shard run folder")
    runs: list[Shard] = []
    for p in paths:
        rd = RunDir(p)
        info = rd.read_run()
        if info.get("status") != "complete":
            raise UsageError(f"{rd.path}: run status is {info.get('status')!r}, not 'complete' (an incomplete shard); "
                             f"finish it with: alignbench eval ... --resume --run-id {rd.path.name}")
        runs.append((rd.path, info))
    return runs


def check_shards(runs: list[Shard]) -> None:
    """Every shard 0..N-1 exactly once, all runs alike but for the shard."""
    shards: dict[int, Path] = {}
    n_first = None
    for path, info in runs:
        i, n = _shard_of(info, path)
        n_first = n if n_first is None else n_first
        if n != n_first:
            raise UsageError(f"{path}: shard {i}/{n} does not match {runs[0][0]} (shard count {n_first})")
        if i in shards:
            raise UsageError(f"shard {i}/{n} given twice: {shards[i]} and {path}")
        shards[i] = path
        _check_same(runs[0], (path, info))
    assert n_first is not None
    missing = [f"{i}/{n_first}" for i in range(n_first) if i not in shards]
    if missing:
        raise UsageError(f"merge: shard(s) {', '.join(missing)} missing; pass every shard's run folder")


def join_samples(runs: list[Shard]) -> dict[str, list[dict[str, Any]]]:
    """Every task's records from all shards, in canonical order: no duplicates, each shard complete."""
    task_names = list(runs[0][1].get("tasks") or {})
    seen: dict[tuple[str, str, int | None], Path] = {}
    by_task: dict[str, list[dict[str, Any]]] = {t: [] for t in task_names}
    run_counts: list[dict[str, int]] = []
    for path, _ in runs:
        counts = {t: 0 for t in task_names}
        run_counts.append(counts)
        for rec in RunDir(path).records():
            key = (str(rec.get("task")), str(rec.get("sample_id")), record_epoch(rec))
            if key[0] not in by_task:
                raise UsageError(f"{path}/samples.jsonl: sample {key[1]!r} of task {key[0]!r}, which run.json does not list")
            if key in seen:
                raise UsageError(f"duplicate sample {key[0]}/{key[1]} in {seen[key]} and {path}; shards overlap")
            seen[key] = path
            counts[key[0]] += 1
            by_task[key[0]].append(rec)
    for (path, info), counts in zip(runs, run_counts):  # after the overlap check: a duplicate is the clearer error
        for t in task_names:
            want = (info["tasks"][t] or {}).get("n_samples")
            want = None if want is None else want * int((info["tasks"][t] or {}).get("epochs") or 1)
            if want is not None and counts[t] != want:
                raise UsageError(f"{path}: task {t!r} has {counts[t]} of {want} samples in samples.jsonl (an incomplete shard)")
    return {t: canonical_order(recs) for t, recs in by_task.items()}


def recompute_metrics(runs: list[Shard], by_task: dict[str, list[dict[str, Any]]]
                      ) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """(metrics.json, judge error counts per task) from the joined records, with each task's scorer."""
    base = runs[0][1]
    seed = int(base.get("seed") or 0)
    reducer = str((base.get("config") or {}).get("reducer") or "mean")
    metrics: dict[str, Any] = {}
    judge_errors: dict[str, dict[str, int]] = {}
    for t, recs in by_task.items():
        scorer = task_scorer(t, base["tasks"][t], runs[0][0], base.get("config") or {})
        metrics[t], errs = task_metrics(recs, scorer, seed=seed, reducer=reducer)
        if errs:
            judge_errors[t] = errs
    return metrics, judge_errors


def _new_run_dir(out_root: Path, rid: str, runs: list[Shard]) -> RunDir:
    rd = RunDir(out_root / rid)
    if rd.path.exists():
        raise UsageError(f"run folder {rd.path} already exists; pass another --run-id or --output")
    if any(rd.path.resolve() == p.resolve() for p, _ in runs):
        raise UsageError(f"--output: {rd.path} is one of the shards")
    return rd


def merged_info(runs: list[Shard], by_task: dict[str, list[dict[str, Any]]], rd: RunDir, out_root: Path,
                command: list[str] | None, judge_errors: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The merged run's run.json (status running until its files are written): the first shard's, with
    the merge's id, command, summed model and judge-model calls, token totals over all samples, judge
    errors and where each shard came from."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    info = copy.deepcopy(runs[0][1])
    for k in ("error", "resumed", "torn_bytes_dropped", "wall_s"):
        info.pop(k, None)
    info.update(
        run_id=rd.path.name, status="running", created=now, finished=None, shard=None,
        command=scrub_argv(command) if command else info.get("command"),
        model_calls=sum(int(i.get("model_calls") or 0) for _, i in runs),
        judge_model_calls=sum(int(i.get("judge_model_calls") or 0) for _, i in runs),
        tokens=token_totals([r for recs in by_task.values() for r in recs]),
        judge_errors=judge_errors,
        merged_from=[{"run_id": i.get("run_id"), "path": str(p), "shard": "%d/%d" % _shard_of(i, p),
                      "created": i.get("created"), "finished": i.get("finished"), "model_calls": i.get("model_calls"),
                      "wall_s": i.get("wall_s")} for p, i in sorted(runs, key=lambda r: _shard_of(r[1], r[0]))],
    )
    if isinstance(info.get("config"), dict):
        info["config"].update(shard=None, run_id=rd.path.name, output=str(out_root), resume=False)
    for t, recs in by_task.items():
        info["tasks"][t]["n_samples"] = len(recs)
    return info
