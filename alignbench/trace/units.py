"""A response as the units an index holds (UTF-8 bytes or a tokenizer's token ids), with its word boundaries.

OLMoTrace's spans start and end at whole words and stop at a sentence delimiter. Here:

* a word is a run of characters without whitespace; a span may start at a unit where a word starts and
  end at a unit where a word ends (the next character is whitespace, or the text ends). For token ids,
  a token starts a word when its first non-space character follows whitespace (or begins the text), as
  infini-gram's beginning-of-word tokens (``▁word``, ``Ġword``) do;
* the delimiters are ``.`` and the newline (OLMoTrace's ``.`` and ``\\n`` tokens): a span may contain one
  only as its last unit.

``Encoded.char_start`` / ``char_end`` map unit positions at word boundaries back to character offsets of
the text, so a span's ``start`` / ``end`` index the response string itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DELIMITERS = (".", "\n")


@dataclass
class Encoded:
    text: str
    ids: list[int]
    starts: list[int]  # unit positions where a word starts, ascending
    ends: list[int]  # unit positions a span may end before, ascending
    delims: list[int]  # unit positions of delimiters, ascending
    char_start: dict[int, int] = field(default_factory=dict)  # unit position (a start) -> character offset
    char_end: dict[int, int] = field(default_factory=dict)  # unit position (an end) -> character offset


def _word_bounds(text: str) -> tuple[list[int], list[int]]:
    """Character offsets where words start, and where they end (exclusive)."""
    starts, ends = [], []
    prev_space = True
    for i, c in enumerate(text):
        space = c.isspace()
        if not space and prev_space:
            starts.append(i)
        if space and not prev_space:
            ends.append(i)
        prev_space = space
    if text and not prev_space:
        ends.append(len(text))
    return starts, ends


class ByteUnits:
    """UTF-8 bytes (an index built without a tokenizer)."""

    width = 1
    sep = 0xFF

    def encode(self, text: str) -> Encoded:
        data = text.encode("utf-8")
        byte_of = [0] * (len(text) + 1)
        pos = 0
        for i, c in enumerate(text):
            byte_of[i] = pos
            pos += 1 if c < "\x80" else len(c.encode("utf-8", errors="surrogatepass"))
        byte_of[len(text)] = pos
        starts, ends = _word_bounds(text)
        delims = [byte_of[i] for i, c in enumerate(text) if c in DELIMITERS]
        return Encoded(text, list(data), [byte_of[i] for i in starts], [byte_of[j] for j in ends], delims,
                       {byte_of[i]: i for i in starts}, {byte_of[j]: j for j in ends})

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def trim(self, ids: list[int], start: int, end: int) -> tuple[int, int]:
        """(start, end) moved inward to whole UTF-8 characters (a context window may cut one at either side)."""
        while start < end and 0x80 <= ids[start] < 0xC0:
            start += 1
        k = end - 1
        while k >= start and k > end - 4 and 0x80 <= ids[k] < 0xC0:
            k -= 1
        if k >= start and ids[k] >= 0xC0:
            need = 2 if ids[k] < 0xE0 else 3 if ids[k] < 0xF0 else 4
            if end - k < need:
                end = k
        return start, end


class TokenUnits:
    """Token ids of a Hugging Face tokenizer (a token-level infini-gram index, e.g. the prebuilt Pile or Dolma ones)."""

    def __init__(self, tokenizer: Any, width: int) -> None:
        self.tok = tokenizer
        self.width = width
        self.sep = (1 << (8 * width)) - 1

    def encode(self, text: str) -> Encoded:
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids: list[int] = list(enc["input_ids"])
        offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
        first: list[int | None] = []  # first non-space character of each token
        last: list[int | None] = []  # one past its last non-space character
        for a, b in offsets:
            piece = text[a:b]
            stripped = piece.lstrip()
            first.append(None if not stripped else a + len(piece) - len(stripped))
            tail = piece.rstrip()
            last.append(None if not tail else a + len(tail))
        starts = [i for i, f in enumerate(first) if f is not None and (f == 0 or text[f - 1].isspace())]
        ends = []
        for r in range(1, len(ids) + 1):
            if last[r - 1] is None:
                continue
            if r == len(ids) or first[r] is None or first[r] == 0 or text[first[r] - 1].isspace():
                ends.append(r)
        delims = [i for i, (a, b) in enumerate(offsets) if text[a:b].strip(" ") == "." or "\n" in text[a:b]]
        return Encoded(text, ids, starts, ends, delims, {i: first[i] for i in starts}, {r: last[r - 1] for r in ends})  # type: ignore[misc]

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def trim(self, ids: list[int], start: int, end: int) -> tuple[int, int]:
        return start, end
