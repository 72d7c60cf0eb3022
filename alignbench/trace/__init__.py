"""Where a response came from: verbatim spans of a training corpus, their Belief Conflict Index, their documents.

The engine of ``alignbench trace`` and of the ``trace_shield`` judge (TraceAlign's TraceShield):

* ``corpus``: reading a corpus (JSONL, JSON, CSV/TSV, parquet, text files or folders, ``.gz``; a hub dataset);
* ``build``: an index of it in infini-gram's on-disk layout (suffix arrays by infini-gram's indexer, or
  pydivsufsort where that cannot serve), with ``index.json`` and the corpus's word counts;
* ``layout``: the files of an index and their checks; ``engine``: an open index (infini-gram's engine),
  byte-level or token-level (``units``), and its documents;
* ``spans``: OLMoTrace's span selection; ``words``: TraceAlign's soft tokens and BCI; ``bm25``: document
  ranking; ``tracer``: one response traced; ``summary``: ``trace.json``.

The ``infini-gram`` package is an extra (``pip install 'alignbench[trace]'``); nothing here imports it
until an index is built or opened (``deps.require_infini_gram`` says how to install it).
"""
