"""Where the shards of a sharded run execute: here, one after another (``local``), or as Ray tasks (``ray``).

A shard is one ``alignbench eval --shard K/N`` run, described by a picklable :class:`ShardJob` and
run by :func:`run_shard`, which never raises: every failure comes back as a :class:`ShardOutcome`,
so the driver decides about retries. Ray itself never retries a shard (``max_retries=0``): a retry
must resume the shard's run folder, which only the driver knows to ask for.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from alignbench.errors import AlignbenchError, UsageError
from alignbench.redact import SECRET_MARKERS
from alignbench.run.evaluate import Evaluator
from alignbench.run.settings import EvalConfig

# Environment a shard gets from the driver: alignbench's own settings and offline/hub switches. Secrets
# (API keys, hub tokens) never travel through Ray: the cluster's nodes must hold them in their own environment.
FORWARD_PREFIXES = ("ALIGNBENCH_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")
FORWARD_NAMES = ("OPENAI_BASE_URL",)


def forwarded_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    out = {k: v for k, v in env.items()
           if (k.startswith(FORWARD_PREFIXES) or k in FORWARD_NAMES) and not any(m in k.lower() for m in SECRET_MARKERS)}
    out["ALIGNBENCH_NO_PROGRESS"] = "1"  # the driver prints one progress line for all shards
    return out


@dataclass
class ShardJob:
    index: int
    count: int
    cfg: EvalConfig  # shard, output, run_id, resume and cache already set for this shard
    cache_fallback: str | None = None  # the main cache, read-only
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None  # the driver's working directory: relative paths mean the same on every node

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class ShardOutcome:
    index: int
    ok: bool
    kind: str = ""  # on failure: usage (bad input: no retry), backend, error (a bug) or crash (the worker died)
    error: str = ""
    model_calls: int | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0][:300]}" if text else exc.__class__.__name__


@contextlib.contextmanager
def _within(env: dict[str, str], cwd: str | None) -> Iterator[None]:
    """Run with ``env`` set and in ``cwd`` (when it exists here), then put both back: a Ray worker is reused."""
    saved = {k: os.environ.get(k) for k in env}
    here = os.getcwd()
    os.environ.update(env)
    try:
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        yield
    finally:
        os.chdir(here)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_shard(job: ShardJob) -> ShardOutcome:
    """Run (or resume) one shard to completion; failures are returned, not raised."""
    with _within(job.env, job.cwd):
        try:
            rd = Evaluator(job.cfg, cache_fallback=job.cache_fallback).run()
            return ShardOutcome(job.index, True, model_calls=rd.read_run().get("model_calls"))
        except UsageError as exc:
            return ShardOutcome(job.index, False, "usage", str(exc).splitlines()[0] if str(exc) else "bad input")
        except AlignbenchError as exc:
            return ShardOutcome(job.index, False, "backend", _first_line(exc))
        except Exception as exc:  # a bug or an unexpected library error: retried like a backend failure
            return ShardOutcome(job.index, False, "error", _first_line(exc))


class Executor(Protocol):
    name: str
    resources: dict[str, float]  # what each shard asks for, recorded in the merged run.json

    def submit(self, job: ShardJob) -> None: ...

    def wait(self, timeout: float) -> list[ShardOutcome]:
        """Outcomes of shards that finished since the last call (none when ``timeout`` passed first)."""

    def running(self) -> int: ...

    def close(self) -> None: ...


class LocalExecutor:
    """The shards one after another in this process: for one machine, and to check a sharded run."""

    name = "local"
    resources: dict[str, float] = {}

    def __init__(self) -> None:
        self._queue: list[ShardJob] = []

    def submit(self, job: ShardJob) -> None:
        self._queue.append(job)

    def wait(self, timeout: float) -> list[ShardOutcome]:
        return [run_shard(self._queue.pop(0))] if self._queue else []

    def running(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install 'alignbench[ray]'"


class RayExecutor:
    """Each shard a Ray task on the cluster ``RAY_ADDRESS`` names, or on a local Ray started for the run."""

    name = "ray"

    def __init__(self, cpus_per_shard: float = 1.0, gpus_per_shard: float = 0.0) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError(RAY_MISSING) from None
        self._ray = ray
        self._started = False
        self._refs: dict[Any, ShardJob] = {}
        address = None
        if not ray.is_initialized():  # else: the caller's Ray (a library user, a test) is used and left running
            address = os.environ.get("RAY_ADDRESS") or "local"
            try:
                if address == "local":
                    ray.init(address="local", include_dashboard=False, logging_level="WARNING")
                else:
                    ray.init(address=address, logging_level="WARNING")
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UsageError(f"RAY_ADDRESS={address}: cannot connect to a Ray cluster ({_first_line(exc)})") from None
            self._started = True
        total = ray.cluster_resources()
        for what, need, flag in (("GPU", gpus_per_shard, "--ray-gpus-per-shard"), ("CPU", cpus_per_shard, "--ray-cpus-per-shard")):
            have = total.get(what, 0.0)
            if need <= have:
                continue
            if self._started and address == "local":  # a local Ray never grows: the shards would wait forever
                self.close()
                raise UsageError(f"{flag} {need:g}: the local Ray has {have:g} {what}(s); ask for fewer or set RAY_ADDRESS to a cluster")
            print(f"alignbench: warning: each shard asks for {need:g} {what} but the Ray cluster has {have:g} now; "
                  "shards wait until it has more", file=sys.stderr)
        self._task = ray.remote(run_shard)
        self.resources = {"cpus_per_shard": cpus_per_shard, "gpus_per_shard": gpus_per_shard}

    def submit(self, job: ShardJob) -> None:
        ref = self._task.options(num_cpus=self.resources["cpus_per_shard"], num_gpus=self.resources["gpus_per_shard"],
                                 max_retries=0, name=f"alignbench-shard-{job.index}-of-{job.count}").remote(job)
        self._refs[ref] = job

    def wait(self, timeout: float) -> list[ShardOutcome]:
        if not self._refs:
            return []
        refs = list(self._refs)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and any others that finished meanwhile
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                out.append(self._ray.get(ref))
            except self._ray.exceptions.RayError as exc:  # the worker or its node died, or the task was cancelled
                out.append(ShardOutcome(job.index, False, "crash", _first_line(exc)))
        return out

    def running(self) -> int:
        return len(self._refs)

    def close(self) -> None:
        for ref in self._refs:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started:
            self._ray.shutdown()


def make_executor(name: str, cpus_per_shard: float | None = None, gpus_per_shard: float | None = None) -> Executor:
    if name == "ray":
        return RayExecutor(1.0 if cpus_per_shard is None else cpus_per_shard, 0.0 if gpus_per_shard is None else gpus_per_shard)
    if cpus_per_shard is not None or gpus_per_shard is not None:
        raise UsageError("--ray-cpus-per-shard/--ray-gpus-per-shard need --executor ray")
    return LocalExecutor()
