"""Ranking a response's documents by BM25 against its prompt and response, as OLMoTrace does.

OLMoTrace reranks the documents it retrieved for one response by BM25 relevance, with the user prompt
and the model's response as the query and the retrieved documents as the collection. Scores come from
``bm25s`` with Lucene's BM25 (k1 = 1.5, b = 0.75; idf = ln(1 + (N - n + 0.5) / (n + 0.5)), never
negative on a small collection, unlike Robertson's idf), over the document text kept around each match;
words are TraceAlign's soft tokens.
"""

from __future__ import annotations

from alignbench.trace.words import soft_tokenize

K1 = 1.5
B = 0.75


def bm25_scores(query: str, documents: list[str]) -> list[float]:
    """One BM25 score per document for ``query`` (0.0 for every document when the query has no words)."""
    if not documents:
        return []
    q = soft_tokenize(query)
    docs = [soft_tokenize(d) for d in documents]
    if not q or not any(docs):
        return [0.0] * len(documents)
    import bm25s

    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(docs, show_progress=False)
    vocab = retriever.vocab_dict
    known = [t for t in q if t in vocab]
    if not known:
        return [0.0] * len(documents)
    return [float(s) for s in retriever.get_scores(known)]
