"""Reading a training corpus document by document: files, folders, or a hub dataset.

``--corpus PATH[,PATH...]|HUB_ID[:SPLIT]``; a path is a file or a folder (searched recursively, in sorted
order). Formats by extension, each also gzip-compressed (``.gz``):

* ``.jsonl`` / ``.ndjson``: one JSON object per line; ``.json``: a JSON array of objects, or JSON Lines
  (what ``datasets.Dataset.to_json`` writes);
* ``.csv`` / ``.tsv``: a header row naming the fields;
* ``.parquet``: the text and id columns;
* ``.txt`` / ``.md``: the whole file is one document, its id the file name.

A document keeps where it came from: its source file, its line (0-based, infini-gram's ``linenum``: the
line of a JSONL record or of the first line of a CSV row, the record number of a JSON array or a parquet
file or a hub dataset) and the value of its id field (``None`` when the record has none).
Bytes that are not UTF-8 are replaced with U+FFFD and counted (``CorpusStats.invalid_bytes``).
A record without the text field, or whose text is not a string, is a ``UsageError`` naming the file,
the line and the field.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from alignbench.errors import UsageError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
           ".txt": "text", ".md": "text"}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:\S+)?")  # NAME or OWNER/NAME, then :SPLIT
_INVALID = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as decoded with surrogateescape


@dataclass
class Document:
    text: str
    source: str
    linenum: int  # 0-based, as infini-gram's metadata
    id: Any = None


@dataclass
class CorpusStats:
    files: list[dict[str, Any]] = field(default_factory=list)  # path, format, size, sha256, documents
    documents: int = 0
    invalid_bytes: int = 0
    invalid_records: int = 0
    first_invalid: str | None = None  # "FILE line N"
    skipped_files: list[str] = field(default_factory=list)  # files of other types inside a folder


def format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


class _Hashing(io.RawIOBase):
    """A binary file that hashes (sha256) and counts the bytes read through it."""

    def __init__(self, raw: IO[bytes], on_read: Callable[[int], None]) -> None:
        self.raw, self.sha, self.on_read = raw, hashlib.sha256(), on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        if n:
            self.sha.update(memoryview(b)[:n])
            self.on_read(n)
        return n or 0


@dataclass
class FileSource:
    path: Path
    display: str  # the path as the documents name it
    fmt: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class HubSource:
    name: str
    split: str
    display: str


def resolve(spec: str) -> tuple[list[FileSource | HubSource], list[str]]:
    """The sources of ``--corpus`` (comma-separated) and the files skipped inside folders (other types)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise UsageError("--corpus is empty; name files, folders or a hub dataset")
    sources: list[FileSource | HubSource] = []
    skipped: list[str] = []
    for part in parts:
        p = Path(part).expanduser()
        if p.is_file():
            fmt = format_of(p)
            if fmt is None:
                raise UsageError(f"--corpus {part}: unknown file type (use .jsonl, .json, .csv, .tsv, .parquet, .txt or .md, "
                                 "optionally .gz)")
            sources.append(FileSource(p, part, fmt))
        elif p.is_dir():
            found = 0
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if any(seg.startswith(".") for seg in f.relative_to(p).parts):
                    continue
                fmt = format_of(f)
                if fmt is None:
                    skipped.append(str(f))
                    continue
                sources.append(FileSource(f, str(Path(part) / f.relative_to(p)), fmt))
                found += 1
            if not found:
                raise UsageError(f"--corpus {part}: no corpus files in this folder (.jsonl, .json, .csv, .tsv, .parquet, .txt, .md)")
        elif p.exists():
            raise UsageError(f"--corpus {part}: not a file or folder")
        elif _HUB_ID.fullmatch(part) and format_of(Path(part.partition(":")[0])) is None:
            name, _, split = part.partition(":")
            sources.append(HubSource(name, split or "train", part))
        else:
            raise UsageError(f"--corpus {part}: no such file or folder")
    return sources, skipped


def _decode(raw: bytes, where: Callable[[], str], stats: CorpusStats) -> str:
    text = raw.decode("utf-8", errors="surrogateescape")
    text, n = _INVALID.subn("\ufffd", text)
    if n:
        stats.invalid_bytes += n
        stats.invalid_records += 1
        if stats.first_invalid is None:
            stats.first_invalid = where()
    return text


def _text_of(rec: Any, src: FileSource | HubSource, line: int, text_field: str, line_word: str = "line") -> str:
    if not isinstance(rec, dict):
        raise UsageError(f"{src.display}: {line_word} {line}: expected a JSON object, got {type(rec).__name__}")
    if text_field not in rec:
        fields = ", ".join(list(rec)[:8]) or "none"
        raise UsageError(f"{src.display}: {line_word} {line}: no field {text_field!r} (fields: {fields}); pick one with --text-field")
    value = rec[text_field]
    if not isinstance(value, str):
        raise UsageError(f"{src.display}: {line_word} {line}: field {text_field!r} is {type(value).__name__}, not text")
    return value


def _id_of(rec: dict[str, Any], id_field: str) -> Any:
    v = rec.get(id_field)
    return v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v, ensure_ascii=False)


class Corpus:
    """The documents of ``--corpus``, read once in order; ``stats`` fills in as they are read."""

    def __init__(self, spec: str, text_field: str = "text", id_field: str = "id") -> None:
        self.spec, self.text_field, self.id_field = spec, text_field, id_field
        self.sources, skipped = resolve(spec)
        self.stats = CorpusStats(skipped_files=skipped)

    def total_bytes(self) -> int | None:
        if any(isinstance(s, HubSource) for s in self.sources):
            return None
        return sum(s.size for s in self.sources if isinstance(s, FileSource))

    def documents(self, on_read: Callable[[int], None] = lambda n: None) -> Iterator[Document]:
        for src in self.sources:
            if isinstance(src, HubSource):
                yield from self._hub(src)
                continue
            count = 0
            try:
                raw = open(src.path, "rb")
            except OSError as exc:
                raise UsageError(f"{src.display}: cannot read ({exc.strerror or exc})") from None
            with raw:
                hashing = _Hashing(raw, on_read)
                buffered = io.BufferedReader(hashing, 1 << 20)
                stream: IO[bytes] = gzip.GzipFile(fileobj=buffered) if src.path.suffix.lower() == ".gz" else buffered
                try:
                    for doc in self._read(src, stream):
                        count += 1
                        yield doc
                    while stream.read(1 << 20):  # hash every byte of the file, also after the last record
                        pass
                except (OSError, EOFError, gzip.BadGzipFile) as exc:
                    raise UsageError(f"{src.display}: cannot read ({exc.__class__.__name__}: {exc})") from None
            self.stats.files.append({"path": src.display, "format": src.fmt, "size": src.size, "sha256": hashing.sha.hexdigest(),
                                     "documents": count})
            self.stats.documents += count

    def _read(self, src: FileSource, stream: IO[bytes]) -> Iterator[Document]:
        if src.fmt == "jsonl":
            yield from self._jsonl(src, stream)
        elif src.fmt == "json":
            yield from self._json(src, stream)
        elif src.fmt in ("csv", "tsv"):
            yield from self._csv(src, stream)
        elif src.fmt == "parquet":
            yield from self._parquet(src, stream)
        else:
            text = _decode(stream.read(), lambda: f"{src.display} line 1", self.stats)
            yield Document(text, src.display, 0, src.path.name)

    def _jsonl(self, src: FileSource, lines: Iterator[bytes]) -> Iterator[Document]:
        for n, raw in enumerate(lines):
            if not raw.strip():
                continue
            line = _decode(raw, lambda: f"{src.display} line {n + 1}", self.stats)
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{src.display}: line {n + 1}: invalid JSON ({exc.msg})") from None
            yield Document(_text_of(rec, src, n + 1, self.text_field), src.display, n, _id_of(rec, self.id_field))

    def _json(self, src: FileSource, stream: IO[bytes]) -> Iterator[Document]:
        data = stream.read()
        head = data.lstrip()[:1]
        if head != b"[":
            yield from self._jsonl(src, iter(data.splitlines(keepends=True)))
            return
        text = _decode(data, lambda: f"{src.display}", self.stats)
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{src.display}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
        for i, rec in enumerate(rows):
            yield Document(_text_of(rec, src, i + 1, self.text_field, "record"), src.display, i, _id_of(rec, self.id_field))

    def _csv(self, src: FileSource, stream: IO[bytes]) -> Iterator[Document]:
        text_lines = (_decode(raw, lambda n=n: f"{src.display} line {n + 1}", self.stats) for n, raw in enumerate(stream))
        reader = csv.DictReader(text_lines, delimiter="\t" if src.fmt == "tsv" else ",")
        try:
            header = reader.fieldnames
            if not header:
                return
            if self.text_field not in header:
                raise UsageError(f"{src.display}: no column {self.text_field!r} (columns: {', '.join(header[:8])}); pick one with --text-field")
            start = reader.line_num + 1
            for row in reader:
                yield Document(row[self.text_field] or "", src.display, start - 1, row.get(self.id_field) or None)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise UsageError(f"{src.display}: line {reader.line_num}: bad CSV ({exc})") from None

    def _parquet(self, src: FileSource, stream: IO[bytes]) -> Iterator[Document]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(io.BytesIO(stream.read()))
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"{src.display}: not a parquet file ({exc})") from None
        names = pf.schema_arrow.names
        if self.text_field not in names:
            raise UsageError(f"{src.display}: no column {self.text_field!r} (columns: {', '.join(names[:8])}); pick one with --text-field")
        cols = [self.text_field] + ([self.id_field] if self.id_field in names and self.id_field != self.text_field else [])
        i = 0
        for batch in pf.iter_batches(columns=cols):
            for rec in batch.to_pylist():
                yield Document(_text_of(rec, src, i + 1, self.text_field, "row"), src.display, i, _id_of(rec, self.id_field))
                i += 1

    def _hub(self, src: HubSource) -> Iterator[Document]:
        try:
            from datasets import load_dataset

            ds = load_dataset(src.name, split=src.split, streaming=True)
        except Exception as exc:  # offline, unknown name, no such split: one line
            first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise UsageError(f"--corpus {src.display}: no such file or folder, and no hub dataset of that name loads "
                             f"({first[:300]})") from None
        count = 0
        for i, rec in enumerate(ds):
            count += 1
            yield Document(_text_of(rec, src, i + 1, self.text_field, "row"), src.display, i, _id_of(rec, self.id_field))
        self.stats.files.append({"path": src.display, "format": "hub", "size": None, "sha256": None, "documents": count})
        self.stats.documents += count
