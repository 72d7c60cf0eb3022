"""The judge interface: (prompt, response, references) -> Judgment, in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from alignbench.types import JudgeInput, Judgment


def error_message(exc: BaseException) -> str:
    """A failed judgment's ``error``: the exception's class and the first line of its message, at most 500 characters."""
    return f"{exc.__class__.__name__}: {exc}".splitlines()[0][:500]


class Judge(ABC):
    """Subclasses set ``kind`` and implement ``judge_batch``.

    ``name`` is the configured judge's name (from its YAML), which is the key under ``judgments``
    in samples.jsonl. A judge that fails on one item returns ``Judgment(error=...)`` for that item;
    it never drops it.
    """

    kind: ClassVar[str]
    needs_references: ClassVar[bool] = False
    labels: tuple[str, ...] = ()  # every label the judge can give (empty: not fixed in advance, e.g. an LLM's verdict words)
    batch_size: int = 32

    def __init__(self, name: str | None = None, **params: Any) -> None:
        self.name = name or self.kind
        self.params = params

    @abstractmethod
    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        """One judgment per item, in order."""

    def judge(self, items: list[JudgeInput]) -> list[Judgment]:
        """Judge all items in batches of ``batch_size``; items lacking needed references get an error."""
        out: list[Judgment] = [Judgment()] * len(items)
        todo = []
        for i, it in enumerate(items):
            if self.needs_references and not it.references:
                out[i] = Judgment(error=f"judge {self.name!r} needs references and the sample has none")
            else:
                todo.append(i)
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            try:
                res = self.judge_batch([items[i] for i in idx])
                if len(res) != len(idx):
                    raise RuntimeError(f"returned {len(res)} judgments for {len(idx)} items")
            except Exception as exc:  # keep the samples, record why
                res = [Judgment(error=error_message(exc)) for _ in idx]
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def load(self) -> None:
        """Load the judge's models now, so a missing or broken one stops a run before it starts (UsageError)."""

    def close(self) -> None:
        """Release models or connections."""
