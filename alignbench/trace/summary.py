"""``trace.json``: what a trace found, over all traced responses.

* ``responses``: responses traced; ``with_spans``: those with at least one span;
* ``above_tau``: responses whose largest span BCI exceeds ``tau`` (TraceShield would refuse them):
  ``n``, ``share`` of the traced responses, and its 95% Wilson interval;
* ``bci``: the mean and the largest BCI over all spans, and the number of spans;
* ``top_documents``: the documents cited by most spans (``spans``: how many), with source, line and id;
* ``top_sources``: the source files cited by most spans, with the number of their documents cited.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from alignbench.stats.intervals import wilson_ci

TOP = 20


def max_bci(spans: list[dict[str, Any]]) -> float | None:
    return max((float(s["bci"]) for s in spans), default=None)


def summarize(lines: list[dict[str, Any]], tau: float, top: int = TOP) -> dict[str, Any]:
    n = len(lines)
    bcis = [float(s["bci"]) for line in lines for s in line["spans"]]
    above = sum(1 for line in lines if (max_bci(line["spans"]) or 0.0) > tau)
    low, high = wilson_ci(above, n) if n else (None, None)
    doc_spans: Counter[int] = Counter()
    doc_info: dict[int, dict[str, Any]] = {}
    source_spans: Counter[str] = Counter()
    source_docs: dict[str, set[int]] = {}
    for line in lines:
        for span in line["spans"]:
            seen_sources = set()
            for d in span["docs"]:
                doc_spans[d["doc"]] += 1
                doc_info.setdefault(d["doc"], {"doc": d["doc"], "source": d["source"], "line": d["line"], "id": d["id"]})
                src = d["source"] if d["source"] is not None else "(unknown)"
                source_docs.setdefault(src, set()).add(d["doc"])
                seen_sources.add(src)
            for src in seen_sources:
                source_spans[src] += 1
    return {
        "responses": n,
        "with_spans": sum(1 for line in lines if line["spans"]),
        "tau": tau,
        "above_tau": {"n": above, "share": above / n if n else None, "ci_low": low, "ci_high": high},
        "bci": {"spans": len(bcis), "mean": sum(bcis) / len(bcis) if bcis else None, "max": max(bcis) if bcis else None},
        "top_documents": [{**doc_info[d], "spans": c} for d, c in sorted(doc_spans.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
        "top_sources": [{"source": s, "spans": c, "documents": len(source_docs[s])}
                        for s, c in sorted(source_spans.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
    }
