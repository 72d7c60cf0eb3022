"""Building an index of a corpus in infini-gram's on-disk layout (``alignbench trace index``).

The documents are written as infini-gram's indexer writes them (``tokenized``/``offset``/``metadata``/
``metaoff`` per shard, see ``alignbench.trace.layout``): UTF-8 bytes by default, or token ids of
``tokenizer``. The suffix array of each shard is built by infini-gram's own indexer (the
``rust_indexing`` program inside the ``infini-gram`` wheel, run with the steps and sizes of the
package's ``build_sa``: make-part, merge, concat). That indexer splits a shard into one part per CPU
and needs every part to be at least its overlap (``hacksize``, 100,000 bytes): on a smaller shard its
table comes out wrong without any error. Such a shard, or a machine where the program cannot run, gets
its suffix array from ``pydivsufsort`` (libdivsufsort) instead, written in the same format, so the
same engine reads it; ``index.json`` names the builder of every shard.

Alongside: ``words.sqlite`` (the corpus's word counts for the Belief Conflict Index, see
``alignbench.trace.words``) and ``index.json``. The index is built in a temporary folder beside
``--output`` and moved into place when complete, so an interrupted build leaves nothing half-made and
an existing index is replaced (``--overwrite``) only by a finished one.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from alignbench import __version__
from alignbench.errors import UsageError
from alignbench.jsonl import write_json
from alignbench.records.lock import writing
from alignbench.trace.corpus import Corpus, FileSource
from alignbench.trace.deps import package_version, require_infini_gram
from alignbench.trace.layout import FORMAT, FORMAT_VERSION, INDEX_FILE, INFINI_GRAM_LAYOUT, pointer_bytes
from alignbench.trace.words import WORDS_FILE, soft_tokenize, write_word_counts

HACK = 100_000  # infini-gram's overlap between suffix-array parts, in bytes (its indexer's default)
DEFAULT_SHARD_BYTES = 1 << 40  # one shard up to 1 TiB of text (infini-gram's pointers are at most 8 bytes)


@dataclass
class BuildOptions:
    corpus: str
    output: str
    text_field: str = "text"
    id_field: str = "id"
    tokenizer: str | None = None
    overwrite: bool = False
    shard_bytes: int = DEFAULT_SHARD_BYTES
    cpus: int | None = None
    progress: bool = True


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _free_memory_gib() -> int:
    try:
        return max(1, int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30 / 2))
    except (ValueError, OSError, AttributeError):
        return 4


class ShardWriter:
    """Appends documents to ``tokenized.s`` / ``offset.s`` / ``metadata.s`` / ``metaoff.s``, opening a new shard
    when the current one would pass ``shard_bytes``."""

    def __init__(self, folder: Path, width: int, shard_bytes: int) -> None:
        self.folder, self.width, self.shard_bytes = folder, width, shard_bytes
        self.sep = b"\xff" * width
        self.shards: list[dict[str, int]] = []
        self._files: dict[str, BinaryIO] = {}
        self._offsets: list[int] = []
        self._metaoffs: list[int] = []
        self._ds = self._mt = 0

    def _open(self) -> None:
        s = len(self.shards)
        self._files = {k: open(self.folder / f"{k}.{s}", "wb") for k in ("tokenized", "metadata")}
        self._offsets, self._metaoffs, self._ds, self._mt = [], [], 0, 0
        self.shards.append({})

    def add(self, data: bytes, meta: bytes) -> None:
        size = len(self.sep) + len(data)
        if not self._files or (self._ds and self._ds + size > self.shard_bytes):
            self._close()
            self._open()
        self._files["tokenized"].write(self.sep)
        self._files["tokenized"].write(data)
        self._files["metadata"].write(meta)
        self._offsets.append(self._ds)
        self._metaoffs.append(self._mt)
        self._ds += size
        self._mt += len(meta)

    def _close(self) -> None:
        if not self._files:
            return
        s = len(self.shards) - 1
        for f in self._files.values():
            f.close()
        (self.folder / f"offset.{s}").write_bytes(np.asarray(self._offsets, dtype="<u8").tobytes())
        (self.folder / f"metaoff.{s}").write_bytes(np.asarray(self._metaoffs, dtype="<u8").tobytes())
        self._files = {}

    def close(self) -> list[str]:
        """Close the last shard; returns the shard suffixes. infini-gram's engine orders shards by file name, so
        with more than ten the numbers are zero-padded (``tokenized.02`` before ``tokenized.10``)."""
        self._close()
        n = len(self.shards)
        width = len(str(n - 1)) if n > 10 else 1
        names = [f"{s:0{width}d}" for s in range(n)]
        if width > 1:
            for s, name in enumerate(names):
                for k in ("tokenized", "metadata", "offset", "metaoff"):
                    os.replace(self.folder / f"{k}.{s}", self.folder / f"{k}.{name}")
        return names


# suffix arrays ----------------------------------------------------------------------------------------

def rust_indexer() -> Path | None:
    """infini-gram's indexing program inside the installed wheel, when it is there and runs on this machine."""
    import infini_gram

    exe = Path(infini_gram.__file__).parent / "rust_indexing"
    if not exe.is_file() or not os.access(exe, os.X_OK):
        return None
    try:
        ok = subprocess.run([str(exe), "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return None
    return exe if ok else None


def _jobs(ds_size: int, width: int, cpus: int, mem_gib: int) -> tuple[int, int]:
    """(total jobs, bytes per job) as infini-gram's ``build_sa`` plans them."""
    batches = 1
    while batches * (mem_gib * 2**30 // (12 if width == 1 else 8)) < ds_size:
        batches *= 2
    total = batches * cpus
    per = ds_size // total
    if per % width:
        per += width - per % width
    return total, per


def _run(args: list[str], step: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{step} exited with {proc.returncode}: {tail[0][:300]}")


def suffix_array_rust(exe: Path, ds_path: Path, sa_path: Path, width: int, cpus: int, mem_gib: int, tmp: Path) -> None:
    """infini-gram's ``build_sa`` steps for one shard (make-part per job, merge, concat), run with its indexer."""
    ds_size = ds_path.stat().st_size
    ratio = pointer_bytes(ds_size)
    total, per = _jobs(ds_size, width, cpus, mem_gib)
    parts, merged = tmp / "parts", tmp / "merged"
    for d in (parts, merged):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    try:
        for start in range(0, total, cpus):
            procs = []
            for i in range(start, min(start + cpus, total)):
                s, e = i * per, min((i + 1) * per + HACK, ds_size)
                procs.append(subprocess.Popen([str(exe), "make-part", "--data-file", str(ds_path), "--parts-dir", str(parts),
                                               "--start-byte", str(s), "--end-byte", str(e), "--ratio", str(ratio),
                                               "--token-width", str(width)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            errors = [p.communicate()[1] for p in procs]
            if any(p.returncode for p in procs):
                tail = next((e for p, e in zip(procs, errors) if p.returncode), b"").decode(errors="replace").strip().splitlines()[-1:]
                raise RuntimeError(f"make-part failed: {(tail or ['no output'])[0][:300]}")
        _run([str(exe), "merge", "--data-file", str(ds_path), "--parts-dir", str(parts), "--merged-dir", str(merged),
              "--num-threads", str(cpus), "--hacksize", str(HACK), "--ratio", str(ratio), "--token-width", str(width)], "merge")
        _run([str(exe), "concat", "--data-file", str(ds_path), "--merged-dir", str(merged), "--merged-file", str(sa_path),
              "--num-threads", str(cpus), "--ratio", str(ratio), "--token-width", str(width)], "concat")
    finally:
        shutil.rmtree(parts, ignore_errors=True)
        shutil.rmtree(merged, ignore_errors=True)


def suffix_array_divsufsort(ds_path: Path, sa_path: Path, width: int) -> None:
    """The same table from libdivsufsort (``pydivsufsort``): the byte suffixes sorted, those at unit boundaries kept."""
    from pydivsufsort import divsufsort

    data = np.fromfile(ds_path, dtype=np.uint8)
    sa = divsufsort(data).astype(np.int64)
    if width > 1:
        sa = sa[sa % width == 0]
    ratio = pointer_bytes(len(data))
    table = sa.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :ratio]
    sa_path.write_bytes(np.ascontiguousarray(table).tobytes())


def build_suffix_array(ds_path: Path, sa_path: Path, width: int, cpus: int, tmp: Path, warn: Callable[[str], None]) -> str:
    """Write ``sa_path`` for the shard ``ds_path``; returns the builder used."""
    ds_size = ds_path.stat().st_size
    mem = _free_memory_gib()
    total, per = _jobs(ds_size, width, cpus, mem)
    exe = rust_indexer()
    if exe is not None and per >= HACK:
        try:
            suffix_array_rust(exe, ds_path, sa_path, width, cpus, mem, tmp)
            return "infini-gram rust_indexing"
        except (RuntimeError, OSError) as exc:
            warn(f"infini-gram's indexer failed on {ds_path.name} ({exc}); building its suffix array with pydivsufsort instead")
    suffix_array_divsufsort(ds_path, sa_path, width)
    return "pydivsufsort"


# the build ----------------------------------------------------------------------------------------------

def _is_index(path: Path) -> bool:
    return (path / INDEX_FILE).is_file() or any(path.glob("tokenized.*"))


def check_output(output: Path, overwrite: bool, corpus: Corpus) -> None:
    if output.exists():
        if not output.is_dir():
            raise UsageError(f"--output {output}: exists and is not a folder")
        if not overwrite:
            raise UsageError(f"--output {output} already exists; pass --overwrite to replace it")
        if any(output.iterdir()) and not _is_index(output):
            raise UsageError(f"--output {output} exists and is not a trace index; refusing to replace it (name another folder)")
    out = output.resolve()
    for src in corpus.sources:
        if isinstance(src, FileSource) and (out == src.path.resolve() or out in src.path.resolve().parents):
            raise UsageError(f"--output {output}: inside the corpus ({src.display}); put the index in another folder")


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # not found, offline, not a tokenizer
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UsageError(f"--tokenizer {name}: cannot load it ({first[:300]})") from None


def _encoder(tokenizer: Any | None) -> tuple[int, Callable[[str], bytes]]:
    """(token width, text -> the units' bytes)."""
    if tokenizer is None:
        return 1, lambda text: text.encode("utf-8")
    width = 2 if len(tokenizer) <= 0xFFFF else 4
    top = (1 << (8 * width)) - 1  # the separator's value: no token may have it
    dtype = "<u2" if width == 2 else "<u4"

    def encode(text: str) -> bytes:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        arr = np.asarray(ids, dtype=np.int64)
        if arr.size and (arr.max() >= top or arr.min() < 0):
            raise UsageError(f"--tokenizer: token id {int(arr.max())} does not fit the index's {8 * width}-bit units")
        return arr.astype(dtype).tobytes()

    return width, encode


def build_index(opts: BuildOptions, warn: Callable[[str], None] = lambda m: print(f"alignbench: warning: {m}", file=sys.stderr)) -> dict[str, Any]:
    """Build the index of ``opts.corpus`` into ``opts.output``; returns what ``index.json`` records."""
    require_infini_gram()
    corpus = Corpus(opts.corpus, opts.text_field, opts.id_field)
    output = Path(opts.output).expanduser()
    check_output(output, opts.overwrite, corpus)  # before the tokenizer loads: a refused output costs nothing
    tokenizer = _load_tokenizer(opts.tokenizer) if opts.tokenizer else None
    width, encode = _encoder(tokenizer)
    cpus = opts.cpus or _cpus()
    t0 = time.perf_counter()
    with writing(output, "--output"):
        check_output(output, opts.overwrite, corpus)  # again under the lock: another build may have finished meanwhile
        tmp = output.parent / f".{output.name}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            info = _build(opts, corpus, tmp, width, encode, cpus, warn)
            info["seconds"] = round(time.perf_counter() - t0, 3)
            write_json(tmp / INDEX_FILE, info)
            _move_into_place(tmp, output)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return info


def _build(opts: BuildOptions, corpus: Corpus, tmp: Path, width: int, encode: Callable[[str], bytes], cpus: int,
           warn: Callable[[str], None]) -> dict[str, Any]:
    from tqdm import tqdm

    show = opts.progress and os.environ.get("ALIGNBENCH_NO_PROGRESS") != "1"
    writer = ShardWriter(tmp, width, opts.shard_bytes)
    words: Counter[str] = Counter()
    units = text_bytes = 0
    with tqdm(total=corpus.total_bytes(), unit="B", unit_scale=True, desc="trace index: reading", file=sys.stderr,
              disable=not show, dynamic_ncols=True) as bar:
        for doc in corpus.documents(bar.update):
            data = encode(doc.text)
            meta = _metadata_line(doc.source, doc.linenum, doc.id)
            writer.add(data, meta)
            words.update(soft_tokenize(doc.text))
            units += len(data) // width
            text_bytes += len(doc.text)
    names = writer.close()
    stats = corpus.stats
    if stats.documents == 0:
        raise UsageError(f"--corpus {opts.corpus}: no documents")
    if text_bytes == 0:
        raise UsageError(f"--corpus {opts.corpus}: field {opts.text_field!r} is empty in every document")
    if stats.invalid_bytes:
        warn(f"{stats.invalid_bytes} byte(s) that are not UTF-8 in {stats.invalid_records} record(s) were replaced with U+FFFD "
             f"(first in {stats.first_invalid})")
    if stats.skipped_files:
        warn(f"{len(stats.skipped_files)} file(s) of other types in the corpus folders were not read (e.g. {stats.skipped_files[0]})")
    builders = []
    for s, name in enumerate(tqdm(names, desc="trace index: suffix arrays", file=sys.stderr, disable=not show, dynamic_ncols=True)):
        t = time.perf_counter()
        builder = build_suffix_array(tmp / f"tokenized.{name}", tmp / f"table.{name}", width, cpus, tmp, warn)
        builders.append({"shard": s, "builder": builder, "seconds": round(time.perf_counter() - t, 3)})
    distinct, total_words = write_word_counts(tmp / WORDS_FILE, words)
    shards = [{f"{k}.{name}": (tmp / f"{k}.{name}").stat().st_size for k in ("tokenized", "table", "offset", "metadata", "metaoff")}
              for name in names]
    tool_versions = {"alignbench": __version__, "infini-gram": package_version("infini-gram"), "python": platform.python_version()}
    if any(b["builder"] == "pydivsufsort" for b in builders):
        tool_versions["pydivsufsort"] = package_version("pydivsufsort")
    if opts.tokenizer:
        tool_versions["transformers"] = package_version("transformers")
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "infini_gram_layout": INFINI_GRAM_LAYOUT,
        "unit": "byte" if width == 1 else "token", "token_width": width, "tokenizer": opts.tokenizer,
        "documents": stats.documents, "units": units, "text_chars": text_bytes, "shards": shards,
        "words": {"file": WORDS_FILE, "distinct": distinct, "total": total_words},
        "corpus": {"spec": opts.corpus, "text_field": opts.text_field, "id_field": opts.id_field, "files": stats.files,
                   "skipped_files": stats.skipped_files},
        "invalid_utf8": {"bytes": stats.invalid_bytes, "records": stats.invalid_records, "first": stats.first_invalid},
        "suffix_arrays": builders, "tools": tool_versions,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _metadata_line(source: str, linenum: int, doc_id: Any) -> bytes:
    import json

    return (json.dumps({"path": source, "linenum": linenum, "metadata": {"id": doc_id}}, ensure_ascii=True) + "\n").encode("ascii")


def _move_into_place(tmp: Path, output: Path) -> None:
    old = None
    if output.exists():
        old = output.parent / f".{output.name}.replaced-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(output, old)
    try:
        os.replace(tmp, output)
    except OSError as exc:
        if old is not None:
            os.replace(old, output)
        raise UsageError(f"--output {output}: cannot move the built index into place ({exc.strerror or exc})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
