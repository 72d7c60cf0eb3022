"""SQLite (WAL) generation cache and the backend wrapper that uses it (DESIGN §4).

A cached request costs no model call: the key is a hash of the model fingerprint, the request and
the generation parameters, so re-running with new judges, or a resumed run, reuses every response.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alignbench.backends.base import Backend
from alignbench.errors import AlignbenchError, UsageError
from alignbench.jsonl import dumps
from alignbench.types import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest


def default_cache_path() -> Path:
    root = os.environ.get("ALIGNBENCH_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "alignbench")
    return Path(root) / "cache.sqlite"


def cache_setting(value: bool | str) -> bool | str:
    """A judge's ``cache`` parameter as it keeps it: a path stays a path, anything else is on or off."""
    return value if isinstance(value, str) else bool(value)


def cache_file(setting: bool | str) -> Path | None:
    """Where a judge that caches its judge-model calls keeps them: ``True`` the default cache, a path (``--cache PATH``)
    that file, ``False`` (``cache: false``, ``--no-cache``) none."""
    if setting is False:
        return None
    return Path(setting) if isinstance(setting, str) else default_cache_path()


class GenerationCache:
    """A key -> JSON value store in one SQLite file, safe for several processes (WAL).

    ``fallback`` names another cache file that is only read: a key missing here is looked up there
    (the shards of a sharded run each write their own file and read the main cache this way).
    """

    def __init__(self, path: str | Path, fallback: str | Path | None = None) -> None:
        self.path = Path(path)
        self._fallback = _open_read_only(Path(fallback)) if fallback is not None else None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise UsageError(f"cache {self.path}: cannot open ({exc}); pass --cache PATH or --no-cache") from None

    @staticmethod
    def key(fingerprint: str, kind: str, payload: Any) -> str:
        blob = json.dumps([fingerprint, kind, payload], sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        found = _select(self._db, keys)
        rest = [k for k in keys if k not in found]
        if rest and self._fallback is not None:
            try:
                found.update(_select(self._fallback, rest))
            except sqlite3.Error:  # the read-only layer went away or is busy: its keys are misses, never an error
                self._fallback.close()
                self._fallback = None
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        if not items:
            return
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO cache (key, value, created) VALUES (?, ?, ?)",
            [(k, dumps(v, f"cache {self.path}"), now) for k, v in items.items()],  # no NaN or infinity (alignbench.jsonl)
        )
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        if self._fallback is not None:
            self._fallback.close()


def _select(db: sqlite3.Connection, keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for k, v in db.execute(f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk):
            found[k] = json.loads(v)
    return found


def _open_read_only(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to an existing cache file, or None when there is none to read."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30, check_same_thread=False)
        db.execute("SELECT 1 FROM cache LIMIT 1").fetchall()
        return db
    except sqlite3.Error:
        return None


def merge_caches(sources: list[Path], into: str | Path) -> int:
    """Copy every entry of the cache files ``sources`` into the cache ``into``; returns the entries added.

    Entries already in ``into`` are kept (a key names one request, so both hold the same answer).
    Each source must no longer be written to (a finished shard's file).
    """
    target = GenerationCache(into)
    added = 0
    try:
        for src in sources:
            if not Path(src).is_file():
                continue
            before = len(target)
            try:
                target._db.execute("ATTACH DATABASE ? AS src", (str(src),))
                target._db.execute("INSERT OR IGNORE INTO cache (key, value, created) SELECT key, value, created FROM src.cache")
                target._db.commit()
                target._db.execute("DETACH DATABASE src")
            except sqlite3.Error as exc:
                raise UsageError(f"cache {src}: cannot merge into {target.path} ({exc})") from None
            added += len(target) - before
    finally:
        target.close()
    return added


class CachedBackend:
    """Wraps a backend: serves hits from the cache, sends only misses to the model."""

    def __init__(self, backend: Backend, cache: GenerationCache | None) -> None:
        self.backend = backend
        self.cache = cache
        self._fp_hash: str | None = None
        self._memo: dict[str, Any] = {}  # without a cache: this run's results, so a repeated request is sent once
        self.model_calls = 0  # requests actually sent to the model

    @property
    def _fp(self) -> str:
        """The model fingerprint's hash, asked for on first use: a server backend answers it with a request,
        so building several wrapped backends (an LLM jury) costs no sequential round trips, and none without a cache."""
        if self._fp_hash is None:
            self._fp_hash = self.backend.fingerprint()["hash"]
        return self._fp_hash

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _run(self, kind: str, requests: list[Any], payloads: list[Any], call: Any, decode: Any) -> list[Any]:
        return self._start(kind, requests, payloads, call, None, decode).result()

    def _start(self, kind: str, requests: list[Any], payloads: list[Any], call: Any, submit: Any, decode: Any) -> "Submitted":
        """Serve hits, send each distinct miss once, store what comes back; see ``Submitted``.

        Identical requests (same prompt and parameters, or the same context and continuation: TruthfulQA's
        mc1 and mc2 share most of their choices) are sent once per run, within a call and - without a
        cache - across calls, from an in-memory memo; a backend whose answers depend on more than the
        request (``cacheable = False``: replay) gets every request as it is. ``submit`` (or None) starts
        the misses without waiting (``.result()`` / ``.abort()``); else ``call`` computes them now.
        """
        if not getattr(self.backend, "cacheable", True):
            self.model_calls += len(requests)
            if submit is not None:
                return Submitted(submit(requests), lambda fresh: fresh, lambda got: got, list)
            return Submitted.done(call(requests))
        if self.cache is None:  # one backend, one run: the request alone is the key, no fingerprint needed
            keys = [GenerationCache.key("", kind, p) for p in payloads]
            hits = {k: self._memo[k] for k in keys if k in self._memo}
        else:
            keys = [GenerationCache.key(self._fp, kind, p) for p in payloads]
            hits = self.cache.get_many(keys)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in hits:
                first.setdefault(k, i)
        todo = list(first)

        def finished(got: dict[int, Any]) -> dict[int, Any]:
            """Store the misses that came back (``{position in todo: result}``); every request now answered."""
            self.model_calls += len(got)
            new = {todo[j]: asdict(res) for j, res in got.items()}
            self._store(new)
            fresh = {todo[j]: res for j, res in got.items()}
            out: dict[int, Any] = {}
            for i, k in enumerate(keys):
                if i == first.get(k) and k in fresh:
                    out[i] = fresh[k]
                elif k in hits or k in new:  # a cache hit, or a repeat of a request sent above
                    out[i] = decode(hits[k] if k in hits else new[k])
            return out

        def owners(positions: list[int]) -> list[int]:
            """The request indices answered by the misses at ``positions`` in todo (repeats share one)."""
            sent = {todo[j] for j in positions}
            return [i for i, k in enumerate(keys) if k in sent]

        def complete(fresh: list[Any]) -> list[Any]:
            got = finished(dict(enumerate(fresh)))
            return [got[i] for i in range(len(requests))]

        misses = [requests[first[k]] for k in todo]
        if not todo:
            return Submitted.done(complete([]))
        if submit is not None:
            return Submitted(submit(misses), complete, finished, owners)
        try:
            fresh = call(misses)
        except AlignbenchError as exc:
            _keep_partial(exc, finished, owners)
            raise
        return Submitted.done(complete(fresh))

    def _store(self, items: dict[str, Any]) -> None:
        if not items:
            return
        if self.cache is not None:
            self.cache.put_many(items)
        else:
            self._memo.update(items)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        return self.submit_generate(requests).result()

    def submit_generate(self, requests: list[GenerationRequest]) -> "Submitted":
        """Like ``generate``, but a backend that can (``submit_generate``) starts its requests and returns at once."""
        payloads = [{"prompt": r.prompt, "system": r.system_prompt, "params": r.params.as_dict()} for r in requests]

        def decode(d: dict[str, Any]) -> Generation:
            return Generation(text=d["text"], cached=True, latency_s=0.0, num_tokens=d.get("num_tokens"),
                              tokens_in=d.get("tokens_in"), finish_reason=d.get("finish_reason"),
                              token_logprobs=d.get("token_logprobs"))

        submit = getattr(self.backend, "submit_generate", None)
        return self._start("generate", requests, payloads, self.backend.generate, submit, decode)

    def generate_each(self, requests: list[GenerationRequest]) -> list[Generation | Exception]:
        """Like ``generate``, but a request that fails gets its exception in place of its Generation.

        A backend that fails part-way tells which requests were answered (``done``) and which failed
        (``failed_requests``); the others were only cancelled, so they are sent again. Resending stops
        when the model answered none of a round's requests (cache hits do not count) and the failure
        was not the server rejecting a request (``status``: it was unreachable or failing beyond its
        retries, and another round would only repeat the wait), or when that happens two rounds in a
        row. A backend that does not say which request failed gives every request left the exception.
        """
        out: list[Generation | Exception | None] = [None] * len(requests)
        todo = list(range(len(requests)))
        stalled = False  # the model answered nothing in the previous round
        while todo:
            try:
                for i, g in zip(todo, self.generate([requests[i] for i in todo])):
                    out[i] = g
                break
            except Exception as exc:
                done = getattr(exc, "done", None) or {}
                for j, g in done.items():
                    out[todo[j]] = g
                answered = any(not g.cached for g in done.values())
                failed = getattr(exc, "failed_requests", None)
                rejected = isinstance(getattr(exc, "status", None), int)
                give_up = failed is None or (not answered and (stalled or not rejected))
                for j in range(len(todo)) if give_up else failed:
                    if out[todo[j]] is None:
                        out[todo[j]] = exc
                todo = [i for i in todo if out[i] is None]
                stalled = not answered
        return out  # type: ignore[return-value]

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        payloads = [{"context": r.context, "continuation": r.continuation} for r in requests]

        def decode(d: dict[str, Any]) -> Loglikelihood:
            return Loglikelihood(logprob=d["logprob"], is_greedy=d["is_greedy"], num_tokens=d.get("num_tokens", 0), cached=True)

        return self._run("loglikelihood", requests, payloads, self.backend.loglikelihood, decode)


def _keep_partial(exc: BaseException, finished: Any, owners: Any) -> None:
    """A backend that failed part-way may attach ``partial`` = {position: result} of the requests that
    finished: store them (a resumed run does not pay for them again) and attach ``done`` = {request
    index: result} of every request answered, for the caller to keep. A backend that also names the
    positions that failed (``failed``) gets ``failed_requests`` = their request indices: the requests
    neither done nor failed were only cancelled. Without ``failed``, ``failed_requests`` is None."""
    exc.done = finished(getattr(exc, "partial", None) or {})  # type: ignore[attr-defined]
    failed = getattr(exc, "failed", None)
    exc.failed_requests = None if failed is None else owners(failed)  # type: ignore[attr-defined]


class Submitted:
    """Requests given to ``CachedBackend.submit_generate``: ``result()`` waits for them (in order);
    ``abort()`` cancels those still running and returns ``{request index: result}`` of those answered.

    When ``result()`` raises, the exception carries ``done`` = ``{request index: result}`` and
    ``failed_requests`` (see ``_keep_partial``).
    """

    def __init__(self, pending: Any, complete: Any, finished: Any, owners: Any) -> None:
        self._pending, self._complete, self._finished, self._owners = pending, complete, finished, owners
        self._out: list[Any] | None = None

    @classmethod
    def done(cls, results: list[Any]) -> "Submitted":
        s = cls(None, None, None, None)
        s._out = results
        return s

    def result(self) -> list[Any]:
        if self._out is None:
            try:
                fresh = self._pending.result()
            except AlignbenchError as exc:
                _keep_partial(exc, self._finished, self._owners)
                raise
            self._out = self._complete(fresh)
        return self._out

    def abort(self) -> dict[int, Any]:
        if self._out is not None:
            return dict(enumerate(self._out))
        return self._finished(self._pending.abort())
