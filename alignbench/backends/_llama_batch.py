"""Batched generation on llama.cpp: many sequences decoded together in one context, one sequence id each.

``llama-cpp-python``'s ``Llama`` decodes one sequence at a time. ``BatchDecoder`` opens a second
context on the same loaded weights with ``n_seq_max`` sequence slots, each with a key/value buffer of its own,
feeds each prompt in (one decode call per prompt, each token tagged with its sequence's id and position:
prompts batched together would round differently from a prompt alone), and then advances all
unfinished sequences by one token per ``llama_decode`` call, so the weights are read
once per step for the whole batch instead of once per sequence.

What goes in and comes out matches ``Llama.create_completion`` / ``create_chat_completion``
token for token: chat prompts are rendered and tokenised by the model's own chat handler (captured
at the point where it would start generating, so the GGUF template and its stop strings are the
ones ``create_chat_completion`` uses), string prompts are tokenised as ``create_completion`` does,
generation stops at an end-of-generation token, at ``max_tokens`` (clipped to the context window) or
at the first stop string in the text, and the text is the detokenised completion cut there.
Temperature 0 is greedy (argmax, the same choice as llama.cpp's greedy sampler); a temperature above
0 samples in numpy with a per-request seed (top_p applied), so sampled texts do not depend on the
batch either, but differ from llama.cpp's own sampler's.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Each sequence gets a key/value buffer of its own (not one shared buffer): its cells then start at 0 as
# on the one-at-a-time path, and its attention sums run in the same order (with a shared buffer the
# other sequences' masked cells shift them and the logits move by up to ~1 on this quantised model).
SEQ_CELLS = 512


@dataclass
class Sequence:
    """One generation: its prompt tokens, limits and sampling; ``tokens``/``text``/``finish`` are filled in."""

    prompt: list[int]
    max_tokens: int
    stop: list[str]
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish: str = ""  # "stop" or "length"

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed) if self.temperature > 0 else None
        self._stops = [s.encode("utf-8") for s in self.stop if s]

    def pick(self, logits: np.ndarray) -> int:
        if self._rng is None:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / self.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        if self.top_p < 1.0:
            order = np.argsort(-p, kind="stable")
            sp = p[order]
            keep = (np.cumsum(sp) - sp) < self.top_p
            q = np.zeros_like(p)
            q[order[keep]] = sp[keep]
            p = q / q.sum()
        return int(self._rng.choice(len(p), p=p))


class _Captured(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class _Recorder:
    """Stands in for ``Llama`` in a chat handler: everything is the real model's, except that
    ``create_completion`` hands back the prompt tokens and stop strings instead of generating."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


def chat_prompt(llm: Any, messages: list[dict[str, Any]], stop: list[str]) -> tuple[list[int], list[str]]:
    """The tokens and stop strings ``llm.create_chat_completion(messages, stop=stop)`` generates from."""
    from llama_cpp import llama_chat_format

    handler = (llm.chat_handler or llm._chat_handlers.get(llm.chat_format)
               or llama_chat_format.get_chat_completion_handler(llm.chat_format))
    try:
        handler(llama=_Recorder(llm), messages=messages, stop=stop or None)
    except _Captured as c:
        prompt = c.kwargs["prompt"]
        tokens = list(prompt) if not isinstance(prompt, str) else text_prompt(llm, prompt)
        s = c.kwargs.get("stop") or []
        return tokens, [s] if isinstance(s, str) else list(s)
    raise RuntimeError("the chat handler did not ask for a completion")


def text_prompt(llm: Any, text: str) -> list[int]:
    """The tokens ``llm.create_completion(text)`` generates from (its BOS / EOS rules)."""
    m = llm._model
    bos = m.token_cls() if m.token_cls() != -1 else llm.token_bos()
    sep = m.token_sep()
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []
    head = [bos] if m.add_bos_token() and bos != -1 else []
    tail = [sep if sep != -1 else llm.token_eos()] if (m.add_eos_token() or sep != -1) else []
    return head + list(tokens) + tail


class BatchDecoder:
    """Up to ``n_seq`` sequences at a time in one llama.cpp context on ``llm``'s weights."""

    def __init__(self, llm: Any, n_seq: int, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        self.llm = llm
        self.n_seq = max(1, min(int(n_seq), int(llama_cpp.llama_max_parallel_sequences())))
        self.n_ctx = int(llm.n_ctx())  # the window of one sequence, as on the one-at-a-time path
        self.seq_size = min(self.n_ctx, SEQ_CELLS)  # key/value cells of each sequence's own buffer
        params = type(llm.context_params).from_buffer_copy(llm.context_params)  # the one-at-a-time context's settings
        params.n_ctx = self.seq_size * self.n_seq
        params.n_batch = params.n_ubatch = min(self.seq_size, 512)
        params.n_seq_max = self.n_seq
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = int(n_threads)
        self.n_batch = int(params.n_batch)
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.n_vocab = int(llm.n_vocab())
        self._vocab = llm._model.vocab

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def fits(self, seq: Sequence) -> bool:
        """Whether the prompt and its new tokens fit a sequence's buffer (else: generate it alone)."""
        return len(seq.prompt) + seq.max_tokens <= self.seq_size

    def waves(self, seqs: list[Sequence]) -> list[list[int]]:
        """Indices of ``seqs`` in groups of at most ``n_seq``, longest prompt first."""
        order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i].prompt), i))
        return [order[k:k + self.n_seq] for k in range(0, len(order), self.n_seq)]

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> dict[int, np.ndarray]:
        """Run ``(seq, position, token, want_logits)`` items; returns ``{seq: logits}`` for those that want them."""
        b = self.batch.batch
        out: dict[int, np.ndarray] = {}
        for start in range(0, len(items), self.n_batch):
            part = items[start:start + self.n_batch]
            for j, (seq, pos, tok, want) in enumerate(part):
                b.token[j] = tok
                b.pos[j] = pos
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = seq
                b.logits[j] = want
            b.n_tokens = len(part)
            self.ctx.decode(self.batch)
            for j, (seq, _, _, want) in enumerate(part):
                if want:
                    ptr = self.ctx.get_logits_ith(j)
                    out[seq] = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)).copy()
        return out

    def run(self, seqs: list[Sequence]) -> None:
        """Generate every sequence (fills ``tokens``, ``text``, ``finish``)."""
        for wave in self.waves(seqs):
            self._run_wave([seqs[i] for i in wave])

    def _run_wave(self, seqs: list[Sequence]) -> None:
        lib = self._lib
        lib.llama_memory_clear(self.ctx.memory, True)
        # Each prompt is its own decode call: prompts of several sequences in one batch round differently from a
        # prompt alone (a third of greedy texts then part at a near-tie); the steps after it are batched.
        logits: dict[int, np.ndarray] = {}
        for s, seq in enumerate(seqs):
            logits.update(self._decode([(s, p, t, p == len(seq.prompt) - 1) for p, t in enumerate(seq.prompt)]))
        active = [s for s, seq in enumerate(seqs) if self._start(seq)]
        while active:
            step = []
            for s in active:
                seq = seqs[s]
                tok = seq.pick(logits[s])
                if lib.llama_vocab_is_eog(self._vocab, tok):
                    self._end(seq, "stop")
                    continue
                seq.tokens.append(tok)
                if self._stopped(seq):
                    continue
                if len(seq.tokens) >= seq.max_tokens:
                    self._end(seq, "length")
                    continue
                step.append((s, len(seq.prompt) + len(seq.tokens) - 1, tok, True))
            active = [s for s, _, _, _ in step]
            if step:
                logits = self._decode(step)

    @staticmethod
    def _start(seq: Sequence) -> bool:
        if seq.max_tokens <= 0:
            seq.finish = "length"
            return False
        return True

    def _detok(self, seq: Sequence) -> bytes:
        return bytes(self.llm.detokenize(seq.tokens, prev_tokens=seq.prompt))

    def _stopped(self, seq: Sequence) -> bool:
        if not seq._stops:
            return False
        text = self._detok(seq)
        hit = next((s for s in seq._stops if s in text), None)
        if hit is None:
            return False
        seq.text = text[: text.index(hit)].decode("utf-8", errors="ignore")
        seq.finish = "stop"
        return True

    def _end(self, seq: Sequence, finish: str) -> None:
        seq.text = self._detok(seq).decode("utf-8", errors="ignore")
        seq.finish = finish
