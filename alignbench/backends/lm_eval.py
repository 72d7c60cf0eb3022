"""``lm_eval:NAME``: any model of lm-evaluation-harness (``hf``, ``vllm``, ``local-completions``, ...).

TARGET is the lm-eval model name; ``--model-args`` go to that model's constructor unchanged (as
lm-eval's own ``--model_args``), e.g. ``--model lm_eval:hf --model-args pretrained=PATH,dtype=float32``
or ``--model lm_eval:vllm --model-args pretrained=NAME,tensor_parallel_size=2``. ``--batch-size``
is passed as lm-eval's ``batch_size`` unless the model args set it.

Generation calls ``lm.generate_until`` with ``(context, {"until", "max_gen_toks", "do_sample",
"temperature"[, "top_p"]})``; a chat prompt goes through ``lm.apply_chat_template`` when the model
has a chat template, else it is rendered as ``role: content`` lines (as the ``hf`` backend does).
Log-likelihoods call ``lm.loglikelihood`` with ``(context, continuation)`` requests, so the
numbers are lm-eval's own.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from pathlib import Path
from typing import Any

from alignbench.backends._loglik import file_digest
from alignbench.backends.base import Backend, BackendOptions
from alignbench.errors import BackendError, UsageError
from alignbench.registry import backends, did_you_mean
from alignbench.types import Generation, GenerationRequest, Loglikelihood, LoglikelihoodRequest, Message, Prompt

_WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def _render_plain_chat(messages: list[Message]) -> str:
    from alignbench.backends.hf import render_plain_chat

    return render_plain_chat(messages)


def _lm_eval_model_class(name: str) -> Any:
    try:
        from lm_eval.api.registry import get_model, model_registry
    except ImportError:
        raise UsageError("backend 'lm_eval' needs lm-evaluation-harness: pip install lm-eval") from None
    try:
        return get_model(name)
    except (ValueError, KeyError):
        known = list(model_registry.keys())
        raise UsageError(f"--model lm_eval:{name}: unknown lm-eval model {name!r}{did_you_mean(name, known)}") from None


def _arg_hint(cls: Any, message: str) -> str:
    """did-you-mean for "unexpected keyword argument 'x'" against the lm-eval model's own arguments."""
    m = re.search(r"unexpected keyword argument '([^']+)'", message)
    if not m:
        return ""
    try:
        names = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "args", "kwargs")]
    except (TypeError, ValueError):
        return ""
    return did_you_mean(m.group(1), names) if names else ""


@backends.register("lm_eval")
class LMEvalBackend(Backend):
    """adapter over lm-evaluation-harness models (TARGET: hf, vllm, local-completions, ...); model args passed through"""

    name = "lm_eval"
    supports_loglikelihood = True

    def __init__(self, target: str, options: BackendOptions | None = None, **model_args: Any) -> None:
        super().__init__(target, options, **model_args)
        cls = _lm_eval_model_class(target)
        extra: dict[str, Any] = {}
        if isinstance(self.options.batch_size, int) and "batch_size" not in model_args:
            extra["batch_size"] = self.options.batch_size
        try:
            self.lm = cls.create_from_arg_obj(dict(model_args), extra)
        except TypeError as exc:
            raise UsageError(f"--model-args for lm_eval:{target}: {str(exc).splitlines()[0]}{_arg_hint(cls, str(exc))}") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"lm_eval:{target}: cannot load the model ({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})") from None
        self._fingerprint: dict[str, Any] | None = None
        self._chat_ok: bool | None = None

    # prompts ------------------------------------------------------------------------------------
    def _has_chat_template(self) -> bool:
        if self._chat_ok is None:
            try:
                self._chat_ok = bool(self.lm.chat_template(True))
            except Exception:  # models without chat support raise NotImplementedError or similar
                self._chat_ok = False
        return self._chat_ok

    def render(self, prompt: Prompt) -> str:
        """The context string lm-eval gets: chat prompts through the model's chat template if any."""
        if isinstance(prompt, str):
            return prompt
        if self._has_chat_template():
            try:
                return self.lm.apply_chat_template(list(prompt), add_generation_prompt=True)
            except NotImplementedError:
                pass
        return _render_plain_chat(list(prompt))

    # requests -----------------------------------------------------------------------------------
    @staticmethod
    def _instances(kind: str, args: list[tuple[Any, ...]]) -> list[Any]:
        from lm_eval.api.instance import Instance

        return [Instance(request_type=kind, doc={}, arguments=a, idx=0, metadata=(None, i, None)) for i, a in enumerate(args)]

    def _call(self, method: str, instances: list[Any]) -> list[Any]:
        fn = getattr(self.lm, method)
        kwargs = {"disable_tqdm": True} if "disable_tqdm" in inspect.signature(fn).parameters else {}
        try:
            out = fn(instances, **kwargs)
        except (RuntimeError, OSError, ConnectionError) as exc:
            raise BackendError(f"lm_eval:{self.target}: {method} failed ({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})") from None
        if len(out) != len(instances):
            raise BackendError(f"lm_eval:{self.target}: {method} returned {len(out)} results for {len(instances)} requests")
        return list(out)

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        args = []
        for r in requests:
            p = r.params
            kw: dict[str, Any] = {"until": list(p.stop), "max_gen_toks": p.max_new_tokens,
                                  "do_sample": p.temperature > 0, "temperature": p.temperature}
            if p.temperature > 0 and p.top_p < 1.0:
                kw["top_p"] = p.top_p
            args.append((self.render(r.prompt), kw))
        t0 = time.time()
        texts = self._call("generate_until", self._instances("generate_until", args))
        per = (time.time() - t0) / max(len(requests), 1)
        return [Generation(text=str(t), latency_s=per) for t in texts]

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        args = [(r.context, r.continuation) for r in requests]
        out = self._call("loglikelihood", self._instances("loglikelihood", args))
        encode = getattr(self.lm, "_encode_pair", None)
        results = []
        for r, (lp, greedy) in zip(requests, out):
            n = 0
            if callable(encode):
                try:
                    n = len(encode(r.context, r.continuation)[1])
                except Exception:
                    n = 0
            results.append(Loglikelihood(logprob=float(lp), is_greedy=bool(greedy), num_tokens=n))
        return results

    # provenance ---------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """Hash of the lm-eval model name, its args and, for a local model folder, its weight files."""
        if self._fingerprint is None:
            parts = [json.dumps({"target": self.target, "args": self.model_args}, sort_keys=True, default=str)]
            for key in ("pretrained", "model", "path"):
                folder = Path(str(self.model_args.get(key, ""))).expanduser() if self.model_args.get(key) else None
                if folder is not None and folder.is_dir():
                    for f in sorted(folder.iterdir()):
                        if f.is_file() and (f.name.endswith(_WEIGHTS) or f.name == "config.json"):
                            parts.append(file_digest(f))
            digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
            self._fingerprint = {"id": f"lm_eval:{self.target}", "hash": digest}
        return dict(self._fingerprint)

    def close(self) -> None:
        self.lm = None
