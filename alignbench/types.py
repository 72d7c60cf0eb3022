"""The records that cross module boundaries: samples, model requests, judgments, sample results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Prompt = Union[str, list[Message]]


@dataclass
class Sample:
    """One evaluation item of a task, after the data source's columns were mapped."""

    id: str
    prompt: Prompt
    category: str | None = None
    references: list[str] | None = None
    choices: list[str] | None = None  # multiple choice continuations
    target: Any = None  # gold answer: index, list of correct indices, label
    meta: dict[str, Any] = field(default_factory=dict)  # any other column (e.g. label=harmful|benign)


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: int = 0  # > 0: also return that many most likely tokens at each generated position

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if not self.logprobs:  # absent when unused, so cache keys made before the field existed still match
            d.pop("logprobs")
        return d


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt  # as sent: a string, or a chat conversation that already holds any system message
    params: GenerationParams = GenerationParams()
    system_prompt: str | None = None
    task: str | None = None  # where the request comes from (for replay); not part of the cache key
    sample_id: str | None = None


FINISH_REASONS = ("stop", "length")  # the answer ended by itself (EOS, a stop string) / it hit max_new_tokens


@dataclass
class Generation:
    """One response, with what the backend can tell of its cost: tokens in (prompt) and out, and why it ended."""

    text: str
    cached: bool = False
    latency_s: float = 0.0
    num_tokens: int | None = None  # tokens out (EOS not counted)
    tokens_in: int | None = None  # prompt tokens, as the model saw them (chat template applied)
    finish_reason: str | None = None  # one of FINISH_REASONS, None when the backend cannot tell
    # with GenerationParams.logprobs = k: per generated token {"token": text, "logprob": float | None,
    # "top": {token text: logprob} of the k most likely}; the tokens' texts concatenate to the output's text
    token_logprobs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context) summed over the continuation's tokens."""

    context: str
    continuation: str


@dataclass
class Loglikelihood:
    logprob: float
    is_greedy: bool
    num_tokens: int = 0
    cached: bool = False


@dataclass
class Judgment:
    """What a judge says of one response (DESIGN §4: label, score, raw, error)."""

    label: Any = None
    score: float | None = None
    raw: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score, "raw": self.raw, "error": self.error}


@dataclass
class JudgeInput:
    prompt: Prompt
    response: str
    references: list[str] | None = None
    sample_id: str | None = None
    category: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def prompt_text(prompt: Prompt) -> str:
    """The last user turn of a chat prompt, or the prompt string itself."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")
