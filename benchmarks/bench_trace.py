"""alignbench trace: index build and trace latency on infini-gram vs a plain-Python scan, and memory.

* corpus: generated JSONL (Zipf-distributed words from a 50,000-word vocabulary, ~2 KB documents) of
  ``--corpus-mb`` (default 200) and ``--small-mb`` (default 2) megabytes, cached under the bench folder;
* build: ``alignbench.trace.build.build_index`` on both (reading, word counts, infini-gram's suffix
  array), in MB of corpus per minute; the plain-Python baseline needs no index (its "build" is reading the
  corpus into one string), timed too;
* trace: ``--responses`` responses of about 1,000 bytes, each copying passages of the corpus between new
  words; the span search (OLMoTrace's maximal spans, ``alignbench.trace.spans.maximal_spans``) with
  infini-gram's engine as the counter, against the same search with ``bytes.count`` over the whole
  corpus (every suffix checked by a linear scan) on the small corpus, interleaved; plus a full trace
  (spans, BCI, documents, BM25) per 1,000 response bytes. ``--baseline-large N`` also times the scan on
  the large corpus for N responses;
* memory: peak RSS of this process and of the indexer processes it started (``ru_maxrss``).

    python benchmarks/bench_trace.py [--corpus-mb 200] [--small-mb 2] [--responses 20] [--repeats 3] [--baseline-large 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from _common import CACHE, emit, interleaved, machine, table

from alignbench.trace.build import BuildOptions, build_index
from alignbench.trace.engine import TraceIndex
from alignbench.trace.spans import maximal_spans
from alignbench.trace.tracer import TraceSettings, trace_response

VOCAB = 50_000
DOC_BYTES = 2_000


def vocabulary(rng: np.random.Generator) -> list[str]:
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    lengths = rng.integers(2, 11, size=VOCAB)
    return ["".join(letters[rng.integers(0, 26, size=n)]) for n in lengths]


def write_corpus(path: Path, mb: float, seed: int = 0) -> Path:
    """``mb`` megabytes of JSONL documents (same generator for every size: a small corpus is a prefix of a large one)."""
    if path.is_file() and path.stat().st_size >= mb * 1e6:
        return path
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary(rng), dtype=object)
    ranks = np.arange(1, VOCAB + 1)
    p = 1.0 / ranks
    p /= p.sum()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    written, i = 0, 0
    with open(tmp, "w", encoding="utf-8") as f:
        while written < mb * 1e6:
            words = vocab[rng.choice(VOCAB, size=DOC_BYTES // 7, p=p)]
            text = ". ".join(" ".join(words[k:k + 12]).capitalize() for k in range(0, len(words), 12)) + "."
            line = json.dumps({"id": f"doc-{i}", "text": text}) + "\n"
            f.write(line)
            written += len(line)
            i += 1
    tmp.replace(path)
    return path


def responses(corpus: Path, n: int, seed: int = 1) -> list[str]:
    """About 1,000 bytes each: two or three corpus passages of 20-60 words joined by words the corpus never has."""
    rng = np.random.default_rng(seed)
    docs = []
    with open(corpus, encoding="utf-8") as f:
        for k, line in enumerate(f):
            if k % 7 == 0:
                docs.append(json.loads(line)["text"])
            if len(docs) >= 400:
                break
    out = []
    for j in range(n):
        parts = []
        while sum(len(x) for x in parts) < 1000:
            words = docs[int(rng.integers(len(docs)))].split()
            a = int(rng.integers(0, max(1, len(words) - 60)))
            parts.append(" ".join(words[a:a + int(rng.integers(20, 60))]))
            parts.append(f"zqx{j}vw{len(parts)} qzv{j}")
        out.append(" ".join(parts)[:1100])
    return out


def corpus_bytes(path: Path) -> bytes:
    """The documents as one byte string, separated by 0xff as in the index (the plain-Python "index")."""
    with open(path, encoding="utf-8") as f:
        return b"".join(b"\xff" + json.loads(line)["text"].encode("utf-8") for line in f)


def rss_mb() -> tuple[float, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, child_kb / 1024


def build(corpus: Path, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    info = build_index(BuildOptions(corpus=str(corpus), output=str(out), progress=False))
    info["wall_s"] = time.perf_counter() - t0
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus-mb", type=float, default=200)
    ap.add_argument("--small-mb", type=float, default=2)
    ap.add_argument("--responses", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-large", type=int, default=1, help="responses scanned by plain Python on the large corpus (0: skip)")
    ap.add_argument("--work", default=str(CACHE / "trace"))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(a.work)
    large = write_corpus(work / f"corpus-{a.corpus_mb:g}mb.jsonl", a.corpus_mb)
    small = write_corpus(work / f"corpus-{a.small_mb:g}mb.jsonl", a.small_mb)

    # build -----------------------------------------------------------------------------------------
    rows, infos = [], {}
    for label, corpus in (("small", small), ("large", large)):
        t0 = time.perf_counter()
        text = corpus_bytes(corpus)
        read_s = time.perf_counter() - t0
        info = infos[label] = build(corpus, work / f"index-{label}")
        mb = corpus.stat().st_size / 1e6
        sa_s = sum(s["seconds"] for s in info["suffix_arrays"])
        rows.append({"corpus": f"{mb:.1f} MB ({info['documents']} docs)", "plain Python: read s": read_s,
                     "index s": info["wall_s"], "MB/min": mb / info["wall_s"] * 60, "suffix array s": sa_s,
                     "builder": info["suffix_arrays"][0]["builder"], "index MB": sum(sum(f.values()) for f in info["shards"]) / 1e6})
        del text
    self_mb, child_mb = rss_mb()
    out = [table("index build (alignbench trace index; reading + word counts + suffix array)", rows,
                 ["corpus", "plain Python: read s", "index s", "MB/min", "suffix array s", "builder", "index MB"])]

    # trace -----------------------------------------------------------------------------------------
    resp = responses(small, a.responses)
    total_bytes = sum(len(r.encode()) for r in resp)
    small_text = corpus_bytes(small)
    ix_small, ix_large = TraceIndex(work / "index-small"), TraceIndex(work / "index-large")
    settings = TraceSettings()
    spans: dict[str, list] = {}

    def search(count, ix, key):
        def run() -> None:
            spans[key] = [[(s.start, s.end) for s in maximal_spans(ix_small.encode(r), count, settings.min_words, settings.max_count)]
                          for r in resp]
        return run

    scan = lambda ids: small_text.count(bytes(ids))  # noqa: E731
    t = interleaved({"plain Python bytes.count, small corpus": search(scan, None, "scan"),
                     "infini-gram, small corpus": search(ix_small.count, ix_small, "small"),
                     "infini-gram, large corpus": search(ix_large.count, ix_large, "large")}, repeats=a.repeats)
    assert spans["scan"] == spans["small"], "the plain-Python scan and infini-gram found different spans"
    base = t["plain Python bytes.count, small corpus"]
    trows = [{"what": k, "median s": v.median, "ms per 1,000 bytes": v.median / total_bytes * 1e6,
              "ratio (median)": v.median / base.median} for k, v in t.items()]
    full = {}
    trace_response(ix_small, "a prompt", resp[0], settings)  # warm-up: the BM25 library's first import
    for label, ix in (("small", ix_small), ("large", ix_large)):
        t0 = time.perf_counter()
        for r in resp:
            trace_response(ix, "a prompt", r, settings)
        full[label] = time.perf_counter() - t0
        trows.append({"what": f"full trace (spans, BCI, documents, BM25), {label} corpus", "median s": full[label],
                      "ms per 1,000 bytes": full[label] / total_bytes * 1e6, "ratio (median)": full[label] / base.median})
    if a.baseline_large:
        large_text = corpus_bytes(large)
        few = resp[:a.baseline_large]
        few_bytes = sum(len(r.encode()) for r in few)
        t0 = time.perf_counter()
        for r in few:
            maximal_spans(ix_small.encode(r), lambda ids: large_text.count(bytes(ids)), settings.min_words, settings.max_count)
        scan_large = time.perf_counter() - t0
        trows.append({"what": f"plain Python bytes.count, large corpus ({len(few)} response(s))", "median s": scan_large,
                      "ms per 1,000 bytes": scan_large / few_bytes * 1e6, "ratio (median)": float("nan")})
        del large_text
    n_spans = sum(len(s) for s in spans["large"])
    out.append(table(f"span search over {len(resp)} responses ({total_bytes} bytes; {n_spans} spans found in the large corpus)",
                     trows, ["what", "median s", "ms per 1,000 bytes", "ratio (median)"]))
    self_after, child_after = rss_mb()
    out.append(table("memory (peak RSS)", [{"what": "this process (corpus strings for the baseline included)", "MB": self_after},
                                           {"what": "infini-gram's indexer processes (largest)", "MB": child_after}], ["what", "MB"]))
    ix_small.close()
    ix_large.close()
    emit(f"machine: {machine()}\n\n" + "\n".join(out), a.json,
         {"build": rows, "trace": trows, "rss_mb": {"self": self_after, "children": child_after, "after_build_self": self_mb,
                                                    "after_build_children": child_mb}})


if __name__ == "__main__":
    sys.exit(main())
