"""An index folder on disk: infini-gram's files, alignbench's ``index.json``, and their checks.

infini-gram's layout (version 4), per shard ``s``:

* ``tokenized.s``: the documents, each preceded by a separator of one token of all 1-bits (``\\xff`` for
  bytes; ``\\xff\\xff`` for 16-bit token ids), units little-endian;
* ``table.s``: the suffix array, one pointer per unit, each ``ceil(log2(size of tokenized.s) / 8)`` bytes
  little-endian (byte offsets into ``tokenized.s``);
* ``offset.s``: the byte offset of every document's separator (8 bytes each);
* ``metadata.s`` / ``metaoff.s``: one JSON line per document (``{"path", "linenum", "metadata"}``) and
  the byte offset of each line.

infini-gram's engine does not check these files (a truncated table silently gives wrong counts), so
``read_layout`` checks every size before the engine opens them: a missing, truncated or foreign file is
a one-line ``UsageError`` naming it.

``index.json`` (written by ``alignbench trace index``) records the corpus, the unit (bytes or tokens
of a tokenizer), the files and their sizes, and the word counts file (``words.sqlite``). A folder
without it is a token-level infini-gram index built elsewhere (the prebuilt Pile, Dolma or RedPajama
indexes): it needs ``--tokenizer``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError

INDEX_FILE = "index.json"
FORMAT = "alignbench-trace-index"
FORMAT_VERSION = 1
INFINI_GRAM_LAYOUT = 4
KINDS = ("tokenized", "table", "offset", "metadata", "metaoff")
_SHARD_FILE = re.compile(r"^(tokenized|table|offset|metadata|metaoff)\.(\d+)$")


def pointer_bytes(ds_size: int) -> int:
    """Bytes per suffix-array pointer for a shard of ``ds_size`` bytes, as infini-gram's indexer computes it."""
    return max(1, math.ceil(math.log2(ds_size) / 8)) if ds_size > 1 else 1


@dataclass
class Layout:
    path: Path
    token_width: int  # 1: UTF-8 bytes; 2 or 4: token ids of ``tokenizer``
    tokenizer: str | None
    shards: int
    units: int  # units in all shards, separators included
    documents: int
    info: dict[str, Any] = field(default_factory=dict)  # index.json ({} for an index built elsewhere)

    @property
    def byte_level(self) -> bool:
        return self.token_width == 1

    @property
    def words_file(self) -> Path | None:
        name = (self.info.get("words") or {}).get("file")
        return self.path / name if name else None


def _read_info(path: Path) -> dict[str, Any]:
    f = path / INDEX_FILE
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{f}: cannot read ({getattr(exc, 'strerror', None) or exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{f}: invalid JSON ({exc.msg}); rebuild the index with alignbench trace index") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise UsageError(f"{f}: not a trace index description (no \"format\": \"{FORMAT}\")")
    if info.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"{f}: index format version {info.get('format_version')!r}; this alignbench reads version {FORMAT_VERSION}: "
                         "rebuild the index with alignbench trace index")
    if info.get("infini_gram_layout") != INFINI_GRAM_LAYOUT or info.get("token_width") not in (1, 2, 4):
        raise UsageError(f"{f}: infini-gram layout {info.get('infini_gram_layout')!r} with token width {info.get('token_width')!r}; "
                         f"this alignbench reads layout {INFINI_GRAM_LAYOUT} with width 1, 2 or 4")
    return info


def _shard_files(path: Path) -> dict[str, dict[str, Path]]:
    """Shard suffix -> its files, in the order infini-gram's engine reads the shards (sorted file names)."""
    shards: dict[str, dict[str, Path]] = {}
    for f in sorted(path.iterdir()):
        m = _SHARD_FILE.match(f.name)
        if m:
            shards.setdefault(m.group(2), {})[m.group(1)] = f
    return dict(sorted(shards.items()))


def check_shard(files: dict[str, Path], width: int, where: Path, shard: str) -> tuple[int, int]:
    """(units, documents) of one shard after checking its files against each other; else a UsageError naming the file."""
    for kind in ("tokenized", "table", "offset"):
        if kind not in files:
            raise UsageError(f"{where / f'{kind}.{shard}'}: missing (index incomplete); rebuild the index")
    if ("metadata" in files) != ("metaoff" in files):
        missing = "metaoff" if "metadata" in files else "metadata"
        raise UsageError(f"{where / f'{missing}.{shard}'}: missing (index incomplete); rebuild the index")
    ds = files["tokenized"].stat().st_size
    if ds == 0 or ds % width:
        raise UsageError(f"{files['tokenized']}: {ds} bytes, not a whole number of {width}-byte units (truncated?); rebuild the index")
    units = ds // width
    want = units * pointer_bytes(ds)
    got = files["table"].stat().st_size
    if got != want:
        raise UsageError(f"{files['table']}: {got} bytes, expected {want} ({units} pointers of {pointer_bytes(ds)} bytes; truncated or "
                         "from another corpus); rebuild the index")
    od = files["offset"].stat().st_size
    if od == 0 or od % 8:
        raise UsageError(f"{files['offset']}: {od} bytes, not a whole number of 8-byte offsets (truncated?); rebuild the index")
    if "metaoff" in files and files["metaoff"].stat().st_size != od:
        raise UsageError(f"{files['metaoff']}: {files['metaoff'].stat().st_size} bytes, expected {od} (one offset per document; "
                         "truncated?); rebuild the index")
    return units, od // 8


def read_layout(path: str | Path, tokenizer: str | None = None, token_width: int | None = None, flag: str = "--index") -> Layout:
    """The checked layout of the index folder ``path`` (see the module docstring)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UsageError(f"{flag} {path}: no such index folder (build one with alignbench trace index)")
    info = _read_info(p) if (p / INDEX_FILE).is_file() else {}
    shards = _shard_files(p)
    if not shards:
        raise UsageError(f"{flag} {path}: no infini-gram index files (tokenized.0, table.0, offset.0)")
    if info:
        width = int(info["token_width"])
        tok = tokenizer or info.get("tokenizer")
        recorded = info.get("shards") or []
        if len(recorded) != len(shards):
            raise UsageError(f"{p / INDEX_FILE}: lists {len(recorded)} shard(s), the folder holds {len(shards)}; rebuild the index")
        for s, files in enumerate(recorded):
            for name, size in files.items():
                f = p / name
                if not f.is_file():
                    raise UsageError(f"{f}: missing (index incomplete); rebuild the index")
                if f.stat().st_size != size:
                    raise UsageError(f"{f}: {f.stat().st_size} bytes, index.json says {size} (truncated or replaced); rebuild the index")
        words = info.get("words") or {}
        if words.get("file") and not (p / words["file"]).is_file():
            raise UsageError(f"{p / words['file']}: missing (index incomplete); rebuild the index")
    else:
        if not tokenizer:
            raise UsageError(f"{flag} {path}: no {INDEX_FILE} (not built by alignbench trace index); an infini-gram token index "
                             "needs --tokenizer (the tokenizer it was built with)")
        width = token_width or 2
        tok = tokenizer
    units = documents = 0
    for suffix, files in shards.items():
        u, d = check_shard(files, width, p, suffix)
        units, documents = units + u, documents + d
    return Layout(p, width, tok, len(shards), units, documents, info)
