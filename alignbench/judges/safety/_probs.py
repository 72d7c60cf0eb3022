"""The probability of a classifier's verdict, read from the log-probabilities of its output tokens.

The classifier wrote its verdict word (``unsafe``, ``Yes``, ``2_full_refusal``...) at a known place in
its output. At the token that starts that word, the backend gave the k most likely tokens; a token
counts for a label when its text (stripped, lower-cased) begins that label's word and no other
label's word (``un`` counts for ``unsafe``, ``s`` for ``safe``). Each label's probability is its
tokens' mass, renormalised over the labels, as ShieldLM's and StrongREJECT's authors restrict the
softmax to the verdict tokens.
"""

from __future__ import annotations

import math
from typing import Any


def _norm(token: str) -> str:
    return token.replace("\u2581", " ").replace("\u0120", " ").strip().lower()


def token_at(tokens: list[dict[str, Any]], text: str, offset: int) -> int | None:
    """Index of the token whose text covers character ``offset`` of ``text`` (None if the tokens do not spell it)."""
    joined = "".join(str(t["token"]) for t in tokens)
    if not (joined.startswith(text) or text.startswith(joined)):  # the text may end early at a stop string
        return None
    pos = 0
    for i, t in enumerate(tokens):
        if pos <= offset < pos + len(t["token"]):
            return i
        pos += len(t["token"])
    return None


def verdict_probabilities(tokens: list[dict[str, Any]] | None, text: str, offset: int,
                          words: dict[str, str]) -> dict[str, float] | None:
    """``{label: probability}`` of the verdict written at ``offset``, or None when the log-probabilities
    cannot say it (none given, tokens that do not spell the text, or a verdict token that is no label's)."""
    if not tokens:
        return None
    i = token_at(tokens, text, offset)
    if i is None:
        return None
    targets = {label: w.lower() for label, w in words.items()}

    def owner(tok: str) -> str | None:
        t = _norm(tok)
        hits = [label for label, w in targets.items() if t and w.startswith(t)]
        return hits[0] if len(hits) == 1 else None

    top = dict(tokens[i].get("top") or {})
    chosen, lp = tokens[i]["token"], tokens[i].get("logprob")
    if lp is not None:
        top.setdefault(chosen, float(lp))
    if owner(chosen) is None:
        return None
    mass = {label: 0.0 for label in targets}
    for tok, value in top.items():
        label = owner(tok)
        if label is not None and value is not None:
            mass[label] += math.exp(float(value))
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: m / total for label, m in mass.items()}
