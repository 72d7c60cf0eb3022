"""Tracing one response: its verbatim corpus spans, their BCI, and the documents they come from.

``trace_response`` returns the spans of one line of ``trace.jsonl``: each ``{text, start, end, count, bci,
docs}`` with ``start``/``end`` character offsets into the response, ``count`` the span's occurrences in
the corpus, and ``docs`` up to ``TraceSettings.docs`` documents that hold it, ranked by BM25 against the
prompt and response (``alignbench.trace.bm25``): ``{doc, source, line, id, context, at, bm25}`` with the
document's index, source file, 1-based line and id-field value, the text around the match and the
match's offsets in that text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignbench.trace.bm25 import bm25_scores
from alignbench.trace.engine import DocHit, TraceIndex
from alignbench.trace.spans import Span, keep_rarest, maximal_spans, score
from alignbench.trace.words import soft_tokenize

KEEP = ("rarest", "all")


@dataclass
class TraceSettings:
    min_words: int = 8  # TraceAlign's window
    max_count: int = 10  # OLMoTrace's maximum frequency
    keep: str = "rarest"  # rarest: OLMoTrace's ceil(0.05 * L) rarest spans; all: every maximal span
    docs: int = 10  # documents per span (OLMoTrace's 10)

    def as_dict(self) -> dict[str, Any]:
        return {"min_words": self.min_words, "max_count": self.max_count, "keep": self.keep, "docs": self.docs}


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``\\ud83d`` without its pair) replaced by ``?``: one character for one,
    so offsets into the text stay the same."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def find_spans(index: TraceIndex, response: str, settings: TraceSettings) -> tuple[list[Span], Any]:
    """The kept spans of ``response`` with their BCI (no documents), and the encoded response."""
    response = valid_text(response)
    enc = index.encode(response)
    spans = maximal_spans(enc, index.count, settings.min_words, settings.max_count)
    score(spans, index.word_probs([w for s in spans for w in s.words]))
    if settings.keep == "rarest":
        spans = keep_rarest(spans, len(soft_tokenize(response)))
    return spans, enc


def trace_response(index: TraceIndex, prompt: str, response: str, settings: TraceSettings) -> list[dict[str, Any]]:
    prompt, response = valid_text(prompt), valid_text(response)
    spans, enc = find_spans(index, response, settings)
    hits: list[list[DocHit]] = [index.documents(enc.ids[s.units[0]:s.units[1]]) if settings.docs > 0 else [] for s in spans]
    first: dict[int, DocHit] = {}
    for span_hits in hits:
        for h in span_hits:
            first.setdefault(h.doc, h)
    docs = sorted(first)
    scores = dict(zip(docs, bm25_scores(f"{prompt}\n{response}", [first[d].context for d in docs])))
    out = []
    for s, span_hits in zip(spans, hits):
        ranked = sorted(span_hits, key=lambda h: (-scores[h.doc], h.doc))[:settings.docs]
        out.append({"text": s.text, "start": s.start, "end": s.end, "count": s.count, "bci": round(s.bci, 6),
                    "docs": [{"doc": h.doc, "source": h.source, "line": h.line, "id": h.id, "context": h.context,
                              "at": list(h.at), "bm25": round(scores[h.doc], 6)} for h in ranked]})
    return out
