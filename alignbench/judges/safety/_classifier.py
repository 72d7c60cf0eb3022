"""What every safety-classifier judge shares: its judge model, its template, greedy calls, strict parsing.

A kind subclasses ``ClassifierJudge`` and says three things: how one (prompt, response) becomes the
classifier's input (``build_prompt``: a string for a completions endpoint, or chat messages for the
model's chat template / a chat endpoint), how its output is read (``parse``: a ``Verdict``, or
``VerdictError`` with the reason), and its labels with their scores (``scores``: 1.0 = harmful or
refusal). Everything else is here:

* the judge model: ``model`` (a backend spec: ``hf:PATH_OR_ID``, ``openai:NAME``, ``lm_eval:...``),
  else the environment variable named by ``model_env``; ``--judge-model NAME=SPEC`` replaces both
  (``alignbench.judges.catalog``). ``model_args`` go to the backend; an ``openai`` judge whose input is
  a string gets ``endpoint=completions`` unless told otherwise. No model, or one that cannot load,
  is a one-line usage error naming ``--judge-model``.
* calls: greedy, ``max_new_tokens``, ``top_logprobs`` alternatives per generated token (0: none),
  through the generation cache unless ``cache: false``.
* judgments: ``label`` from the parsed verdict; ``score`` = the probability-weighted label score when
  the backend returned token log-probabilities (``_probs``), else the label's score;
  ``raw`` = ``{"output": text, "verdict": the classifier's own word, "p": {label: prob} | None, ...}``.
  An output that does not parse is a judgment with ``error`` set, ``label`` None and the output kept
  in ``raw``: counted as a failure, never given a default label.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from alignbench.backends.base import BackendOptions, load_backend, parse_model_spec
from alignbench.backends.cache import cache_setting
from alignbench.errors import AlignbenchError, UsageError
from alignbench.judges._verdicts import VerdictError
from alignbench.judges.base import Judge, error_message
from alignbench.judges.safety._probs import verdict_probabilities
from alignbench.types import Generation, GenerationParams, GenerationRequest, JudgeInput, Judgment, Message, Prompt


def template_dir() -> Path:
    """``templates/safety`` of the built-in judges folder (a checkout's ``judges/``, or the wheel's copy)."""
    from alignbench.paths import judge_dirs

    return judge_dirs()[0] / "templates" / "safety"


@dataclass
class Verdict:
    """A parsed classifier output: our label, the classifier's own word at ``offset`` in the output, extras."""

    label: str
    verdict: str
    offset: int
    extra: dict[str, Any] = field(default_factory=dict)


def read_template(path: Path) -> str:
    """A template file: leading ``## `` lines are its header (source, fields); the rest, less the final newline."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TypeError(f"template {str(path)!r}: cannot read ({exc.strerror or exc})") from None
    lines = text.split("\n")
    start = 0
    while start < len(lines) and lines[start].startswith("## "):
        start += 1
    body = "\n".join(lines[start:])
    return body[:-1] if body.endswith("\n") else body


def fill(template: str, **fields: str) -> str:
    """``template.format(**fields)``, as the classifiers' authors fill their prompts."""
    return template.format(**fields)


def user_turns(prompt: Prompt) -> list[Message]:
    """The conversation without system messages (a string prompt is one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role")), "content": str(m.get("content", ""))} for m in prompt if m.get("role") != "system"]


class ClassifierJudge(Judge):
    kind: ClassVar[str]
    decides: ClassVar[str] = "harm"  # "harm" | "refusal" | "score": which question the label answers
    scores: ClassVar[dict[str, float]] = {"unsafe": 1.0, "safe": 0.0}
    text_input: ClassVar[bool] = True  # the input is one string (a completions endpoint), not chat messages
    default_max_new_tokens: ClassVar[int] = 16
    checks_a_judgment: ClassVar[bool] = False  # a judgment is a judge-model call: ``load`` checks the model instead
    batch_size = 64

    def __init__(self, name: str | None = None, model: str | None = None, model_env: str | None = None,
                 model_args: dict[str, Any] | None = None, published_model: str | None = None,
                 base_dir: str | None = None, max_new_tokens: int | None = None, top_logprobs: int = 5,
                 concurrency: int = 8, cache: bool | str = True, **params: Any) -> None:
        super().__init__(name, **params)
        env = os.environ.get(model_env, "").strip() if model_env else ""
        self.model = env or (str(model).strip() if model else "")
        self.model_env = model_env
        self.published_model = published_model
        if model_args is not None and not isinstance(model_args, dict):
            raise TypeError("'model_args' must be a mapping of backend options")
        self.model_args = dict(model_args or {})
        self.max_new_tokens = int(max_new_tokens or self.default_max_new_tokens)
        if int(top_logprobs) < 0:
            raise TypeError(f"top_logprobs must be >= 0, got {top_logprobs!r}")
        self.gen_params = GenerationParams(max_new_tokens=self.max_new_tokens, temperature=0.0, logprobs=int(top_logprobs))
        self.concurrency = int(concurrency)
        self.cache = cache_setting(cache)
        self._backend: Any = None
        self._cache: Any = None

    @property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]
        """Every label this judge can give (``Judge.labels``)."""
        return tuple(self.scores)

    # setup --------------------------------------------------------------------------------------
    def template(self, name: str) -> str:
        return read_template(template_dir() / name)

    def model_hint(self) -> str:
        example = f"hf:{self.published_model}" if self.published_model else "hf:PATH_OR_HUB_ID"
        env = f" or set {self.model_env}" if self.model_env else ""
        return f"choose it with --judge-model {self.name}={example} (or openai:NAME with --judge-model-args base_url=...){env}"

    def load(self) -> None:
        """Build the judge model's backend now (fail fast); a one-line UsageError naming --judge-model otherwise."""
        if self._backend is not None:
            return
        if not self.model:
            raise UsageError(f"judge {self.name!r} has no judge model; {self.model_hint()}")
        from alignbench.backends.cache import CachedBackend, GenerationCache, cache_file

        args = dict(self.model_args)
        if self.text_input and parse_model_spec(self.model)[0] == "openai":
            args.setdefault("endpoint", "completions")
        try:
            backend = load_backend(self.model, args, BackendOptions(concurrency=self.concurrency))
            backend.fingerprint()  # reads the weights' files, or asks the server for its models: fails here, not mid-run
        except AlignbenchError as exc:
            msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            msg = re.sub(r"^--model(-args)?( \S+)?: ", "", msg)
            raise UsageError(f"judge {self.name!r}: cannot load judge model {self.model!r} ({msg}); "
                             f"choose another with --judge-model {self.name}=SPEC") from None
        self._cache = GenerationCache(path) if (path := cache_file(self.cache)) is not None else None
        self._backend = CachedBackend(backend, self._cache)

    # the kind's three parts -----------------------------------------------------------------------
    def build_prompt(self, it: JudgeInput) -> Prompt:
        raise NotImplementedError

    def parse(self, text: str) -> Verdict:
        raise NotImplementedError

    def words(self, verdict: Verdict) -> dict[str, str]:
        """Each label's word as the classifier writes it at the verdict's place (for its probability)."""
        return {label: label for label in self.scores}

    # judging ------------------------------------------------------------------------------------
    def judge(self, items: list[JudgeInput]) -> list[Judgment]:
        self.load()  # a missing or broken judge model stops the run instead of failing every sample
        return super().judge(items)

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        self.load()
        reqs = [GenerationRequest(prompt=self.build_prompt(it), params=self.gen_params, task=f"judge:{self.name}",
                                  sample_id=it.sample_id) for it in items]
        out = self._backend.generate_each(reqs)  # a request that failed fails only its own judgment
        return [Judgment(error=error_message(g)) if isinstance(g, BaseException) else self.judgment(g) for g in out]

    def judgment(self, gen: Generation) -> Judgment:
        text = gen.text
        try:
            v = self.parse(text)
        except VerdictError as exc:
            return Judgment(raw={"output": text}, error=f"unparsable {self.kind} output: {exc}")
        probs = verdict_probabilities(gen.token_logprobs, text, v.offset, self.words(v))
        score = sum(p * self.scores[label] for label, p in probs.items()) if probs else self.scores[v.label]
        return Judgment(label=v.label, score=score, raw={"output": text, "verdict": v.verdict, "p": probs, **v.extra})

    def close(self) -> None:
        if self._backend is not None:
            self._backend.backend.close()
        if self._cache is not None:
            self._cache.close()
        self._backend = self._cache = None
