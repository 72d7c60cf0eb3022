"""Words as TraceAlign's soft tokenizer splits them, their corpus frequencies, and the Belief Conflict Index.

TraceAlign (Das et al. 2025) scores a span s by its Belief Conflict Index

    BCI(s) = sum over the words w of s of -ln P_train(w)

with words from its soft tokenizer (``re.findall(r"\\w+|[^\\w\\s]", text.lower())``: runs of word
characters and single punctuation marks, lower-cased), ``P_train(w)`` the word's share of all words of
the training corpus, and 1e-9 for a word the corpus never has. The authors' code (``bci.py``) takes
``-log(p + 1e-12)``; this is the paper's ``-ln p``.

An index built by ``alignbench trace index`` holds the word counts of its whole corpus in
``words.sqlite`` (one row per distinct word); ``WordCounts`` reads them.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from alignbench.errors import UsageError

SOFT_TOKEN = re.compile(r"\w+|[^\w\s]")
UNSEEN_PROB = 1e-9
WORDS_FILE = "words.sqlite"


def soft_tokenize(text: str) -> list[str]:
    """TraceAlign's ``soft_tokenize``: word-character runs and single punctuation marks of the lower-cased text."""
    return SOFT_TOKEN.findall(text.lower())


def bci(words: Iterable[str], probs: dict[str, float]) -> float:
    """Sum of -ln P_train(w) over ``words``; a word missing from ``probs`` (or with probability 0) counts as 1e-9."""
    total = 0.0
    for w in words:
        p = probs.get(w) or UNSEEN_PROB
        total -= math.log(p)
    return total


def write_word_counts(path: Path, counts: Counter[str]) -> tuple[int, int]:
    """Write ``counts`` to the SQLite file ``path``; returns (distinct words, total words)."""
    total = sum(counts.values())
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE words (word TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID")
        con.execute("CREATE TABLE totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        con.executemany("INSERT INTO words VALUES (?, ?)", counts.items())
        con.executemany("INSERT INTO totals VALUES (?, ?)", [("words", total), ("distinct", len(counts))])
        con.commit()
    finally:
        con.close()
    return len(counts), total


class WordCounts:
    """The word counts of an index's corpus (``words.sqlite``), read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            rows = dict(self._con.execute("SELECT name, value FROM totals").fetchall())
        except sqlite3.Error as exc:
            raise UsageError(f"{path}: not a word-count file of a trace index ({exc})") from None
        if "words" not in rows:
            raise UsageError(f"{path}: no word total (truncated or not a trace index file)")
        self.total = int(rows["words"])
        self.distinct = int(rows.get("distinct", 0))

    def counts(self, words: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(words))
        out: dict[str, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self._con.execute(f"SELECT word, count FROM words WHERE word IN ({marks})", chunk).fetchall())
        return out

    def probs(self, words: Iterable[str]) -> dict[str, float]:
        """P_train of each word (absent: not seen in the corpus)."""
        return {w: c / self.total for w, c in self.counts(words).items() if c > 0 and self.total > 0}

    def close(self) -> None:
        self._con.close()
