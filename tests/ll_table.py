"""A test backend whose log-likelihoods are a table the test writes by hand: ``ll_table:PATH`` reads a
JSON object {continuation (stripped): logprob}; any continuation not in it is an error. ``install``
registers it for one test's in-process runs (``conftest.run_main``)."""

from __future__ import annotations

import json
from pathlib import Path

from alignbench.backends.base import Backend, BackendOptions
from alignbench.registry import backends
from alignbench.types import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest

NAME = "ll_table"


class LoglikelihoodTable(Backend):
    """log-likelihoods from a hand-written table (tests only)"""

    name = NAME
    supports_loglikelihood = True

    def __init__(self, target: str, options: BackendOptions | None = None) -> None:
        super().__init__(target, options)
        self.table = {str(k): float(v) for k, v in json.loads(Path(target).read_text()).items()}

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        raise NotImplementedError("ll_table scores choices only")

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        return [Loglikelihood(logprob=self.table[r.continuation.strip()], is_greedy=False, num_tokens=1) for r in requests]


def install(monkeypatch) -> None:
    """Make ``ll_table:PATH`` a backend for this test only."""
    backends.names()  # load the built-in backends first
    monkeypatch.setitem(backends._items, NAME, LoglikelihoodTable)


def write_table(path: Path, table: dict[str, float]) -> str:
    """The model SPEC for ``table`` written to ``path``."""
    path.write_text(json.dumps(table))
    return f"{NAME}:{path}"
