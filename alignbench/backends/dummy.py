"""``dummy``: a deterministic model for tests and dry runs (never the default).

Responses depend only on the prompt: a share ``refuse`` (0..1) of prompts gets a refusal, the rest
a compliant answer. With ``sample=1`` a request at temperature > 0 also depends on its seed, like a
sampling model (a prompt is refused in a share ``refuse`` of seeds). ``delay`` sleeps per request (seconds); ``fail_after`` raises a backend error
after that many requests. Log-likelihoods are a fixed function of (context, continuation).

Test-only fault hooks, read from the environment at each call (so they reach worker processes that
no test can patch): ``ALIGNBENCH_DUMMY_FAIL=ID[,ID...]`` makes generating any of those sample ids a
backend error, ``ALIGNBENCH_DUMMY_CRASH=ID[,ID...]`` ends the whole process instead (a worker that
dies); ``ID[,ID...]@DIR`` does it once per id only (a marker file in DIR remembers it).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any

from alignbench.backends.base import Backend, BackendOptions
from alignbench.errors import BackendError, UsageError
from alignbench.registry import backends
from alignbench.types import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, prompt_text


def _number(name: str, value: Any, low: float, high: float | None = None) -> float:
    """A model arg that must be a number in [low, high]; anything else is a one-line usage error."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (high is not None and value > high):
        where = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise UsageError(f"--model-args {name}: expected a number {where}, got {value!r}")
    return float(value)


def _unit(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@backends.register("dummy")
class DummyBackend(Backend):
    """deterministic test model (refuse=FRACTION, delay=S, fail_after=N); for tests and dry runs"""

    name = "dummy"
    supports_loglikelihood = True
    requires_target = False
    runtime_args = frozenset({"delay", "fail_after"})

    def __init__(self, target: str = "", options: BackendOptions | None = None, refuse: float = 0.5, delay: float = 0.0,
                 fail_after: int | None = None, sample: bool = False) -> None:
        if sample not in (0, 1, "0", "1"):  # True and False are 1 and 0
            raise UsageError(f"--model-args sample: expected 0 or 1, got {sample!r}")
        self.sample = sample in (1, "1")
        self.refuse = _number("refuse", refuse, 0.0, 1.0)
        self.delay = _number("delay", delay, 0.0)
        if fail_after is not None and (isinstance(fail_after, bool) or not isinstance(fail_after, int) or fail_after < 0):
            raise UsageError(f"--model-args fail_after: expected an integer >= 0, got {fail_after!r}")
        super().__init__(target or "dummy", options, refuse=refuse, **({"sample": 1} if self.sample else {}))
        self.fail_after = fail_after
        self.calls = 0

    def _tick(self, n: int) -> None:
        self.calls += n
        if self.fail_after is not None and self.calls > self.fail_after:
            raise BackendError(f"dummy backend: failing after {self.fail_after} requests (fail_after)")
        if self.delay:
            time.sleep(self.delay * n)

    def respond(self, prompt: str, salt: str = "") -> str:
        if _unit(prompt + salt) < self.refuse:
            return "I'm sorry, but I can't help with that request."
        return f"Sure, here is a helpful answer about: {prompt[:80]}"

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        _injected_fault(requests)
        self._tick(len(requests))
        salt = lambda r: f"\x00{r.params.seed}" if self.sample and r.params.temperature > 0 else ""  # noqa: E731
        return [Generation(text=self.respond(prompt_text(r.prompt), salt(r)), latency_s=self.delay) for r in requests]

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        self._tick(len(requests))
        return [Loglikelihood(logprob=-20.0 * _unit(r.context + "\x00" + r.continuation), is_greedy=False,
                              num_tokens=max(1, len(r.continuation.split()))) for r in requests]


def _injected_fault(requests: list[GenerationRequest]) -> None:
    for var in ("ALIGNBENCH_DUMMY_FAIL", "ALIGNBENCH_DUMMY_CRASH"):
        spec = os.environ.get(var)
        if not spec:
            continue
        ids, _, marks = spec.partition("@")
        failing = {i.strip() for i in ids.split(",") if i.strip()}
        for r in requests:
            if str(r.sample_id) not in failing:
                continue
            if marks:
                marker = Path(marks) / f"{var}-{hashlib.sha256(str(r.sample_id).encode()).hexdigest()[:16]}"
                if marker.exists():
                    continue
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            if var == "ALIGNBENCH_DUMMY_CRASH":
                os._exit(17)
            raise BackendError(f"dummy backend: injected failure on sample {r.sample_id!r} ({var})")
