"""One eval as N shards on an executor (this process or Ray), merged into one run at the end.

Layout under ``--output DIR`` for run id ID::

    DIR/ID.shards/shard-K-of-N/    each shard's normal run folder (run.json, samples.jsonl, metrics.json)
    DIR/ID.shards/cache/shard-K.sqlite   each shard's own generation cache file (only that shard writes it)
    DIR/ID/                        the merged run, written by ``alignbench.scale.merge`` once every shard is complete
    DIR/.ID.lock                   held by the driver while it runs (one writer per run; each shard holds its own)

A shard that fails is run again, resuming its folder, up to ``retries`` times; one that keeps failing
ends the run with exit 3 and the command that resumes it (``--resume --run-id ID``), which runs only
the unfinished shards. Every shard reads the main generation cache (read-only) and writes its own
file; the driver copies the shard files into the main cache when the shards are done (also after a
failure), so no two processes ever write one SQLite file and a re-run is served from the main cache.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from alignbench.backends.cache import default_cache_path, merge_caches
from alignbench.errors import BackendError, UsageError
from alignbench.records import lock
from alignbench.records.files import RunDir, check_run_id
from alignbench.run.folder import new_run_id
from alignbench.run.settings import EvalConfig
from alignbench.scale.executors import Executor, ShardJob, ShardOutcome, forwarded_env
from alignbench.scale.merge import merge_runs
from alignbench.tasks.catalog import resolve_tasks

SHARDS_SUFFIX = ".shards"
POLL_S = 30.0


class ShardsFailed(BackendError):
    """A shard failed beyond its retries (exit 3); the finished shards are kept for ``--resume``."""


def shard_run_id(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def resume_command(argv: list[str], run_id: str) -> str:
    """``argv`` with ``--run-id RUN_ID --resume`` in place of any run id / resume it had."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--run-id":
            skip = True
            continue
        if a == "--resume" or a.startswith("--run-id="):
            continue
        out.append(a)
    return shlex.join([*out, "--run-id", run_id, "--resume"])


class ShardedRun:
    def __init__(self, cfg: EvalConfig, shards: int, retries: int = 2, argv: list[str] | None = None, out=None) -> None:
        if cfg.shard is not None:
            raise UsageError("--shards runs every shard and --shard runs one; pass only one of them")
        if cfg.run_id is not None:
            check_run_id(cfg.run_id)
        if cfg.resume and not cfg.run_id:
            raise UsageError("--resume with --shards needs the --run-id of the sharded run")
        self.cfg, self.n, self.retries = cfg, shards, retries
        self.argv = list(argv or cfg.command or sys.argv)
        self.err = out or sys.stderr
        self.root = Path(cfg.output).resolve()
        self.run_id = cfg.run_id or new_run_id(cfg.model)
        self.final = RunDir(self.root / self.run_id)
        self.shard_root = self.root / f"{self.run_id}{SHARDS_SUFFIX}"
        self.main_cache = None if cfg.no_cache else Path(cfg.cache or default_cache_path()).resolve()

    # folders ------------------------------------------------------------------------------------
    def shard_dir(self, k: int) -> RunDir:
        return RunDir(self.shard_root / shard_run_id(k, self.n))

    def shard_cache(self, k: int) -> Path:
        return self.shard_root / "cache" / f"shard-{k}.sqlite"

    def _check_folders(self, clean: bool = False) -> None:
        if not self.cfg.resume:
            if self.final.path.exists() or self.shard_root.exists():
                raise UsageError(f"run {self.run_id!r} already exists in {self.root}; pass --resume to continue it or another --run-id")
            return
        if not self.shard_root.is_dir():
            raise UsageError(f"--resume: no sharded run {self.run_id!r} in {self.root} (no {self.shard_root.name}/)")
        counts = {m.group(1) for p in self.shard_root.iterdir() if (m := re.fullmatch(r"shard-\d+-of-(\d+)", p.name))}
        if counts and counts != {str(self.n)}:
            raise UsageError(f"--resume: run {self.run_id!r} was made with --shards {', '.join(sorted(counts))}, not {self.n}")
        if self.final.path.exists() and not self._final_complete():
            try:
                merged = "merged_from" in self.final.read_run()
            except UsageError:
                merged = not self.final.run_file.exists()
            if not merged:
                raise UsageError(f"--resume: {self.final.path} is not this sharded run's merged folder; move it away")
            if clean:  # only while holding the run's lock
                shutil.rmtree(self.final.path)  # a merge cut short: it is rebuilt from the shards

    def _final_complete(self) -> bool:
        try:
            return self.final.read_run().get("status") == "complete"
        except UsageError:
            return False

    def _complete(self, k: int) -> bool:
        rd = self.shard_dir(k)
        try:
            return rd.exists() and rd.read_run().get("status") == "complete"
        except UsageError:
            return False

    def job(self, k: int) -> ShardJob:
        rd = self.shard_dir(k)
        cfg = replace(self.cfg, shard=(k, self.n), output=str(self.shard_root), run_id=rd.path.name,
                      resume=rd.exists(), cache=None if self.cfg.no_cache else str(self.shard_cache(k)), command=self.argv)
        return ShardJob(k, self.n, cfg, cache_fallback=str(self.main_cache) if self.main_cache else None,
                        env=forwarded_env(), cwd=os.getcwd())

    # the run ------------------------------------------------------------------------------------
    def check(self, clean: bool = False) -> None:
        """Fail on bad usage before any executor starts (a Ray start-up takes seconds); ``clean`` (under the run's lock)
        also removes a merged folder that a merge cut short."""
        resolve_tasks(self.cfg.tasks)  # unknown tasks or a bad YAML
        self._check_folders(clean)

    def run(self, executor: Executor) -> RunDir:
        self.check()
        try:  # one writer: this driver owns the run (its shards folder and its merged folder) until it ends
            lock.acquire(self.final.path, "run folder")
        except BaseException:
            executor.close()
            raise
        try:
            self.check(clean=True)  # as the folders are now that they are ours
            return self._run(executor)
        finally:
            lock.release(self.final.path)

    def _run(self, executor: Executor) -> RunDir:
        if self.cfg.resume and self._final_complete():
            executor.close()
            print(f"alignbench: run {self.run_id} is already complete; nothing to resume", file=self.err)
            return self.final
        self.executor = executor
        self.shard_root.mkdir(parents=True, exist_ok=True)
        done = {k for k in range(self.n) if self._complete(k)}
        attempts = {k: 0 for k in range(self.n)}
        failed: dict[int, ShardOutcome] = {}
        try:
            for k in range(self.n):
                if k not in done:
                    self._submit(k, attempts)
            self._progress(done, failed)
            while self.executor.running():
                for o in self.executor.wait(POLL_S):
                    if o.ok:
                        done.add(o.index)
                    elif o.kind != "usage" and attempts[o.index] <= self.retries:
                        print(f"alignbench: shard {o.index}/{self.n} failed ({o.error}); retry {attempts[o.index]} of "
                              f"{self.retries}, resuming its run folder", file=self.err)
                        self._submit(o.index, attempts)
                    else:
                        failed[o.index] = o
                    self._progress(done, failed)
        finally:
            self.executor.close()
            self._collect_caches(cleanup=False)
        if failed:
            self._raise(failed, attempts, len(done))
        rd = merge_runs([self.shard_dir(k).path for k in range(self.n)], self.root, run_id=self.run_id, command=self.argv)
        info = rd.read_run()
        rd.update_run(config={**info.get("config", {}), "cache": str(self.main_cache) if self.main_cache else None},
                      executor={"name": self.executor.name, "shards": self.n, "folder": str(self.shard_root), **self.executor.resources})
        self._collect_caches(cleanup=True)
        return rd

    def _submit(self, k: int, attempts: dict[int, int]) -> None:
        attempts[k] += 1
        self.executor.submit(self.job(k))

    def _progress(self, done: set[int], failed: dict[int, ShardOutcome]) -> None:
        print(f"alignbench: shards of {self.run_id}: {len(done)} done, {self.executor.running()} running, "
              f"{len(failed)} failed (of {self.n})", file=self.err, flush=True)

    def _collect_caches(self, cleanup: bool) -> None:
        if self.main_cache is None:
            return
        files = sorted((self.shard_root / "cache").glob("shard-*.sqlite"))
        if not files:
            return
        merge_caches(files, self.main_cache)
        if cleanup:
            shutil.rmtree(self.shard_root / "cache", ignore_errors=True)

    def _raise(self, failed: dict[int, ShardOutcome], attempts: dict[int, int], n_done: int) -> None:
        k = min(failed, key=lambda i: (failed[i].kind != "usage", i))  # bad input first: a retry will not fix it
        o = failed[k]
        cmd = resume_command(self.argv, self.run_id)
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        tries = "" if o.kind == "usage" else f" after {attempts[k]} attempts"
        msg = (f"shard {k}/{self.n}{others} failed{tries}: {o.error}; {n_done} finished shard(s) kept in "
               f"{self.shard_root}; resume with: {cmd}")
        raise (UsageError if o.kind == "usage" else ShardsFailed)(msg)


def run_sharded(cfg: EvalConfig, shards: int, executor: Executor, retries: int = 2, argv: list[str] | None = None) -> RunDir:
    return ShardedRun(cfg, shards, retries, argv).run(executor)
