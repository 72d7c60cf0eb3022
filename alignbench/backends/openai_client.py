"""An async JSON client for OpenAI-compatible servers: retries, backoff, a concurrency cap, and one
event loop and connection pool kept for the client's whole life.

The loop runs in a daemon thread of its own, so callers stay synchronous (and may call from
inside another event loop, e.g. a notebook). ``submit(factories)`` starts the calls and returns at
once, so a caller can queue the next batch while the current one is still running: with one shared
semaphore, ``concurrency`` requests stay in flight across batch boundaries. ``run_all`` is
``submit(...).result()``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx

from alignbench.errors import BackendError
from alignbench.redact import redact, scrub_url

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
MAX_RETRY_AFTER = 300.0

T = TypeVar("T")


def public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part and with secret-looking query values masked (safe to print and store)."""
    return scrub_url(url).rstrip("/")


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds, or None."""
    if not value:
        return None
    try:
        return max(0.0, min(float(value), MAX_RETRY_AFTER))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), MAX_RETRY_AFTER))


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RejectedRequest(Exception):
    """The server answered a non-retryable 4xx; ``status`` and ``message`` (key redacted)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def server_message(resp: httpx.Response) -> str:
    """The error text of a server's answer (OpenAI, vLLM and FastAPI shapes), else its body."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text.strip()[:200] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if data.get("message"):
            return str(data["message"])
        if data.get("detail"):
            return str(data["detail"])
    return json.dumps(data)[:200]


class Pending(Generic[T]):
    """Calls started by ``OpenAIClient.submit``: ``result()`` waits for all of them (in order);
    ``abort()`` cancels those still running and returns ``{index: result}`` of those that finished.

    If one call fails, the others are cancelled and ``result()`` raises its exception with
    ``partial`` = ``{index: result}`` of the calls that had finished and ``failed`` = the indices of
    the calls that failed (the rest were cancelled: they may well succeed when sent again).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, factories: list[Callable[[], Awaitable[T]]]) -> None:
        self._loop = loop
        self._tasks: list[asyncio.Future[T]] = []
        self._future = asyncio.run_coroutine_threadsafe(self._run(factories), loop)

    def _finished(self) -> dict[int, T]:
        return {i: t.result() for i, t in enumerate(self._tasks) if t.done() and not t.cancelled() and t.exception() is None}

    async def _run(self, factories: list[Callable[[], Awaitable[T]]]) -> list[T]:
        self._tasks = [asyncio.ensure_future(f()) for f in factories]
        if not self._tasks:
            return []
        try:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # cancelled from outside (abort) or a call failed: nothing keeps running
            pending = [t for t in self._tasks if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        failed = [i for i, t in enumerate(self._tasks) if not t.cancelled() and t.exception() is not None]
        if failed:
            exc = self._tasks[failed[0]].exception()
            exc.partial = self._finished()  # type: ignore[union-attr]
            exc.failed = failed  # type: ignore[union-attr]
            raise exc  # type: ignore[misc]
        return [t.result() for t in self._tasks]

    def result(self) -> list[T]:
        return self._future.result()

    def abort(self) -> dict[int, T]:
        if not self._future.done():
            self._loop.call_soon_threadsafe(self._future.cancel)
            try:
                self._future.result()
            except BaseException:  # noqa: BLE001 - cancelled, or failed while cancelling: only the finished ones matter
                pass
        return self._finished()


@dataclass
class OpenAIClient:
    """Async JSON requests to an OpenAI-compatible server with retries, backoff and a concurrency cap.

    Reusable by anything that talks to such a server (backends, LLM judges): ``submit(calls)`` /
    ``run_all(calls)`` run coroutines made with ``request(method, path, body)`` concurrently, on one
    event loop and one connection pool for the client's life (``close()`` ends both).
    """

    base_url: str
    timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    concurrency: int = 8
    api_key: str | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._rng = random.Random()
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @property
    def public_base_url(self) -> str:
        return public_url(self.base_url)

    @property
    def secrets(self) -> list[str]:
        """What this client sends that is secret: the API key and the base URL's password."""
        try:
            password = urlsplit(self.base_url).password
        except ValueError:
            password = None
        return [s for s in (self.api_key, password) if s]

    def redact_secrets(self, text: str) -> str:
        """``text`` with the exact API key (and URL password) cut out: a server that echoes its request's headers
        must not put the key into a stored response."""
        return redact(text, self.secrets)

    def redact(self, text: str) -> str:
        text = " ".join(str(text).split())
        return self.redact_secrets(text)[:300]

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "alignbench"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def backoff_wait(self, attempt: int) -> float:
        """Wait before retry ``attempt`` (1-based): exponential, with +-50% jitter."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * (0.5 + self._rng.random())

    # the event loop -----------------------------------------------------------------------------
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's loop thread did not come along
                self._loop = self._thread = self._client = self._sem = None
                self._pid = os.getpid()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="alignbench-openai", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def _connection(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """The pool and the semaphore, made on first use inside the loop's thread."""
        if self._client is None or self._sem is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0))
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers(), timeout=timeout, limits=limits)
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client, self._sem

    def submit(self, factories: list[Callable[[], Awaitable[T]]]) -> Pending[T]:
        """Start the coroutines (each made by a factory) and return at once; see ``Pending``."""
        return Pending(self._running_loop(), factories)

    def run_all(self, factories: list[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run the coroutines concurrently; results in order.

        If one fails, the rest are cancelled and its exception is raised with ``partial``:
        ``{index: result}`` of those that finished, and ``failed``: the indices of those that failed.
        """
        return self.submit(factories).result()

    def close(self) -> None:
        """Close the connections and stop the loop (a later call starts new ones)."""
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = self._sem = None
        if loop is None:
            return
        if client is not None:
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
            except Exception:  # noqa: BLE001 - closing a broken pool: nothing left to keep
                pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        if not loop.is_running():
            loop.close()

    # one request --------------------------------------------------------------------------------
    async def _once(self, client: httpx.AsyncClient, method: str, path: str, body: Any) -> Any:
        try:
            if method == "GET":
                resp = await client.get(path)
            else:
                resp = await client.post(path, json=body)
        except httpx.TimeoutException:
            raise _Retryable(f"timed out after {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed ({exc.__class__.__name__}: {self.redact(str(exc)) or 'no detail'})") from None
        if resp.status_code == 200:
            try:
                return resp.json()
            except ValueError:
                raise _Retryable("malformed JSON in the response") from None
        message = self.redact(server_message(resp))
        if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
            raise _Retryable(f"HTTP {resp.status_code}: {message}", retry_after_seconds(resp.headers.get("retry-after")))
        raise RejectedRequest(resp.status_code, message)

    async def request(self, method: str, path: str, body: Any = None, check: Callable[[Any], Any] | None = None) -> Any:
        """One request with retries; ``check(data)`` may raise ``ValueError`` for a retryable bad body."""
        client, sem = self._connection()
        attempt = 0
        while True:
            try:
                async with sem:
                    data = await self._once(client, method, path, body)
                    return check(data) if check is not None else data
            except (_Retryable, ValueError, KeyError, TypeError, IndexError) as exc:
                reason = exc.reason if isinstance(exc, _Retryable) else f"unexpected response ({self.redact(str(exc)) or exc.__class__.__name__})"
                retry_after = exc.retry_after if isinstance(exc, _Retryable) else None
            attempt += 1
            if attempt > self.max_retries:
                raise BackendError(f"openai server {self.public_base_url}{path}: {reason}; gave up after {self.max_retries} retries")
            await asyncio.sleep(retry_after if retry_after is not None else self.backoff_wait(attempt))
