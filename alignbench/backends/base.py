"""The backend interface and model-spec parsing (DESIGN §3, "Model SPEC")."""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from alignbench.errors import UsageError
from alignbench.registry import backends
from alignbench.types import Generation, GenerationParams, GenerationRequest, Loglikelihood, LoglikelihoodRequest


@dataclass(frozen=True)
class BackendOptions:
    """Run-level options every backend may honour."""

    batch_size: int | str = "auto"  # int or "auto"
    concurrency: int = 8
    seed: int = 0


class Backend(ABC):
    """A model that answers generation and log-likelihood requests, in batches.

    Subclasses set ``name``, take ``target`` (the part after ``BACKEND:``) and ``--model-args`` as
    keyword arguments, and return results in the order of the requests.
    """

    name: ClassVar[str]
    supports_loglikelihood: ClassVar[bool] = False
    requires_target: ClassVar[bool] = True
    # Whether a result depends only on the request's content (prompt, parameters), so the generation cache and
    # in-run de-duplication may serve it; False for backends keyed by (task, sample id), such as replay.
    cacheable: ClassVar[bool] = True
    # --model-args that change how the backend runs but never what it answers (threads, timeouts, retries);
    # ``eval --resume`` lets them differ from the stored run.
    runtime_args: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, target: str, options: BackendOptions | None = None, **model_args: Any) -> None:
        self.target = target
        self.options = options or BackendOptions()
        self.model_args = model_args

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Generate one response per request."""

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        raise UsageError(f"backend {self.name!r} cannot compute log-likelihoods; use a multiple-choice-capable backend (hf, lm_eval, openai completions)")

    def decoding_fields(self, params: GenerationParams) -> dict[str, Any]:
        """Every decoding setting the backend applies for ``params``, as sent (run.json records it per task)."""
        return params.as_dict()

    def fingerprint(self) -> dict[str, Any]:
        """Identifies the model for provenance and the cache: ``{"id": ..., "hash": ...}``."""
        blob = json.dumps({"backend": self.name, "target": self.target, "args": self.model_args}, sort_keys=True, default=str)
        return {"id": f"{self.name}:{self.target}", "hash": hashlib.sha256(blob.encode()).hexdigest()[:16]}

    def close(self) -> None:
        """Release resources (sessions, servers, GPU memory)."""


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"hf:Qwen/Qwen2.5-0.5B"`` -> ``("hf", "Qwen/Qwen2.5-0.5B")``; ``"default"`` -> ``("default", "")``."""
    if not spec or not spec.strip():
        raise UsageError("--model is empty; expected BACKEND:TARGET, e.g. hf:Qwen/Qwen2.5-0.5B-Instruct or default")
    name, sep, target = spec.partition(":")
    return name.strip(), target.strip()


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            v = cast(value)
        except ValueError:
            continue
        if not math.isfinite(v):
            raise UsageError(f"--model-args: {value!r} is not a finite number")
        return v
    return value


def parse_model_args(text: str | None) -> dict[str, Any]:
    """``"dtype=float32,device=cpu"`` -> ``{"dtype": "float32", "device": "cpu"}`` (numbers and booleans typed)."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--model-args: expected key=value, got {part!r}")
        out[key.strip()] = _coerce(value.strip())
    return out


def load_backend(spec: str, model_args: dict[str, Any] | None = None, options: BackendOptions | None = None) -> Backend:
    """Build the backend named by ``spec`` (``BACKEND:TARGET``)."""
    name, target = parse_model_spec(spec)
    cls = backends.get(name)
    if cls.requires_target and not target:
        raise UsageError(f"--model {spec!r}: backend {name!r} needs a target, e.g. {name}:NAME_OR_PATH")
    check_model_args(cls, name, model_args or {})
    try:
        return cls(target, options=options or BackendOptions(), **(model_args or {}))
    except TypeError as exc:  # a wrong type the backend did not check
        raise UsageError(f"--model-args for {name!r}: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}") from None


def check_model_args(cls: type, name: str, model_args: dict[str, Any]) -> None:
    """An option the backend does not take is a usage error with did-you-mean, before anything loads.

    A backend that passes unknown options on (``**kwargs``: request fields for a server, an lm-eval
    model's own arguments) only refuses a name that is a near miss of one of its own options.
    """
    from alignbench.registry import did_you_mean

    params = inspect.signature(cls.__init__).parameters
    own = [n for n, p in params.items() if n not in ("self", "target", "options")
           and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    passes_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for n, p in params.items() if n != "self")
    for key in model_args:
        if key in own:
            continue
        if not passes_on:
            hint = did_you_mean(key, own) if own else "; it takes none"
            raise UsageError(f"--model-args: backend {name!r} has no option {key!r}{hint}")
        near = difflib.get_close_matches(key, own, n=1, cutoff=0.8)
        if near:
            raise UsageError(f"--model-args: backend {name!r} has no option {key!r}; did you mean {near[0]!r}? "
                             "(other names are passed on unchanged)")
