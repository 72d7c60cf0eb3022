"""An open index: infini-gram's engine over a checked layout, the units of its text, and its documents.

``TraceIndex(path)`` opens an index built by ``alignbench trace index`` (bytes or tokens); with
``tokenizer`` it also opens a token-level infini-gram index built elsewhere. Queries go to infini-gram's
C++ engine (``find``: the suffix-array range of a unit sequence in every shard; ``get_docs_by_ranks_2``:
the document around a match, with its metadata). Prefetching is off, as OLMoTrace runs it for span
finding.

Word probabilities for the Belief Conflict Index come from the index's ``words.sqlite``. An index built
elsewhere has no word counts; there ``P_train(w)`` is approximated by the count of the token sequence of
``" " + w`` over the number of tokens in the index (``word_basis`` says which one a trace used).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.trace.deps import require_infini_gram
from alignbench.trace.layout import Layout, read_layout
from alignbench.trace.units import ByteUnits, Encoded, TokenUnits
from alignbench.trace.words import WordCounts

MAX_OCCURRENCES = 200  # matches of one span whose documents are read (a seeded sample beyond that, as OLMoTrace does)
CONTEXT_BYTES = 500  # document text kept on each side of a match (byte-level index)
CONTEXT_TOKENS = 125  # the same for a token-level index
_DTYPES = {1: "u8", 2: "u16", 4: "u32"}


@dataclass
class DocHit:
    doc: int  # the document's index in the whole index (across shards)
    source: str | None
    line: int | None  # 1-based
    id: Any
    context: str
    at: tuple[int, int]  # the match's character offsets in ``context``


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # not found, offline, not a tokenizer
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UsageError(f"--tokenizer {name}: cannot load it ({first[:300]})") from None
    if not getattr(tok, "is_fast", False):
        raise UsageError(f"--tokenizer {name}: a fast (Rust) tokenizer is needed for character offsets; this one is a slow one")
    return tok


class TraceIndex:
    def __init__(self, path: str | Path, tokenizer: str | None = None, flag: str = "--index") -> None:
        require_infini_gram()
        from infini_gram.engine import InfiniGramEngine

        p = Path(path).expanduser()
        probe = read_layout(p, tokenizer, flag=flag) if (p / "index.json").is_file() or not tokenizer else None
        tok_name = tokenizer or (probe.tokenizer if probe else None)
        tok = _load_tokenizer(tok_name) if tok_name else None
        width = probe.token_width if probe else (2 if len(tok) <= 0xFFFF else 4)
        if probe and probe.byte_level and tokenizer:
            raise UsageError(f"{flag} {path}: a byte-level index (built without a tokenizer); --tokenizer does not apply to it")
        self.layout: Layout = probe if probe else read_layout(p, tok_name, width, flag=flag)
        self.units = ByteUnits() if width == 1 else TokenUnits(tok, width)
        eos = 254 if width == 1 else int(tok.eos_token_id if tok.eos_token_id is not None else 0)
        vocab = 255 if width == 1 else min(len(tok), (1 << (8 * width)) - 1)
        try:
            self._engine = InfiniGramEngine(index_dir=[str(p)], eos_token_id=eos, vocab_size=vocab, version=4,
                                            token_dtype=_DTYPES[width], ds_prefetch_depth=0, sa_prefetch_depth=0, od_prefetch_depth=0)
        except (AssertionError, RuntimeError, TypeError, ValueError) as exc:
            raise UsageError(f"{flag} {path}: infini-gram cannot open it ({exc.__class__.__name__}: {exc})") from None
        self._cpp = self._engine.engine
        words = self.layout.words_file
        self.words = WordCounts(words) if words else None
        self.word_basis = "corpus word counts" if self.words else "token sequence counts (approximate)"
        self.tokens = self.layout.units - self.layout.documents  # units without separators

    @property
    def path(self) -> Path:
        return self.layout.path

    def encode(self, text: str) -> Encoded:
        return self.units.encode(text)

    def find(self, ids: list[int]) -> tuple[int, list[tuple[int, int]]]:
        """(count, [(start rank, end rank) per shard]) of ``ids`` in the index."""
        r = self._cpp.find(input_ids=ids)
        return int(r.cnt), [(int(a), int(b)) for a, b in r.segment_by_shard]

    def count(self, ids: list[int]) -> int:
        return int(self._cpp.find(input_ids=ids).cnt)

    def occurs(self, ids: list[int]) -> bool:
        return self.count(ids) > 0

    def documents(self, ids: list[int], limit: int = MAX_OCCURRENCES) -> list[DocHit]:
        """The documents holding ``ids`` (one hit per document, first match), at most ``limit`` matches read."""
        _, segments = self.find(ids)
        ranks = [(s, r) for s, (a, b) in enumerate(segments) for r in range(a, b)]
        if len(ranks) > limit:
            ranks = sorted(random.Random(42).sample(ranks, limit))
        if not ranks:
            return []
        ctx = CONTEXT_BYTES if self.units.width == 1 else CONTEXT_TOKENS
        results = self._cpp.get_docs_by_ranks_2(requests=[(s, r, len(ids), ctx) for s, r in ranks])
        hits: dict[int, DocHit] = {}
        for res in results:
            doc = int(res.doc_ix)
            if doc in hits:
                continue
            window = list(res.token_ids)
            needle = int(res.needle_offset)
            a, b = self.units.trim(window, 0, len(window))
            a, b = min(a, needle), max(b, min(len(window), needle + len(ids)))
            before = self.units.decode(window[a:needle])
            match = self.units.decode(window[needle:needle + len(ids)])
            after = self.units.decode(window[needle + len(ids):b])
            meta = _metadata(res.metadata)
            linenum = meta.get("linenum")
            hits[doc] = DocHit(doc, meta.get("path"), linenum + 1 if isinstance(linenum, int) else None,
                               (meta.get("metadata") or {}).get("id") if isinstance(meta.get("metadata"), dict) else None,
                               before + match + after, (len(before), len(before) + len(match)))
        return sorted(hits.values(), key=lambda h: h.doc)

    def word_probs(self, words: list[str]) -> dict[str, float]:
        """P_train of each word that the corpus has (see the module docstring)."""
        if self.words is not None:
            return self.words.probs(words)
        out = {}
        for w in set(words):
            ids = self.units.encode(" " + w).ids
            c = self.count(ids) if ids else 0
            if c and self.tokens > 0:
                out[w] = c / self.tokens
        return out

    def close(self) -> None:
        if self.words is not None:
            self.words.close()
        self._cpp = None
        self._engine = None


def _metadata(text: str) -> dict[str, Any]:
    try:
        meta = json.loads(text) if text else {}
    except (json.JSONDecodeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
