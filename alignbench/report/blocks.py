"""The pieces a report document is made of, independent of format (``render`` turns them into HTML or Markdown).

Every string in a block is plain text (model output included): renderers escape it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import pandas as pd


@dataclass
class Text:
    text: str
    style: str = ""  # "" or "headline" (the report's lead paragraph)


@dataclass
class Table:
    df: pd.DataFrame  # cells are shown as text; the index is shown as leading columns
    caption: str = ""
    small: list[bool] | None = None  # per row: marked as too few samples to read much into
    note: str = ""  # a footnote under the table
    wide: bool = False  # many short cells: keep each on one line, scroll sideways


@dataclass
class Image:
    name: str  # file-name friendly id, unique in the document
    png: bytes
    caption: str = ""


@dataclass
class Examples:
    df: pd.DataFrame  # columns run, outcome, task, sample_id, category, prompt, response (untrusted text)
    caption: str = ""
    collapsed: bool = False  # HTML: folded away under its caption


@dataclass
class Browser:
    """Every sample of every run, browsable in the HTML report (``alignbench.report.browser``)."""

    payload: dict[str, Any]
    n_samples: int


@dataclass
class Marked:
    """A text shown verbatim with some of its ranges highlighted (e.g. corpus spans in a response)."""

    text: str
    marks: list[tuple[int, int, str]]  # [start, end) character offsets into ``text``, and a note on the range
    caption: str = ""


Block = Union[Text, Table, Image, Examples, Browser, Marked]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section]
    plots_omitted: bool = False  # built without figures (nowhere to put them)
