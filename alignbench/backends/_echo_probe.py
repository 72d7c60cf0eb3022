"""Checking, once per server, that echoed prompt log-probabilities sit at the right positions.

Multiple-choice scoring sums ``logprobs.token_logprobs`` of the echoed prompt: entry ``i`` must be
``log P(token_i | tokens before i)``. Some servers (llama-cpp-python's ``llama_cpp.server``) report at
each token the distribution that predicts the NEXT token, so every value belongs to the wrong token
and choice log-likelihoods come out an order of magnitude too low, silently. The probe echoes a text
any language model continues predictably and compares each position's top-1 token with the token at
that position and with the one after it: a server whose top-1 tokens line up with the next tokens
(and not with their own) is shifted.
"""

from __future__ import annotations

from typing import Any

PROBE_TEXT = "one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve"
MIN_EVIDENCE = 3  # top-1 hits needed before the probe says anything


def alignment_counts(data: Any) -> tuple[int, int] | None:
    """(positions whose top-1 is their own token, positions whose top-1 is the next token), or None if unknown."""
    try:
        lp = data["choices"][0]["logprobs"]
        tokens, tops = lp["tokens"], lp["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(tokens, list) or not isinstance(tops, list) or len(tokens) != len(tops) or len(tokens) < 3:
        return None
    best = [max(t, key=lambda k: t[k]) if isinstance(t, dict) and t else None for t in tops]
    same = sum(1 for i, b in enumerate(best) if b is not None and b == tokens[i])
    nxt = sum(1 for i, b in enumerate(best[:-1]) if b is not None and b == tokens[i + 1])
    return same, nxt


def has_prompt_logprobs(data: Any) -> bool:
    """Whether the answer carries per-token log-probabilities at all (``logprobs.token_logprobs``)."""
    try:
        return isinstance(data["choices"][0]["logprobs"]["token_logprobs"], list)
    except (KeyError, IndexError, TypeError):
        return False


def is_shifted(data: Any) -> bool:
    """Whether an echo+logprobs completion of PROBE_TEXT shows the one-position shift."""
    counts = alignment_counts(data)
    if counts is None:
        return False
    same, nxt = counts
    return nxt >= MIN_EVIDENCE and nxt > 2 * same


def probe_body(model: str) -> dict[str, Any]:
    return {"model": model, "prompt": PROBE_TEXT, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
