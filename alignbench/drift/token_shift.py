"""Token-distribution shift between a base model and its tuned version (URIAL, Lin et al. 2023).

As the authors' analysis (Re-Align/AlignTDS, ``src/logit_analysis.py`` and ``src/compute_dist_diff.py``,
commit 178a262): the tuned model answers each prompt greedily; every token of that answer is then
scored under both models, the tuned model on its own input (the prompt as it renders it, chat
template included) and the base model on the authors' query wrapper
(``# Query: \n ```{query}``` \n\n \n# Answer: \n ```````, their ``--enable_template``), each
plus the answer so far:

* the token's rank in the base model's distribution: rank 1 = *unshifted* (the base model would
  have picked it too), 2-3 = *marginal*, > 3 = *shifted*;
* ``kl``: their KL (``compute_similarity(..., metric="KL")``). Each model keeps its 30 largest
  logits (the logits they save, ``--top_k 30``), each with its text ``tokenizer.decode(id)`` and a
  weight w = softmax over those 30 logits; each model's list becomes a dict keyed by the token's
  *text*, where a text that several ids decode to keeps the weight of its first (highest) id and the
  others are dropped; KL(base || tuned) = sum over the texts in both dicts of
  w_base * ln(w_base / w_tuned) (nats; it can be negative, since the two weight sets are renormalised
  separately and summed over the shared texts only);
* ``kl_id``: the same sum with tokens keyed by id instead of text (two ids that decode alike stay
  apart); it differs from ``kl`` only where a model's top 30 holds two ids with the same text (byte
  tokens of a multi-byte character all decode to U+FFFD, for instance);
* ``kl_full``: alignbench's own, KL(tuned || base) over the whole vocabulary.

The profile pools positions over samples (shares, ``kl_mean`` (the authors' figure), ``kl_id_mean`` and
``kl_full_mean``, with bootstrap CIs over samples), gives the same per answer position
(``by_position``, ``kl_by_position``: the authors find shifts concentrated in the early positions) and
lists the most frequently shifted tokens. Scores come from the backends' ``continuation_logprobs``
(the ``hf`` backend), which re-tokenises the answer text; a position whose token is not the tuned
model's own top choice there (a re-tokenisation artefact, e.g. bytes split differently) was not
chosen greedily by the tuned model, so it is left out and counted in ``n_excluded_positions``.
Both models must share a tokenizer; each model's top tokens are decoded by its own tokenizer
(``token_decoder``), as the authors decode each model's with its own.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from alignbench.errors import UsageError
from alignbench.stats.intervals import metric_value, percentile, resample_indices
from alignbench.types import GenerationParams, GenerationRequest, LoglikelihoodRequest, Prompt, prompt_text

MARGINAL_MAX_RANK = 3  # ranks 2..3 are marginal, above are shifted
SAVED_TOP_K = 30  # logit_analysis.py --top_k default: the logits kept per position
KL_TOP_K = 50  # compute_dist_diff.py "KL" (top_k=50, i.e. every saved token)


def base_query_context(query: str) -> str:
    """The authors' wrapper of the raw query for the base model (logit_analysis.py, --enable_template)."""
    return f"# Query: \n ```{query}``` \n\n \n# Answer: \n ```"


def _by_id(token_id: int) -> int:
    return token_id


def topk_kl(base_row: np.ndarray, tuned_row: np.ndarray, base_key: Callable[[int], Hashable] = _by_id,
            tuned_key: Callable[[int], Hashable] = _by_id, saved: int = SAVED_TOP_K, top_k: int = KL_TOP_K) -> float:
    """compute_dist_diff.py's KL between two next-token rows (log-probs; they differ from logits by a constant).

    Each row keeps its ``saved`` largest entries, weighted by a softmax over those; the first ``top_k`` of
    them, in descending order, become a dict key -> weight in which a key seen twice keeps its first
    weight (``list.index``); the result is sum over keys in both dicts of w_base * ln(w_base / w_tuned).
    ``base_key`` / ``tuned_key`` map a token id to its key: the decoded text for the authors' figure
    (``kl``), the id itself (the default) for ``kl_id``.
    """

    def top(row: np.ndarray, key: Callable[[int], Hashable]) -> dict[Hashable, float]:
        idx = np.argsort(-row, kind="stable")[:saved]
        lp = row[idx].astype(np.float64)
        w = np.exp(lp - lp.max())
        w = w / w.sum()
        out: dict[Hashable, float] = {}
        for i, x in zip(idx[:top_k], w[:top_k]):
            out.setdefault(key(int(i)), float(x))
        return out

    w_b, w_t = top(base_row, base_key), top(tuned_row, tuned_key)
    return float(sum(w_b[k] * np.log(w_b[k] / w_t[k]) for k in w_b if k in w_t and w_b[k] > 0 and w_t[k] > 0))


def token_decoder(backend: Any) -> Callable[[int], str]:
    """token id -> its text, as the authors' ``tokenizer.decode(id)`` gives it (cached).

    A backend's own ``decode_token(id)`` when it has one; else its transformers tokenizer (the ``hf``
    backend, or the ``default`` backend running on transformers); else the ``default`` backend's
    llama.cpp model (``detokenize``, as its ``continuation_logprobs`` decodes tokens).
    """
    own = getattr(backend, "decode_token", None)
    holder = backend if getattr(backend, "tokenizer", None) is not None else getattr(backend, "_fallback", None)
    tok = getattr(holder, "tokenizer", None)

    def by_tokenizer(token_id: int) -> str:
        return str(tok.decode([token_id]))  # type: ignore[union-attr]

    def by_llama(token_id: int) -> str:
        return bytes(backend._scorer().detokenize([token_id])).decode("utf-8", errors="replace")

    if callable(own):
        return functools.lru_cache(maxsize=None)(own)
    if callable(getattr(tok, "decode", None)):
        return functools.lru_cache(maxsize=None)(by_tokenizer)
    if callable(getattr(backend, "_scorer", None)):
        return functools.lru_cache(maxsize=None)(by_llama)
    raise UsageError(f"token-shift: the backend {getattr(backend, 'name', type(backend).__name__)!r} cannot decode token "
                     "ids to text, which the authors' KL keys tokens by; use the hf backend")


@dataclass
class ShiftItem:
    task: str
    sample_id: str
    prompt: Prompt


def supports_token_shift(backend_or_cls: Any) -> bool:
    return callable(getattr(backend_or_cls, "continuation_logprobs", None))


def render_context(backend: Any, prompt: Prompt) -> str:
    """The prompt text exactly as the backend sends it (chat template applied) when it can say so."""
    render = getattr(backend, "render_prompt", None)
    if callable(render):
        return str(render(prompt)[0])
    return prompt if isinstance(prompt, str) else prompt_text(prompt)


def sample_profile(tuned_lp: Any, base_lp: Any, base_text: Callable[[int], str], tuned_text: Callable[[int], str]) -> dict[str, Any]:
    """Per-position base ranks (1-based) and the three KLs for one answer, greedy positions only;
    ``base_text`` / ``tuned_text`` give the text of a token id of each model (``token_decoder``)."""
    ids = np.asarray(tuned_lp.token_ids)
    if base_lp.token_ids.shape != ids.shape or not np.array_equal(base_lp.token_ids, ids):
        raise UsageError("token-shift: the base and tuned models tokenise the answer differently; they must share a tokenizer")
    v = min(tuned_lp.logprobs.shape[1], base_lp.logprobs.shape[1])
    if int(ids.max(initial=0)) >= v:
        raise UsageError("token-shift: the answer holds token ids outside the base model's vocabulary")
    greedy = tuned_lp.ranks() == 0
    base_rank = base_lp.ranks(ids) + 1
    kl_full = tuned_lp.kl(base_lp)
    keep = np.flatnonzero(greedy)
    tokens = list(tuned_lp.tokens) if tuned_lp.tokens else [str(int(t)) for t in ids]
    rows = [(base_lp.logprobs[i, :v], tuned_lp.logprobs[i, :v]) for i in keep]
    kl = [topk_kl(b, t, base_text, tuned_text) for b, t in rows]
    return {"n_tokens": int(len(ids)), "positions": [int(i) for i in keep], "tokens": [tokens[i] for i in keep],
            "token_ids": [int(ids[i]) for i in keep], "base_rank": [int(base_rank[i]) for i in keep],
            "kl": kl, "kl_id": [topk_kl(b, t) for b, t in rows], "kl_full": [float(kl_full[i]) for i in keep]}


def _pooled(num: np.ndarray, den: np.ndarray, seed: int) -> dict[str, Any]:
    """sum(num)/sum(den) over samples, with a percentile bootstrap CI resampling samples."""
    mask = den > 0
    num, den = num[mask], den[mask]
    n = int(den.sum())
    if n == 0:
        return metric_value(float("nan"), None, None, None, 0)
    value = float(num.sum() / den.sum())
    if len(den) > 1:
        idx = resample_indices(len(den), seed)
        lo, hi = percentile(num[idx].sum(axis=1) / den[idx].sum(axis=1))
    else:
        lo = hi = value
    return metric_value(value, None, lo, hi, n)


def summarize_profile(samples: list[dict[str, Any]], seed: int = 0, top_k: int = 20) -> dict[str, Any]:
    """Pooled shares (unshifted / marginal / shifted), mean KL and the most shifted tokens."""
    ranks = [np.asarray(s["base_rank"]) for s in samples]
    n = np.array([len(r) for r in ranks], dtype=float)
    count = lambda f: np.array([float(f(r).sum()) for r in ranks])  # noqa: E731
    shifted_tokens = Counter(t for s in samples for t, r in zip(s["tokens"], s["base_rank"]) if r > MARGINAL_MAX_RANK)
    total_shifted = sum(shifted_tokens.values())
    return {
        "n_samples": len(samples),
        "n_positions": int(n.sum()),
        "n_excluded_positions": int(sum(s["n_tokens"] - len(s["base_rank"]) for s in samples)),
        "unshifted": _pooled(count(lambda r: r == 1), n, seed),
        "marginal": _pooled(count(lambda r: (r >= 2) & (r <= MARGINAL_MAX_RANK)), n, seed),
        "shifted": _pooled(count(lambda r: r > MARGINAL_MAX_RANK), n, seed),
        "kl_mean": _pooled(np.array([float(np.sum(s["kl"])) for s in samples]), n, seed),
        "kl_id_mean": _pooled(np.array([float(np.sum(s.get("kl_id", []))) for s in samples]), n, seed),
        "kl_full_mean": _pooled(np.array([float(np.sum(s.get("kl_full", []))) for s in samples]), n, seed),
        "top_shifted_tokens": [{"token": t, "count": c, "share_of_shifted": c / total_shifted}
                               for t, c in shifted_tokens.most_common(top_k)],
        **by_position(samples),
    }


def by_position(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per answer position (0 = first token): how many samples reach it, the rank-bin shares and the mean KLs."""
    acc: dict[int, list[tuple[int, float, float]]] = {}
    for s in samples:
        for pos, r, kl, full in zip(s["positions"], s["base_rank"], s["kl"], s.get("kl_full") or [float("nan")] * len(s["kl"])):
            acc.setdefault(int(pos), []).append((int(r), float(kl), float(full)))
    rows = []
    for pos in sorted(acc):
        v = acc[pos]
        rows.append({"position": pos, "n": len(v), "unshifted": sum(r == 1 for r, _, _ in v) / len(v),
                     "marginal": sum(2 <= r <= MARGINAL_MAX_RANK for r, _, _ in v) / len(v),
                     "shifted": sum(r > MARGINAL_MAX_RANK for r, _, _ in v) / len(v),
                     "kl_mean": sum(k for _, k, _ in v) / len(v), "kl_full_mean": sum(f for _, _, f in v) / len(v)})
    return {"by_position": rows, "kl_by_position": [r["kl_mean"] for r in rows]}


def token_shift_profile(base: Any, tuned: Any, items: list[ShiftItem], max_new_tokens: int = 64, seed: int = 0,
                        batch_size: int = 4, top_k: int = 20) -> dict[str, Any]:
    """token_shift.json: the profile overall and per task, and every sample's positions."""
    for who, b in (("base", base), ("tuned", tuned)):
        if not supports_token_shift(b):
            raise UsageError(f"token-shift: the {who} backend {getattr(b, 'name', type(b).__name__)!r} cannot score "
                             "full token distributions (continuation_logprobs); use the hf backend")
    base_text, tuned_text = token_decoder(base), token_decoder(tuned)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    samples: list[dict[str, Any]] = []
    skipped: list[str] = []
    split: list[str] = []
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        gens = tuned.generate([GenerationRequest(prompt=it.prompt, params=params, task=it.task, sample_id=it.sample_id) for it in batch])
        todo = [(it, g.text) for it, g in zip(batch, gens) if g.text.strip()]
        skipped += [f"{it.task}/{it.sample_id}" for it, g in zip(batch, gens) if not g.text.strip()]
        if not todo:
            continue
        t_reqs = [LoglikelihoodRequest(context=render_context(tuned, it.prompt), continuation=text) for it, text in todo]
        b_reqs = [LoglikelihoodRequest(context=base_query_context(prompt_text(it.prompt)), continuation=text) for it, text in todo]
        for (it, text), t_r, b_r, t_lp, b_lp in zip(todo, t_reqs, b_reqs, tuned.continuation_logprobs(t_reqs),
                                                    base.continuation_logprobs(b_reqs)):
            t_lp, b_lp = _answer_tokens(t_lp, t_r.context), _answer_tokens(b_lp, b_r.context)
            if len(t_lp.token_ids) != len(b_lp.token_ids) or not np.array_equal(t_lp.token_ids, b_lp.token_ids):
                split.append(f"{it.task}/{it.sample_id}")  # the answer tokenised differently after the two contexts
                continue
            samples.append({"task": it.task, "sample_id": it.sample_id, "response": text, **sample_profile(t_lp, b_lp, base_text, tuned_text)})
    if split and not samples:
        raise UsageError("token-shift: the base and tuned models tokenise the answers differently; they must share a tokenizer")
    out = {"base": _name(base), "tuned": _name(tuned), "max_new_tokens": max_new_tokens,
           "rank_bins": {"unshifted": "base rank 1", "marginal": f"base rank 2-{MARGINAL_MAX_RANK}", "shifted": f"base rank > {MARGINAL_MAX_RANK}"},
           **summarize_profile(samples, seed=seed, top_k=top_k), "skipped_empty": skipped,
           "skipped_tokenization": split, "base_context": "authors' query wrapper", "kl": "top-30 KL(base || tuned), tokens keyed by decoded text (the authors')",
           "kl_id": "top-30 KL(base || tuned), tokens keyed by id", "kl_full": "full-vocabulary KL(tuned || base)"}
    out["by_task"] = {t: summarize_profile([s for s in samples if s["task"] == t], seed=seed, top_k=top_k)
                      for t in dict.fromkeys(s["task"] for s in samples)}
    out["samples"] = samples
    excluded = out["n_excluded_positions"]
    if excluded and excluded > 0.05 * (excluded + out["n_positions"]):
        print(f"alignbench: note: token-shift left out {excluded} answer positions that are not the tuned model's "
              "greedy choice after re-tokenisation", file=sys.stderr)
    return out


def _answer_tokens(lp: Any, context: str) -> Any:
    """``lp`` without the leading tokens that are the context's trailing whitespace (the chat template's
    newline), which lm-eval's tokenisation moves into the continuation: prompt tokens, not answer tokens."""
    moved, text, k = context[len(context.rstrip()):], "", 0
    tokens = list(lp.tokens or [])
    while moved and k < len(tokens) and tokens[k] and moved.startswith(text + tokens[k]):
        text, k = text + tokens[k], k + 1
    return replace(lp, token_ids=lp.token_ids[k:], logprobs=lp.logprobs[k:], tokens=lp.tokens[k:]) if k else lp


def _name(backend: Any) -> str:
    fp = getattr(backend, "fingerprint", None)
    try:
        return str(fp()["id"]) if callable(fp) else type(backend).__name__
    except Exception:  # noqa: BLE001 - a name for display only
        return type(backend).__name__
