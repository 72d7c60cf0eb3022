"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests (no network, no mocks of httpx).

It listens on an ephemeral port in a background thread and speaks enough of the OpenAI API for
clients such as alignbench's ``openai`` backend and LLM judges:

* ``POST /v1/chat/completions`` - ``messages`` in, ``choices[0].message.content`` out;
* ``POST /v1/completions`` - ``prompt`` (a string or a list of strings: one choice per prompt),
  with ``echo`` and ``logprobs`` (vLLM / legacy-OpenAI style: ``tokens``, ``token_logprobs``,
  ``top_logprobs``, ``text_offset``);
* ``GET /v1/models`` - the served model list.

Quick use::

    from openai_server import OpenAIServer, Reply

    with OpenAIServer() as srv:                      # started; srv.base_url == "http://127.0.0.1:PORT/v1"
        srv.handler = lambda req: "yes" if "kill" in req.text else "no"
        srv.fail(429, times=2, retry_after=0.2)      # the next 2 requests get 429 + Retry-After: 0.2
        ...                                          # point the client at srv.base_url
        assert srv.requests[0].json["model"] == "judge-a"

As a pytest fixture: ``from openai_server import openai_server`` in a test module (conftest puts
``tests/`` on ``sys.path``), then take ``openai_server`` as an argument; it is started before and
stopped after each test.

Deciding the answers
--------------------
``OpenAIServer(handler=None, *, models=None, api_key=None, delay=0.0, logprobs=True)``

``handler(req: RecordedRequest)`` is called for every completion request (from the server's worker
thread; several may run at once) and returns one of:

* ``str`` - the generated text; the server wraps it in a well-formed response for the endpoint
  (``stop`` strings cut it, ``max_tokens`` keeps at most that many whitespace-separated words,
  ``echo`` prepends the prompt). For a completions request with a list prompt the handler is
  called once per prompt, with ``req.text`` set to that prompt.
* ``dict`` - sent verbatim as the JSON body with status 200 (full control of the payload).
* ``Reply(status=200, json=None, body=None, headers={}, delay=0.0, drop=False)`` - full control of
  status, headers, raw body bytes, delay before answering, or dropping the connection.
* ``Recorded(text, tokens=None)`` - a recorded model answer (e.g. a classifier's output, malformed
  or not), sent verbatim (no ``stop``/``max_tokens`` cut); ``tokens`` = ``[(token, logprob, {alt: logprob}),
  ...]`` whose texts concatenate to ``text``. When the request asks for log-probabilities (chat:
  ``logprobs``/``top_logprobs``; completions: ``logprobs=k``) they are sent in that endpoint's layout,
  at most ``k`` alternatives per token.

The default handler answers ``default_text(req)``: ``"Echo: "`` + the last user message (chat) or
the prompt (completions) - deterministic, so tests can predict it. ``req.model`` is the requested
model, so one server can play several judges (switch on it in the handler).

Injected faults (consumed first-in-first-out by the next matching requests, before the handler):

* ``srv.fail(status, times=1, retry_after=None, message=..., path=None)`` - an OpenAI-style error
  body ``{"error": {"message", "type", "code"}}`` with that status; ``retry_after`` (seconds,
  float allowed) sets the ``Retry-After`` header;
* ``srv.slow(delay, times=1, path=None)`` - answer normally, but only after ``delay`` seconds;
* ``srv.malformed(times=1, path=None)`` - status 200 with a body that is not JSON;
* ``srv.drop(times=1, path=None)`` - close the connection without answering;
* ``srv.add_fault(Reply(...), times=1, path=None)`` - any ``Reply``.

``path`` limits a fault to requests whose path ends with it (e.g. ``"/chat/completions"``).
``delay=`` (constructor or attribute) delays every response; ``models=[...]`` makes unknown models a
404; ``api_key="sk-..."`` makes requests without ``Authorization: Bearer sk-...`` a 401;
``logprobs=False`` makes ``echo``/``logprobs`` completions a 400, like servers that lack them.

What was asked
--------------
``srv.requests``: a list of ``RecordedRequest`` (``method``, ``path``, ``headers`` with lower-case
names, ``json`` (parsed body or None), ``body`` bytes, ``arrived`` and ``finished``
(``time.monotonic()``), ``model``, ``text``). ``srv.completion_requests()`` filters out
``/v1/models``. ``srv.max_in_flight`` is the largest number of requests handled at once.
``srv.reset()`` clears requests, faults and counters.

Log-probabilities of the fake model are public so tests can compute the expected values:
``tokenize(text) -> list[(token, offset)]`` (a word with its leading spaces, or a run of
punctuation), ``token_logprob(prefix, token) -> float`` and ``greedy_token(prefix, token) -> bool``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

import pytest

__all__ = ["OpenAIServer", "RecordedRequest", "Reply", "Recorded", "default_text", "tokenize", "token_logprob",
           "greedy_token", "openai_server"]

_TOKEN = re.compile(r"\s*[A-Za-z0-9']+|\s*[^\sA-Za-z0-9']+|\s+")


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    arrived: float
    finished: float | None = None
    text: str = ""  # last user message (chat) or the prompt (completions)

    @property
    def model(self) -> str | None:
        return self.json.get("model") if isinstance(self.json, dict) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return (self.json or {}).get("messages") or [] if isinstance(self.json, dict) else []


@dataclass
class Reply:
    """A fully specified answer: status, JSON or raw body, headers, delay, or a dropped connection."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    passthrough: bool = False  # after ``delay``, answer as if no fault (used by ``slow``)


@dataclass
class Recorded:
    """A recorded answer with its tokens' log-probabilities (see the module docstring)."""

    text: str
    tokens: list[tuple[str, float, dict[str, float]]] | None = None

    def __post_init__(self) -> None:
        if self.tokens is not None and "".join(t for t, _, _ in self.tokens) != self.text:
            raise ValueError("Recorded tokens do not spell the text")


Handler = Callable[[RecordedRequest], Union[str, dict, Reply, Recorded]]


@dataclass
class _Fault:
    reply: Reply
    times: int
    path: str | None


def default_text(req: RecordedRequest) -> str:
    return "Echo: " + req.text


def tokenize(text: str) -> list[tuple[str, int]]:
    """Tokens of the fake model with their character offsets; they concatenate back to ``text``."""
    return [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]


def _unit(*parts: str) -> float:
    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:8], "big") / 2**64


def token_logprob(prefix: str, token: str) -> float:
    """log P(token | prefix) of the fake model: a deterministic value in (-5, -0.05]."""
    return -0.05 - 4.95 * _unit("lp", prefix, token)


def greedy_token(prefix: str, token: str) -> bool:
    """Whether ``token`` is the fake model's most likely next token after ``prefix``."""
    return _unit("greedy", prefix, token) < 0.5


def _error_body(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             429: "rate_limit_error", 500: "server_error", 503: "server_error"}
    return {"error": {"message": message, "type": kinds.get(status, "error"), "param": None, "code": status}}


def _cut(text: str, stop: Any, max_tokens: Any) -> tuple[str, str]:
    finish = "stop"
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    for s in stops:
        if s and s in text:
            text = text[: text.index(s)]
    if isinstance(max_tokens, int) and max_tokens >= 0:
        words = text.split()
        if len(words) > max_tokens:
            text = " ".join(words[:max_tokens])
            finish = "length"
    return text, finish


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default (5) drops SYNs when many clients connect at once: 1 s stalls
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        """A client that hangs up mid-answer (a CLI aborting its run) is normal here, not a server failure:
        no traceback on stderr, where the tests look for the CLI's own."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class OpenAIServer:
    """See the module docstring."""

    def __init__(self, handler: Handler | None = None, *, models: list[str] | None = None,
                 api_key: str | None = None, delay: float = 0.0, logprobs: bool = True) -> None:
        self.handler: Handler = handler or default_text
        self.models = models
        self.api_key = api_key
        self.delay = delay
        self.logprobs = logprobs
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # lifecycle ----------------------------------------------------------------------------------
    def start(self) -> "OpenAIServer":
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_POST(self) -> None:
                server._serve(self, "POST")

        self._httpd = _Server(("127.0.0.1", 0), _H)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    # faults -------------------------------------------------------------------------------------
    def add_fault(self, reply: Reply, times: int = 1, path: str | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(reply, times, path))

    def fail(self, status: int, times: int = 1, retry_after: float | None = None, message: str | None = None,
             path: str | None = None) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        msg = message or f"injected error {status}"
        self.add_fault(Reply(status=status, json=_error_body(status, msg), headers=headers), times, path)

    def slow(self, delay: float, times: int = 1, path: str | None = None) -> None:
        self.add_fault(Reply(delay=delay, passthrough=True), times, path)

    def malformed(self, times: int = 1, path: str | None = None) -> None:
        self.add_fault(Reply(body=b'{"choices": [ this is not json', headers={"Content-Type": "application/json"}), times, path)

    def drop(self, times: int = 1, path: str | None = None) -> None:
        self.add_fault(Reply(drop=True), times, path)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.max_in_flight = 0

    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.path.endswith("/models")]

    def _take_fault(self, path: str) -> Reply | None:
        with self._lock:
            for f in self._faults:
                if f.path is None or path.endswith(f.path):
                    f.times -= 1
                    if f.times <= 0:
                        self._faults.remove(f)
                    return f.reply
        return None

    # serving ------------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except json.JSONDecodeError:
            parsed = None
        path = h.path.split("?", 1)[0]
        req = RecordedRequest(method, path, {k.lower(): v for k, v in h.headers.items()}, body, parsed, time.monotonic())
        with self._lock:
            self.requests.append(req)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._counter += 1
            n = self._counter
        try:
            reply = self._answer(req, method, path, n)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            data = reply.body if reply.body is not None else json.dumps(reply.json).encode()
            try:
                h.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for k, v in headers.items():
                    h.send_header(k, v)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
                h.wfile.flush()
            except OSError:  # the client gave up (timeout) - nothing to do
                h.close_connection = True
        finally:
            req.finished = time.monotonic()
            with self._lock:
                self._in_flight -= 1

    def _answer(self, req: RecordedRequest, method: str, path: str, n: int) -> Reply:
        delay = self.delay
        fault = self._take_fault(path)
        if fault is not None and not fault.passthrough:
            return Reply(fault.status, fault.json, fault.body, dict(fault.headers), fault.delay + delay, fault.drop)
        if fault is not None:
            delay += fault.delay
        reply = self._route(req, method, path, n)
        reply.delay += delay
        return reply

    def _route(self, req: RecordedRequest, method: str, path: str, n: int) -> Reply:
        if self.api_key is not None and req.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, _error_body(401, "Incorrect API key provided."))
        if method == "GET" and path == "/v1/models":
            names = self.models or ["test-model"]
            return Reply(json={"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000,
                                                           "owned_by": "openai-server-test"} for m in names]})
        if method != "POST" or path not in ("/v1/chat/completions", "/v1/completions"):
            return Reply(404, _error_body(404, f"no route {method} {path}"))
        if not isinstance(req.json, dict):
            return Reply(400, _error_body(400, "request body is not a JSON object"))
        model = req.json.get("model")
        if not model:
            return Reply(400, _error_body(400, "'model' is required"))
        if self.models is not None and model not in self.models:
            return Reply(404, _error_body(404, f"The model `{model}` does not exist."))
        if path == "/v1/chat/completions":
            return self._chat(req, model, n)
        return self._completions(req, model, n)

    def _call_handler(self, req: RecordedRequest) -> str | dict | Reply | Recorded:
        out = self.handler(req)
        if not isinstance(out, (str, dict, Reply, Recorded)):
            raise TypeError(f"handler returned {type(out).__name__}; expected str, dict, Reply or Recorded")
        return out

    def _chat(self, req: RecordedRequest, model: str, n: int) -> Reply:
        msgs = req.json.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return Reply(400, _error_body(400, "'messages' must be a non-empty list"))
        users = [m.get("content", "") for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
        req.text = str(users[-1] if users else msgs[-1].get("content", ""))
        out = self._call_handler(req)
        logprobs = None
        if isinstance(out, Recorded):
            text, finish = out.text, "stop"
            if req.json.get("logprobs") and out.tokens is not None:
                k = int(req.json.get("top_logprobs") or 0)
                logprobs = {"content": [{"token": t, "logprob": lp, "bytes": list(t.encode()),
                                         "top_logprobs": [{"token": a, "logprob": v, "bytes": list(a.encode())}
                                                          for a, v in list(top.items())[:k]]} for t, lp, top in out.tokens]}
        elif not isinstance(out, str):
            return out if isinstance(out, Reply) else Reply(json=out)
        else:
            text, finish = _cut(out, req.json.get("stop"), req.json.get("max_tokens", req.json.get("max_completion_tokens")))
        return Reply(json={
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                         "logprobs": logprobs}],
            "usage": {"prompt_tokens": sum(len(tokenize(str(m.get("content", "")))) for m in msgs),
                      "completion_tokens": len(tokenize(text)), "total_tokens": 0},
        })

    def _completions(self, req: RecordedRequest, model: str, n: int) -> Reply:
        prompt = req.json.get("prompt")
        prompts = prompt if isinstance(prompt, list) else [prompt]
        if not prompts or not all(isinstance(p, str) for p in prompts):
            return Reply(400, _error_body(400, "'prompt' must be a string or a list of strings"))
        echo = bool(req.json.get("echo"))
        logprobs = req.json.get("logprobs")
        if (echo or logprobs is not None) and not self.logprobs:
            return Reply(400, _error_body(400, "echo and logprobs are not supported by this model"))
        choices = []
        for i, p in enumerate(prompts):
            req.text = p
            out = self._call_handler(req)
            if isinstance(out, Recorded) and not echo:
                choice: dict[str, Any] = {"index": i, "text": out.text, "finish_reason": "stop", "logprobs": None}
                if logprobs is not None and out.tokens is not None:
                    offsets = [sum(len(t) for t, _, _ in out.tokens[:j]) for j in range(len(out.tokens))]
                    choice["logprobs"] = {"tokens": [t for t, _, _ in out.tokens], "token_logprobs": [lp for _, lp, _ in out.tokens],
                                          "top_logprobs": [dict(list(top.items())[: int(logprobs)]) for _, _, top in out.tokens],
                                          "text_offset": offsets}
                choices.append(choice)
                continue
            if isinstance(out, Recorded):
                out = out.text
            if not isinstance(out, str):
                return out if isinstance(out, Reply) else Reply(json=out)
            gen, finish = _cut(out, req.json.get("stop"), req.json.get("max_tokens", 16))
            text = (p + gen) if echo else gen
            choice = {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
            if logprobs is not None:
                choice["logprobs"] = self._logprobs(p, text, echo, int(logprobs))
            choices.append(choice)
        req.text = prompts[-1]
        return Reply(json={"id": f"cmpl-{n}", "object": "text_completion", "created": int(time.time()), "model": model,
                           "choices": choices, "usage": {"prompt_tokens": sum(len(tokenize(p)) for p in prompts),
                                                         "completion_tokens": 0, "total_tokens": 0}})

    @staticmethod
    def _logprobs(prompt: str, text: str, echo: bool, k: int) -> dict[str, Any]:
        """Legacy logprobs block; with echo the first token has no logprob (None), as in vLLM/OpenAI.

        The prompt and the generated text are tokenized separately (as a real server does: the
        generated tokens follow the prompt's), so echoed prompt tokens never depend on the output.
        """
        gen = text[len(prompt):] if echo else text
        toks = [(t, o) for t, o in tokenize(prompt)] if echo else []
        toks += [(t, o + len(prompt)) for t, o in tokenize(gen)]
        full = prompt + gen
        base = 0 if echo else len(prompt)
        out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for t, o in toks:
            out["tokens"].append(t)
            out["text_offset"].append(o - base)
            if o == 0:
                out["token_logprobs"].append(None)
                out["top_logprobs"].append(None)
                continue
            prefix = full[:o]
            lp = token_logprob(prefix, t)
            out["token_logprobs"].append(lp)
            top = {t: lp} if greedy_token(prefix, t) else {"<other>": min(lp + 0.5, 0.0), t: lp}
            out["top_logprobs"].append(dict(list(top.items())[: max(k, 1) + 1]))
        return out


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A started ``OpenAIServer`` with the default handler; stopped after the test."""
    with OpenAIServer() as srv:
        yield srv
