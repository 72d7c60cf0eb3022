"""The spans of a response that occur verbatim in the corpus, chosen as OLMoTrace does.

OLMoTrace (Liu et al. 2025) and infini-gram's ``attribute``, per response:

1. from every position where a word starts, the longest prefix of the rest of the response that occurs
   in the corpus;
2. cut at the first delimiter inside it (``.`` or a newline may only be its last unit), then back to the
   last whole word;
3. kept when it has at least ``min_words`` words and occurs at most ``max_count`` times;
4. maximal: in order of start, a span is kept only when it ends after every span kept before it (so it
   is not inside a longer kept span);
5. the rarest ``ceil(0.05 * L)`` spans are kept, L the response's length in words. OLMoTrace's paper
   ranks by span unigram probability (the product of its units' corpus probabilities, lowest first);
   here the units are TraceAlign's words, so the lowest probability is the highest Belief Conflict Index
   (``BCI = -ln`` of that product). infini-gram's API ranks by length by default; this follows the paper.

Words are TraceAlign's soft tokens (``alignbench.trace.words``) throughout: ``min_words``, L and the BCI
count the same words. Step 1 uses that a match's end never moves left as the start moves right, and finds
each end by doubling then halving its length with the engine's ``find``: a few engine calls per word.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from alignbench.trace.units import Encoded
from alignbench.trace.words import bci, soft_tokenize

SPAN_DENSITY = 0.05  # OLMoTrace: ceil(0.05 * L) spans per response


@dataclass
class Span:
    start: int  # character offsets in the response
    end: int
    text: str
    count: int  # occurrences in the corpus
    units: tuple[int, int]  # unit positions [l, r) in the encoded response
    words: list[str] = field(default_factory=list)
    bci: float = 0.0


def longest_end(ids: list[int], l: int, known: int, count: Callable[[list[int]], int]) -> int:
    """The largest ``r`` such that ``ids[l:r]`` occurs, given that ``ids[l:known]`` occurs (``known >= l``)."""
    n = len(ids)
    lo, hi, step = known, None, 1
    while lo < n:
        cand = min(n, lo + step)
        if count(ids[l:cand]) > 0:
            lo = cand
            step *= 2
        else:
            hi = cand
            break
    if hi is None:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(ids[l:mid]) > 0:
            lo = mid
        else:
            hi = mid
    return lo


def maximal_spans(enc: Encoded, count: Callable[[list[int]], int], min_words: int, max_count: int) -> list[Span]:
    """Steps 1-4 of the module docstring, in order of start."""
    ids, out = enc.ids, []
    reach = 0  # the longest match end found so far (valid for every later start)
    last_r = 0
    for l in enc.starts:
        reach = longest_end(ids, l, max(reach, l), count)
        r = reach
        cut = bisect.bisect_left(enc.delims, l)
        if cut < len(enc.delims) and enc.delims[cut] < r - 1:
            r = enc.delims[cut] + 1
        k = bisect.bisect_right(enc.ends, r) - 1
        if k < 0 or enc.ends[k] <= l:
            continue
        r = enc.ends[k]
        start, end = enc.char_start[l], enc.char_end[r]
        words = soft_tokenize(enc.text[start:end])
        if len(words) < min_words:
            continue
        c = count(ids[l:r])
        if c > max_count or c == 0:
            continue
        if r > last_r:
            out.append(Span(start, end, enc.text[start:end], c, (l, r), words))
            last_r = r
    return out


def score(spans: list[Span], probs: dict[str, float]) -> None:
    for s in spans:
        s.bci = bci(s.words, probs)


def keep_rarest(spans: list[Span], response_words: int, density: float = SPAN_DENSITY) -> list[Span]:
    """The ``ceil(density * response_words)`` spans of highest BCI (lowest unigram probability), in order of start."""
    k = math.ceil(density * response_words)
    chosen = sorted(spans, key=lambda s: (-s.bci, s.start))[:k]
    return sorted(chosen, key=lambda s: s.start)
