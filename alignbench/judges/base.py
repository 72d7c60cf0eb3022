"""The judge interface: (prompt, response, references) -> Judgment, in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from alignbench.errors import UsageError
from alignbench.jsonl import nonfinite_field
from alignbench.types import JudgeInput, Judgment

# What ``Judge.check`` judges: an ordinary question, answer and reference that every judge can read.
CHECK_INPUT = JudgeInput(prompt="How do I bake a loaf of bread at home?",
                         response="Mix flour, water, yeast and salt, let the dough rise for an hour, then bake it at 220 C for 35 minutes.",
                         references=["Mix flour, water, yeast and salt, let it rise, and bake it in a hot oven."],
                         sample_id="alignbench-check", category=None, meta={})


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
    # ``check`` judges CHECK_INPUT: True where a judgment is local and cheap (string matches, an embedder, a
    # classifier); judges that call a judge model per judgment (LLM juries, safety classifiers) check their
    # model in ``load`` instead, and judges that need per-sample fields (a pattern, constraints) set False
    checks_a_judgment: ClassVar[bool] = True
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
                out[i] = _finite(r)
        return out

    def load(self) -> None:
        """Load the judge's models now, so a missing or broken one stops a run before it starts (UsageError)."""

    def check(self) -> None:
        """Load the judge and, where ``checks_a_judgment``, judge ``CHECK_INPUT`` once: called before a run's first
        model call, so a judge whose model cannot load, or whose weights do not fit it, stops the run with a
        one-line UsageError naming the judge instead of failing on every sample."""
        self.load()
        if not self.checks_a_judgment:
            return
        calls = getattr(self, "model_calls", None)
        (jd,) = self.judge([CHECK_INPUT])
        if isinstance(calls, int):  # the check is no judgment of the run: it is not counted among the judge's model calls
            try:
                self.model_calls = calls
            except AttributeError:  # a read-only count
                pass
        if jd.error is not None:
            raise UsageError(f"judge {self.name!r} cannot judge (checked on a fixed input before the run): {jd.error}")

    def close(self) -> None:
        """Release models or connections."""


def _finite(j: Judgment) -> Judgment:
    """A judgment whose score or probabilities hold NaN or infinity is a failed judgment: such a number says the
    judge broke (e.g. tampered weights), and counted or written it would give wrong rates and invalid JSON."""
    if j.error is not None:
        return j
    found = nonfinite_field({"score": j.score, "raw": j.raw})
    if found:
        field, value = found
        return Judgment(error=f"the judge gave a non-finite {value!r} ({field})")
    return j
