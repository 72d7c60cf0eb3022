"""``openai:MODEL``: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, Ollama, OpenAI).

Model args: ``base_url`` (else env ``OPENAI_BASE_URL``, else https://api.openai.com/v1),
``endpoint=chat|completions`` (default chat; with ``completions`` string prompts go to
/v1/completions, chat prompts still go to /v1/chat/completions), ``timeout`` (seconds per
request, default 120), ``max_retries`` (default 5), ``backoff`` (first retry wait in seconds,
default 1; doubles per retry, with jitter, capped by ``max_backoff`` = 60). Any other simple
``k=v`` (``top_k=20``, ``repetition_penalty=1.1``...) is added to every request body.

The API key comes ONLY from the environment variable ``OPENAI_API_KEY`` and is sent as a bearer
token; it is never a model arg and never appears in run.json, the cache, logs or error messages.

Requests are sent concurrently, up to ``--concurrency`` in flight, by one ``OpenAIClient``
(``alignbench.backends.openai_client``: one event loop and connection pool for the backend's life).
The evaluator hands over the next chunk's requests before judging the current one
(``submit_generate``), so the slots stay busy across chunk boundaries. 429, 5xx, timeouts, dropped
connections and malformed bodies are retried with exponential backoff and jitter (a
``Retry-After`` header is honoured); once retries run out, or on a non-retryable 4xx, a one-line
``BackendError`` (exit 3) is raised. The requests that did finish are attached to the error as
``partial`` so the cache keeps them and ``--resume`` does not pay for them again; ``failed`` lists
the requests that failed (the others were cancelled), and a rejection carries its HTTP ``status``.

Log-likelihoods use /v1/completions with ``echo=true, logprobs=1``: the server returns the
log-probability of every prompt token; the continuation's tokens are found by ``text_offset`` and
summed. ``max_tokens`` is 1 (not 0) because vLLM rejects 0; the generated token lies past the
prompt and is ignored. Servers without prompt log-probabilities (OpenAI chat models, llama.cpp
server) cannot serve multiple-choice tasks: that is a one-line error naming the cause.

A generation request with ``GenerationParams.logprobs = k`` also asks for the k most likely tokens
at each generated position (chat: ``logprobs=true, top_logprobs=k``; completions: ``logprobs=k``)
and returns them as ``Generation.token_logprobs`` (None when the server sends none).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from alignbench.backends._echo_probe import has_prompt_logprobs, is_shifted, probe_body
from alignbench.backends.base import Backend, BackendOptions
from alignbench.backends.openai_client import (  # noqa: F401 - re-exported: the client's home used to be here
    RETRY_STATUS, OpenAIClient, Pending, RejectedRequest, public_url, retry_after_seconds)
from alignbench.errors import BackendError, UsageError
from alignbench.registry import backends
from alignbench.types import Generation, GenerationParams, GenerationRequest, Loglikelihood, LoglikelihoodRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RESERVED_ARGS = {"model", "messages", "prompt", "stream", "n", "echo", "logprobs", "top_logprobs", "max_tokens"}
SECRET_ARGS = ("key", "token", "secret", "password", "authorization")
LOGPROBS_HINT = ("multiple-choice tasks need a /v1/completions endpoint that returns prompt log-probabilities "
                 "(echo=true, logprobs=1: vLLM, SGLang) or the hf backend")


def _accounting(data: Any) -> dict[str, Any]:
    """``usage`` token counts and the finish reason (``stop``/``length``; others, e.g. tool_calls, as None)."""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    count = lambda k: usage.get(k) if isinstance(usage.get(k), int) and not isinstance(usage.get(k), bool) else None  # noqa: E731
    reason = data["choices"][0].get("finish_reason")
    return {"num_tokens": count("completion_tokens"), "tokens_in": count("prompt_tokens"),
            "finish_reason": reason if reason in ("stop", "length") else None}


def _chat_text(data: Any) -> tuple[str, dict[str, Any]]:
    choice = data["choices"][0]
    content = choice["message"].get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("choices[0].message.content is not a string")
    return content or "", _accounting(data)


def _completion_text(data: Any) -> tuple[str, dict[str, Any]]:
    text = data["choices"][0]["text"]
    if not isinstance(text, str):
        raise TypeError("choices[0].text is not a string")
    return text, _accounting(data)


def _chat_token_logprobs(data: Any) -> list[dict[str, Any]] | None:
    """``choices[0].logprobs.content`` of a chat answer as ``Generation.token_logprobs`` (None when absent)."""
    content = (data["choices"][0].get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return None
    out = []
    for t in content:
        top: dict[str, float] = {}
        for alt in t.get("top_logprobs") or []:
            top[str(alt["token"])] = max(float(alt["logprob"]), top.get(str(alt["token"]), float("-inf")))
        out.append({"token": str(t["token"]), "logprob": None if t.get("logprob") is None else float(t["logprob"]), "top": top})
    return out


def _completion_token_logprobs(data: Any) -> list[dict[str, Any]] | None:
    """``choices[0].logprobs`` of a completion (legacy layout) as ``Generation.token_logprobs`` (None when absent)."""
    lp = data["choices"][0].get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
        return None
    values = lp.get("token_logprobs") or [None] * len(lp["tokens"])
    tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
    return [{"token": str(t), "logprob": None if v is None else float(v),
             "top": {str(k): float(x) for k, x in (top or {}).items()}} for t, v, top in zip(lp["tokens"], values, tops)]


class LogprobsUnsupported(Exception):
    """The server's answer holds no prompt log-probabilities."""


def continuation_logprob(data: Any, context: str, continuation: str) -> Loglikelihood:
    """Sum the log-probabilities of the continuation's tokens in an echo+logprobs completion.

    A token belongs to the continuation when it ends after the context (a token straddling the
    boundary counts) and starts before the end of the prompt (a generated token does not).
    """
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices in the response")
    lp = choices[0].get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("token_logprobs"), list) or not isinstance(lp.get("text_offset"), list):
        raise LogprobsUnsupported("the response has no logprobs.token_logprobs/text_offset")
    offsets, logprobs = lp["text_offset"], lp["token_logprobs"]
    tokens = lp.get("tokens") or [None] * len(offsets)
    tops = lp.get("top_logprobs") or [None] * len(offsets)
    if not (len(offsets) == len(logprobs) == len(tokens) == len(tops)):
        raise ValueError("logprobs arrays differ in length")
    start, end = len(context), len(context) + len(continuation)
    if not offsets or offsets[0] != 0:
        raise LogprobsUnsupported("the prompt was not echoed with log-probabilities")
    first = max(i for i, o in enumerate(offsets) if o <= start)
    idx = [i for i in range(first, len(offsets)) if offsets[i] < end]
    if not idx:
        raise LogprobsUnsupported("no prompt tokens cover the continuation")
    total, greedy = 0.0, True
    for i in idx:
        if logprobs[i] is None:
            if i == 0:
                raise UsageError("openai backend: a log-likelihood request has an empty context; the server gives no log-probability for the first token")
            raise LogprobsUnsupported("a prompt token has no log-probability")
        total += float(logprobs[i])
        top = tops[i]
        if isinstance(top, dict) and top:
            best = max(top, key=lambda t: top[t])
            greedy = greedy and (best == tokens[i] or top[best] <= float(logprobs[i]))
        else:
            greedy = False
    return Loglikelihood(logprob=total, is_greedy=greedy, num_tokens=len(idx))


@backends.register("openai")
class OpenAIBackend(Backend):
    """OpenAI-compatible server (vLLM, SGLang, Ollama, OpenAI): base_url=, endpoint=chat|completions; key from OPENAI_API_KEY"""

    name = "openai"
    supports_loglikelihood = True
    runtime_args = frozenset({"timeout", "max_retries", "backoff", "max_backoff"})

    def __init__(self, target: str, options: BackendOptions | None = None, base_url: str | None = None,
                 endpoint: str = "chat", timeout: float = 120.0, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 60.0, **extra: Any) -> None:
        for k in extra:
            if any(m in k.lower() for m in SECRET_ARGS):
                raise UsageError(f"--model-args: {k!r} is not accepted; the openai backend reads the API key from the environment variable OPENAI_API_KEY only")
            if k in RESERVED_ARGS:
                raise UsageError(f"--model-args: {k!r} is set by alignbench for the openai backend and cannot be overridden")
            if not isinstance(extra[k], (str, int, float, bool)) and extra[k] is not None:
                raise UsageError(f"--model-args: {k!r} must be a simple value")
        if endpoint not in ("chat", "completions"):
            raise UsageError(f"--model-args: endpoint must be 'chat' or 'completions', got {endpoint!r}")
        for k, v in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise UsageError(f"--model-args: {k} must be a positive number, got {v!r}")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise UsageError(f"--model-args: max_retries must be an integer >= 0, got {max_retries!r}")
        url = str(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--model-args: base_url must start with http:// or https://, got {public_url(url)!r}")
        super().__init__(target, options, base_url=public_url(url), endpoint=endpoint, **extra)
        self.endpoint = endpoint
        self.extra = dict(extra)
        concurrency = max(1, int(self.options.concurrency))
        self.client = OpenAIClient(url, timeout=float(timeout), max_retries=max_retries, backoff=float(backoff),
                                   max_backoff=float(max_backoff), concurrency=concurrency,
                                   api_key=os.environ.get("OPENAI_API_KEY") or None)
        self.preferred_chunk = max(32, concurrency * 4)  # keeps every slot busy while bounding what a failure loses
        self._fingerprint: dict[str, Any] | None = None
        self._echo_checked = False

    # provenance ---------------------------------------------------------------------------------
    def _server_model(self) -> dict[str, Any] | None:
        """The server's /v1/models entry for this model (None when the server has no such list)."""

        async def call() -> Any:
            return await self.client.request("GET", "/models")

        try:
            data = self.client.run_all([call])[0]
        except RejectedRequest:
            return None
        except BackendError as exc:
            raise BackendError(f"{exc}; is the server running at {self.client.public_base_url}?") from None
        rows = data.get("data") if isinstance(data, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("id") == self.target:
                return {k: row[k] for k in ("id", "created", "owned_by", "root", "max_model_len") if k in row}
        return None

    def fingerprint(self) -> dict[str, Any]:
        """``openai:MODEL@URL`` and a hash of URL, model, options and the server's model entry.

        The entry's ``created`` is recorded but not hashed: vLLM reports the time of the request
        there, which would change the hash (and miss the cache) on every run.
        """
        if self._fingerprint is None:
            entry = self._server_model()
            stable = {k: v for k, v in (entry or {}).items() if k != "created"}
            blob = json.dumps({"base_url": self.client.public_base_url, "model": self.target, "endpoint": self.endpoint,
                               "extra": self.extra, "server": stable}, sort_keys=True, default=str)
            self._fingerprint = {"id": f"openai:{self.target}@{self.client.public_base_url}",
                                 "hash": hashlib.sha256(blob.encode()).hexdigest()[:16], "server_model": entry}
        return self._fingerprint

    # requests -----------------------------------------------------------------------------------
    def _body(self, r: GenerationRequest) -> tuple[str, dict[str, Any]]:
        p = r.params
        body: dict[str, Any] = {"model": self.target, "max_tokens": p.max_new_tokens, "temperature": p.temperature,
                                "top_p": p.top_p, "seed": p.seed}
        if p.stop:
            body["stop"] = list(p.stop)
        body.update({k: v for k, v in self.extra.items() if v is not None})
        if isinstance(r.prompt, str) and self.endpoint == "completions":
            if p.logprobs:
                body["logprobs"] = p.logprobs
            return "/completions", {**body, "prompt": r.prompt}
        if p.logprobs:
            body.update(logprobs=True, top_logprobs=p.logprobs)
        messages = [{"role": "user", "content": r.prompt}] if isinstance(r.prompt, str) else list(r.prompt)
        return "/chat/completions", {**body, "messages": messages}

    def decoding_fields(self, params: GenerationParams) -> dict[str, Any]:
        """The request body's decoding fields (extra --model-args such as repeat_penalty included)."""
        _, body = self._body(GenerationRequest(prompt="", params=params))
        return {k: v for k, v in body.items() if k not in ("model", "prompt", "messages")}

    def _submit(self, factories: list[Callable[[], Awaitable[Any]]], what: str, unsupported: tuple[int, ...] = ()) -> "_Calls":
        return _Calls(self, self.client.submit(factories), what, unsupported)

    def _rejected(self, exc: RejectedRequest, what: str, unsupported: tuple[int, ...]) -> Exception:
        """A rejected request as a one-line error (UsageError for ``unsupported`` statuses), keeping ``partial``
        and ``failed``; ``status`` is the HTTP status (the server answered: the failure is the request's own)."""
        hint = "; check OPENAI_API_KEY" if exc.status in (401, 403) else ""
        msg = f"openai server {self.client.public_base_url} rejected a {what} request for model {self.target!r}: {exc}{hint}"
        err: Exception = UsageError(f"{msg}; {LOGPROBS_HINT}") if exc.status in unsupported else BackendError(msg)
        err.partial = getattr(exc, "partial", {})  # type: ignore[attr-defined]
        err.failed = getattr(exc, "failed", None)  # type: ignore[attr-defined]
        err.status = exc.status  # type: ignore[attr-defined]
        return err

    def _generation_call(self, r: GenerationRequest) -> Callable[[], Awaitable[Generation]]:
        path, body = self._body(r)
        parse = _chat_text if path == "/chat/completions" else _completion_text
        token_logprobs = _chat_token_logprobs if path == "/chat/completions" else _completion_token_logprobs

        def check(data: Any) -> tuple[str, dict[str, Any], list[dict[str, Any]] | None]:
            text, counts = parse(data)
            return text, counts, token_logprobs(data) if r.params.logprobs else None

        async def call() -> Generation:
            t0 = time.monotonic()
            text, counts, lps = await self.client.request("POST", path, body, check=check)
            # a response that echoes the request's Authorization header must not carry the key into samples or the cache
            return Generation(text=self.client.redact_secrets(text), latency_s=time.monotonic() - t0, token_logprobs=lps, **counts)

        return call

    # Requests of the next chunk may be sent while the evaluator judges and writes this one: with one
    # shared semaphore, --concurrency requests stay in flight across chunk boundaries.
    pipelined = True

    def submit_generate(self, requests: list[GenerationRequest]) -> "_Calls":
        """Start the requests and return at once: ``.result()`` waits (results in order), ``.abort()``
        cancels what is still running and returns ``{index: Generation}`` of those that finished."""
        return self._submit([self._generation_call(r) for r in requests], "generation")

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        return self.submit_generate(requests).result()

    def _check_echo_alignment(self) -> None:
        """Once per backend: refuse a server whose echoed log-probabilities are one position off (see _echo_probe)."""
        if self._echo_checked:
            return

        async def call() -> Any:
            return await self.client.request("POST", "/completions", probe_body(self.target))

        data = self._submit([call], "log-likelihood", unsupported=(400, 422)).result()[0]
        if not has_prompt_logprobs(data):
            raise UsageError(f"openai server {self.client.public_base_url}: model {self.target!r} returned no prompt "
                             f"log-probabilities (no logprobs.token_logprobs in its answer); {LOGPROBS_HINT}")
        if is_shifted(data):
            raise UsageError(f"openai server {self.client.public_base_url}: its echoed prompt log-probabilities are shifted by one "
                             "position (each token carries the distribution of the next one, as llama-cpp-python's server does), "
                             "so choice log-likelihoods would be wrong; score multiple-choice tasks with --model default (the same "
                             "GGUF), hf:PATH, lm_eval, or a vLLM server")
        self._echo_checked = True

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        self._check_echo_alignment()

        def factory(r: LoglikelihoodRequest) -> Callable[[], Awaitable[Loglikelihood]]:
            body = {"model": self.target, "prompt": r.context + r.continuation, "echo": True, "logprobs": 1,
                    "max_tokens": 1, "temperature": 0.0}

            def check(data: Any) -> Loglikelihood:
                try:
                    return continuation_logprob(data, r.context, r.continuation)
                except LogprobsUnsupported as exc:
                    raise UsageError(f"openai server {self.client.public_base_url}: model {self.target!r} returned no prompt "
                                     f"log-probabilities ({exc}); {LOGPROBS_HINT}") from None

            async def call() -> Loglikelihood:
                return await self.client.request("POST", "/completions", body, check=check)

            return call

        return self._submit([factory(r) for r in requests], "log-likelihood", unsupported=(400, 422)).result()

    def close(self) -> None:
        self.client.close()


class _Calls:
    """Requests started together (``OpenAIBackend.submit_generate``); a rejection surfaces as the backend's one-line error."""

    def __init__(self, backend: OpenAIBackend, pending: Pending[Any], what: str, unsupported: tuple[int, ...]) -> None:
        self.backend, self.pending, self.what, self.unsupported = backend, pending, what, unsupported

    def result(self) -> list[Any]:
        try:
            return self.pending.result()
        except RejectedRequest as exc:
            raise self.backend._rejected(exc, self.what, self.unsupported) from None

    def abort(self) -> dict[int, Any]:
        return self.pending.abort()
