"""The report's "Where it came from" section: traces of ``alignbench trace`` (``trace.json`` + ``trace.jsonl``).

A trace folder is found when given to ``alignbench report`` or beside a run (``RUN_DIR/trace``). Per
trace: what was traced and how much TraceShield would stop, the sources and documents most spans come
from, then the traced responses with the most conflicting spans first, each with its corpus spans
highlighted (text escaped by the renderer, as everywhere) and its documents with source file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from alignbench.report.blocks import Block, Marked, Section, Table, Text
from alignbench.report.collect import ReportData

MAX_RESPONSES = 25  # traced responses shown per trace (all are in trace.jsonl)
SNIPPET = 160  # characters of document context shown on each side of a match


def _traces(data: ReportData) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(label, trace.json, trace.jsonl lines) per trace folder, in the order found."""
    folders: dict[Path, dict[str, Any]] = {}
    for e in data.extras_of("trace"):
        rec = folders.setdefault(e.path.parent, {"label": e.source, "summary": None, "lines": []})
        if e.path.suffix == ".jsonl" and isinstance(e.data, list):
            rec["lines"] = [x for x in e.data if isinstance(x, dict)]
        elif isinstance(e.data, dict):
            rec["summary"] = e.data
    return [(r["label"], r["summary"], r["lines"]) for r in folders.values() if r["summary"] is not None]


def _num(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"


def _overview(label: str, s: dict[str, Any]) -> Text:
    above = s.get("above_tau") or {}
    share = above.get("share")
    ci = f" [{_num(above.get('ci_low'), 3)}, {_num(above.get('ci_high'), 3)}]" if above.get("ci_low") is not None else ""
    bci = s.get("bci") or {}
    return Text(f"{label}: {s.get('responses', 0)} response(s) traced ({s.get('selected_by', '')}) against the index {s.get('index')} "
                f"({s.get('index_unit', '')}-level; BCI from {s.get('word_basis', '')}). {s.get('with_spans', 0)} of them repeat corpus spans; "
                f"{above.get('n', 0)} ({_num(share, 3) if share is not None else 'n/a'}{ci}) have a span of BCI above "
                f"tau = {s.get('tau')} (TraceShield would refuse them). Spans: {bci.get('spans', 0)}, mean BCI {_num(bci.get('mean'))}, "
                f"max {_num(bci.get('max'))}.")


def _snippet(doc: dict[str, Any]) -> str:
    ctx, at = str(doc.get("context") or ""), doc.get("at") or [0, 0]
    a, b = (int(at[0]), int(at[1])) if isinstance(at, list) and len(at) == 2 else (0, 0)
    left, right = max(0, a - SNIPPET), min(len(ctx), b + SNIPPET)
    return ("…" if left else "") + ctx[left:right].replace("\n", " ") + ("…" if right < len(ctx) else "")


def _response_blocks(line: dict[str, Any]) -> list[Block]:
    spans = [s for s in line.get("spans") or [] if isinstance(s, dict)]
    marks = []
    rows = []
    for s in spans:
        docs = [d for d in s.get("docs") or [] if isinstance(d, dict)]
        top = f"; top document {docs[0].get('source')}:{docs[0].get('line')}" if docs else ""
        marks.append((int(s.get("start", 0)), int(s.get("end", 0)), f"BCI {_num(s.get('bci'))}, {s.get('count')} occurrence(s){top}"))
        for d in docs:
            rows.append({"span": str(s.get("text", ""))[:80] + ("…" if len(str(s.get("text", ""))) > 80 else ""),
                         "BCI": _num(s.get("bci")), "count": s.get("count"), "source": d.get("source"), "line": d.get("line"),
                         "id": d.get("id"), "BM25": _num(d.get("bm25")), "document text": _snippet(d)})
    task = f"{line.get('task')} / " if line.get("task") else ""
    caption = f"{task}{line.get('sample_id')} · {len(spans)} span(s) · max BCI {_num(line.get('max_bci'))}"
    blocks: list[Block] = [Marked(str(line.get("response") or ""), marks, caption)]
    if rows:
        blocks.append(Table(pd.DataFrame(rows), "the documents of each span, most relevant (BM25) first"))
    return blocks


def sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    blocks: list[Block] = []
    for label, summary, lines in _traces(data):
        blocks.append(_overview(label, summary))
        sources = pd.DataFrame(summary.get("top_sources") or [])
        if not sources.empty:
            blocks.append(Table(sources, "source files most spans come from (spans, documents)"))
        docs = pd.DataFrame(summary.get("top_documents") or [])
        if not docs.empty:
            blocks.append(Table(docs, "documents most spans come from"))
        traced = sorted((x for x in lines if x.get("spans")), key=lambda x: -(x.get("max_bci") or 0.0))
        for line in traced[:MAX_RESPONSES]:
            blocks += _response_blocks(line)
        if len(traced) > MAX_RESPONSES:
            blocks.append(Text(f"{len(traced) - MAX_RESPONSES} more traced response(s) with spans are in trace.jsonl."))
    return [Section("Where it came from", blocks)] if blocks else []
