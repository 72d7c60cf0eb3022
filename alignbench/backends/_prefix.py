"""Shared-prefix log-likelihood scoring for transformers models (the ``hf`` backend).

Multiple-choice requests repeat their prompt: every choice of a question has the same context, and
every question of a task starts with the same few-shot preamble. Instead of running each
(context + continuation) window in full, the scorer runs every distinct token prefix once and
reuses its key/value cache, in three levels:

1. **preamble**: requests whose contexts share at least ``min_shared`` leading tokens form a
   cluster; the longest prefix common to the cluster is run once (batch of one);
2. **contexts**: the rest of each distinct context is run on top of the preamble cache, several
   contexts per batch (right-padded);
3. **continuations**: the scored tokens of every request (the context's last token and the
   continuation without its last token, exactly the positions whose logits predict the
   continuation) run on top of their context's cache rows, batched. Rows whose context is shorter
   than the batch's longest leave a gap in the cache; the attention mask hides it and the position
   ids continue from the row's own length, so each row sees exactly its own tokens.

The scored windows are the plain path's (``scoring_window``: lm-eval's tokenisation and left
truncation), so only the order of floating-point operations differs: float32 scores agree with the
full computation to ~1e-5 nats. Requests whose context is empty after windowing (an empty context
scores its continuation after one prefix token) take the plain path.

``plan()`` is pure Python (what runs once, what is batched); ``PrefixScorer`` runs a plan on a model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_SHARED = 16  # leading tokens two contexts must share to be run as one preamble


@dataclass
class Group:
    """Requests with one context (the tokens before the first scored position)."""

    context: tuple[int, ...]
    members: list[int] = field(default_factory=list)  # request indices, in request order


@dataclass
class Cluster:
    """Groups whose contexts start with the same ``prefix_len`` tokens (0: nothing shared)."""

    prefix_len: int
    groups: list[Group] = field(default_factory=list)

    @property
    def prefix(self) -> tuple[int, ...]:
        return self.groups[0].context[: self.prefix_len]


def _lcp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan(windows: list[list[int]], n_scored: list[int], min_shared: int = MIN_SHARED) -> tuple[list[Cluster], list[int]]:
    """Clusters of groups for the requests, and the indices that take the plain path.

    ``windows[i]`` is request ``i``'s model input, whose last ``n_scored[i]`` positions are scored.
    Contexts are sorted so that those sharing a preamble are neighbours; a run of neighbours sharing
    ``min_shared`` tokens with the run's first is one cluster; lone contexts share one cluster with
    ``prefix_len`` 0 (their contexts are still run once each, batched).
    """
    groups: dict[tuple[int, ...], Group] = {}
    plain: list[int] = []
    for i, (w, n) in enumerate(zip(windows, n_scored)):
        split = len(w) - n
        if split <= 0:
            plain.append(i)
            continue
        ctx = tuple(w[:split])
        groups.setdefault(ctx, Group(ctx)).members.append(i)
    ordered = sorted(groups.values(), key=lambda g: g.context)
    runs: list[list[Group]] = []
    for g in ordered:
        if runs and _lcp(runs[-1][0].context, g.context) >= min_shared:
            runs[-1].append(g)
        else:
            runs.append([g])
    clusters: list[Cluster] = []
    loose = Cluster(0)
    for run in runs:
        if len(run) == 1:
            loose.groups.append(run[0])
        else:
            clusters.append(Cluster(_lcp(run[0].context, run[-1].context), run))
    if loose.groups:
        clusters.append(loose)
    return clusters, plain


class CacheUnusable(Exception):
    """The model's key/value cache cannot be reused this way (the reason is the message)."""


class PrefixScorer:
    """Runs ``plan()``'s clusters on a transformers causal LM.

    ``run_batches(items, fn)`` is the backend's batching loop (it sets the batch size and halves it
    on out-of-memory); ``batch_size()`` its current size; ``finish(logits, cont)`` turns the logits
    at one request's scored positions into its result.
    """

    def __init__(self, model: Any, pad_id: int, device: Any, run_batches: Callable[[list[Any], Callable[[list[Any]], list[Any]]], list[Any]],
                 batch_size: Callable[[], int], min_shared: int = MIN_SHARED) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.run_batches = run_batches
        self.batch_size = batch_size
        self.min_shared = min_shared
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self._check_config(model.config)

    @staticmethod
    def _check_config(config: Any) -> None:
        cfg = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
        if getattr(cfg, "is_encoder_decoder", False):
            raise CacheUnusable("an encoder-decoder model")
        if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True) is not False:
            raise CacheUnusable("sliding-window attention")
        kinds = set(getattr(cfg, "layer_types", None) or ["full_attention"])
        if kinds != {"full_attention"}:
            raise CacheUnusable(f"layer types {sorted(kinds)}")

    # caches -------------------------------------------------------------------------------------
    @staticmethod
    def _tensors(cache: Any) -> list[tuple[Any, Any]]:
        layers = getattr(cache, "layers", None)
        if layers is not None:
            return [(layer.keys, layer.values) for layer in layers]
        if hasattr(cache, "key_cache"):
            return list(zip(cache.key_cache, cache.value_cache))
        raise CacheUnusable(f"unknown cache type {type(cache).__name__}")

    @staticmethod
    def _cache(pairs: list[tuple[Any, Any]]) -> Any:
        from transformers import DynamicCache

        if hasattr(DynamicCache, "from_legacy_cache"):
            return DynamicCache.from_legacy_cache(tuple(pairs))
        return DynamicCache(pairs)

    def _forward(self, ids: Any, mask: Any, cache: Any = None, positions: Any = None, keep_last: bool = False) -> Any:
        kw: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device), "use_cache": True}
        if cache is not None:
            kw[self.cache_kw] = cache
        if positions is not None:
            kw["position_ids"] = positions.to(self.device)
        if keep_last and self.keep_kw:
            kw[self.keep_kw] = 1
        out = self.model(**kw)
        new = getattr(out, "cache", None)
        if new is None:
            new = getattr(out, "past_key_values", None)
        if new is None:
            raise CacheUnusable("the model returned no key/value cache")
        if isinstance(new, tuple):
            new = self._cache(list(new))
        return out.logits, new

    # running ------------------------------------------------------------------------------------
    def score(self, windows: list[list[int]], n_scored: list[int], clusters: list[Cluster],
              finish: Callable[[Any, int], Any]) -> dict[int, Any]:
        """``{request index: finish(logits at its scored positions, index)}`` for every planned request."""
        torch = self.torch
        out: dict[int, Any] = {}
        with torch.inference_mode():
            for cl in clusters:
                base = None
                if cl.prefix_len:
                    ids = torch.tensor([cl.prefix], dtype=torch.long)
                    _, c0 = self._forward(ids, torch.ones_like(ids), keep_last=True)
                    base = self._tensors(c0)
                groups = sorted(cl.groups, key=lambda g: -len(g.context))

                def contexts(batch: list[Group], base: Any = base, lp: int = cl.prefix_len) -> list[None]:
                    self._contexts(batch, base, lp, windows, n_scored, finish, out)
                    return [None] * len(batch)

                self.run_batches(groups, contexts)
        return out

    def _contexts(self, groups: list[Group], base: list[tuple[Any, Any]] | None, lp: int, windows: list[list[int]],
                  n_scored: list[int], finish: Callable[[Any, int], Any], out: dict[int, Any]) -> None:
        """Level 2 for a batch of groups, then level 3 for their requests."""
        torch = self.torch
        rest = [g.context[lp:] for g in groups]
        width = max(len(r) for r in rest)
        if width == 0:  # only the group whose context is the preamble itself
            c1 = base
        else:
            ids = torch.tensor([list(r) + [self.pad_id] * (width - len(r)) for r in rest], dtype=torch.long)
            mask = torch.tensor([[1] * (lp + len(r)) + [0] * (width - len(r)) for r in rest], dtype=torch.long)
            cache = None
            if base is not None:
                n = len(groups)
                cache = self._cache([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in base])
            _, c = self._forward(ids, mask, cache, keep_last=True)
            c1 = self._tensors(c)
        assert c1 is not None
        rows = [(gi, i) for gi, g in enumerate(groups) for i in g.members]
        lengths = [lp + len(r) for r in rest]  # valid cache tokens of each group's row
        total = lp + width

        def continuations(batch: list[tuple[int, int]]) -> list[None]:
            q = [windows[i][len(windows[i]) - n_scored[i]:] for _, i in batch]
            qw = max(len(x) for x in q)
            ids = torch.tensor([x + [self.pad_id] * (qw - len(x)) for x in q], dtype=torch.long)
            mask = torch.tensor([[1] * lengths[gi] + [0] * (total - lengths[gi]) + [1] * len(x) + [0] * (qw - len(x))
                                 for (gi, _), x in zip(batch, q)], dtype=torch.long)
            pos = torch.tensor([[lengths[gi] + j for j in range(qw)] for gi, _ in batch], dtype=torch.long)
            sel = torch.tensor([gi for gi, _ in batch], dtype=torch.long, device=c1[0][0].device)
            cache = self._cache([(k.index_select(0, sel), v.index_select(0, sel)) for k, v in c1])
            logits, _ = self._forward(ids, mask, cache, positions=pos)
            for row, ((_, i), x) in enumerate(zip(batch, q)):
                out[i] = finish(logits[row, : len(x)], i)
            return [None] * len(batch)

        self.run_batches(rows, continuations)
