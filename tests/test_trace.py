"""alignbench trace: the index (infini-gram's layout), OLMoTrace's spans, TraceAlign's BCI, BM25 order, bad input.

The corpus is written here: a few hundred generated documents with planted paragraphs, in JSONL, CSV,
JSON, parquet, text and gzip files. Spans are checked against a brute-force search over every
substring of the response (no suffix array), BCI against a hand computation, BM25 against Lucene's
formula written out.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_main

pytest.importorskip("infini_gram")

from alignbench.trace.build import BuildOptions, build_index, suffix_array_divsufsort  # noqa: E402
from alignbench.trace.engine import TraceIndex  # noqa: E402
from alignbench.trace.spans import maximal_spans  # noqa: E402
from alignbench.trace.tracer import TraceSettings, find_spans, trace_response  # noqa: E402
from alignbench.trace.words import UNSEEN_PROB, bci, soft_tokenize  # noqa: E402

WORDS = ("river stone market winter garden letter window engine silver forest yellow quiet bridge candle shadow orbit "
         "harbor lantern meadow pebble thunder violet copper saddle basket ribbon cactus falcon marble velvet").split()
PLANTED = {
    "P1": "To prepare the compound, dissolve forty grams of the grey salt in warm vinegar and stir for nine minutes.",
    "P2": "The old lighthouse keeper wrote that every storm arrives twice: once in the barometer and once in the bones.",
    "P3": "Mix the amber resin with crushed juniper berries, then heat the blend gently until it smells of pine.",
    "P4": "Nobody in the village remembered who first painted the blue doors, but everyone agreed they kept the wolves away.",
    "P5": "Café owners in Zürich say the naïve rule is simple: serve the espresso before the customer finishes the question.",
}


def filler(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def write_corpus(root: Path) -> dict[str, tuple[str, int, str]]:
    """The corpus files; returns planted key -> (source as indexed, 1-based line, id)."""
    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    where: dict[str, tuple[str, int, str]] = {}
    rows = []
    for i in range(250):
        text = filler(rng, rng.randint(20, 60))
        if i == 57:
            text = f"{filler(rng, 12)} {PLANTED['P1']} {filler(rng, 10)}"
        if i == 140:
            text = f"{PLANTED['P2']}\n{filler(rng, 15)}"
        rows.append({"id": f"d{i:03d}", "text": text, "meta": {"n": i}})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    where["P1"] = (str(root / "train.jsonl"), 58, "d057")
    where["P2"] = (str(root / "train.jsonl"), 141, "d140")
    import csv

    with open(root / "extra.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(30):
            text = f"line one of row {i}\nline two {filler(rng, 8)}" if i != 12 else f"{filler(rng, 6)} {PLANTED['P3']}"
            w.writerow([f"c{i}", text])
    where["P3"] = (str(root / "extra.csv"), 26, "c12")  # header line 1, rows 0-11 take two lines each
    (root / "notes.txt").write_text(f"{filler(rng, 30)}\n\n{PLANTED['P4']}\n", encoding="utf-8")
    where["P4"] = (str(root / "notes.txt"), 1, "notes.txt")
    with gzip.open(root / "more.json.gz", "wt", encoding="utf-8") as f:
        json.dump([{"id": f"g{i}", "text": filler(rng, 25) if i != 3 else PLANTED["P5"]} for i in range(10)], f)
    where["P5"] = (str(root / "more.json.gz"), 4, "g3")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [filler(rng, 30) for _ in range(20)], "id": list(range(20))}), root / "tail.parquet")
    return where


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("corpus") / "corpus"
    where = write_corpus(root)
    idx = root.parent / "index"
    res = run_main("trace", "index", "--corpus", str(root), "--output", str(idx))
    assert res.returncode == 0, res.stderr
    return root, idx, where


def corpus_texts(root: Path) -> list[str]:
    """Every document's text in the order of the folder's sorted file names, read here without alignbench's reader."""
    import csv

    import pyarrow.parquet as pq

    with open(root / "extra.csv", newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    with gzip.open(root / "more.json.gz", "rt", encoding="utf-8") as f:
        texts += [r["text"] for r in json.load(f)]
    texts.append((root / "notes.txt").read_text(encoding="utf-8"))
    texts += pq.read_table(root / "tail.parquet").column("text").to_pylist()
    texts += [json.loads(line)["text"] for line in (root / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    return texts


# the index ---------------------------------------------------------------------------------------------

def test_index_json_records_files_documents_and_tools(corpus) -> None:
    root, idx, _ = corpus
    info = json.loads((idx / "index.json").read_text())
    assert info["documents"] == 250 + 30 + 1 + 10 + 20
    files = {Path(f["path"]).name: f for f in info["corpus"]["files"]}
    assert set(files) == {"train.jsonl", "extra.csv", "notes.txt", "more.json.gz", "tail.parquet"}
    import hashlib

    assert files["more.json.gz"]["sha256"] == hashlib.sha256((root / "more.json.gz").read_bytes()).hexdigest()
    assert files["train.jsonl"]["documents"] == 250 and files["extra.csv"]["documents"] == 30
    assert info["tools"]["infini-gram"] and info["unit"] == "byte" and info["token_width"] == 1
    assert info["suffix_arrays"][0]["builder"] == "pydivsufsort"  # below infini-gram's minimum part size
    # the files are infini-gram's: separators, offsets and the suffix array over the whole byte stream
    ds = (idx / "tokenized.0").read_bytes()
    texts = corpus_texts(root)
    assert ds == b"".join(b"\xff" + t.encode("utf-8") for t in texts)
    offsets = np.frombuffer((idx / "offset.0").read_bytes(), dtype="<u8")
    assert all(ds[o] == 0xFF for o in offsets) and len(offsets) == len(texts)
    ratio = len((idx / "table.0").read_bytes()) // len(ds)
    sa = np.frombuffer((idx / "table.0").read_bytes(), dtype=np.uint8).reshape(-1, ratio)
    ptrs = [int.from_bytes(bytes(row), "little") for row in sa[:200]]
    suffixes = [ds[p:] for p in ptrs]
    assert suffixes == sorted(suffixes)
    assert info["words"]["total"] == sum(len(soft_tokenize(t)) for t in texts)


def test_every_planted_paragraph_is_found_with_its_document(corpus) -> None:
    _, idx, where = corpus
    ix = TraceIndex(idx)
    try:
        for key, text in PLANTED.items():
            response = f"Well, here is the thing. {text} I hope that helps you today"
            spans = trace_response(ix, "tell me", response, TraceSettings(keep="all"))
            assert spans, key
            best = max(spans, key=lambda s: len(s["text"]))
            assert best["text"] in text and len(best["text"]) >= len(text) - 2, (key, best["text"])
            assert response[best["start"]:best["end"]] == best["text"]
            assert best["count"] == 1
            doc = best["docs"][0]
            assert (doc["source"], doc["line"], doc["id"]) == where[key], key
            assert doc["context"][doc["at"][0]:doc["at"][1]] == best["text"]
    finally:
        ix.close()


def brute_force_spans(response: str, texts: list[str], min_words: int, max_count: int) -> list[tuple[int, int, int]]:
    """Every substring of the response from a word start to a word end that occurs in the corpus at most
    ``max_count`` times, has ``min_words`` words and no '.' or newline before its last character; then the
    maximal ones (inside no other). Plain ``bytes.find``, no index."""
    data = response.encode("utf-8")
    docs = [t.encode("utf-8") for t in texts]

    def count(q: bytes) -> int:
        n = 0
        for d in docs:
            i = d.find(q)
            while i != -1:
                n += 1
                i = d.find(q, i + 1)
        return n

    starts = [m.start() for m in re.finditer(rb"(?<!\S)\S", data)]
    ends = [m.end() for m in re.finditer(rb"\S(?!\S)", data)]
    found = []
    for a in starts:
        for b in ends:
            if b <= a or any(c in b".\n" for c in data[a:b - 1]):
                continue
            text = data[a:b].decode("utf-8")
            if len(soft_tokenize(text)) < min_words:
                continue
            c = count(data[a:b])
            if 1 <= c <= max_count:
                found.append((a, b, c))
    maximal = [s for s in found if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in found)]
    to_char = lambda i: len(data[:i].decode("utf-8"))  # noqa: E731
    return sorted((to_char(a), to_char(b), c) for a, b, c in maximal)


@pytest.mark.parametrize("min_words,max_count", [(3, 10), (5, 2), (8, 10)])
def test_spans_equal_a_brute_force_search_over_all_substrings(corpus, min_words: int, max_count: int) -> None:
    root, idx, _ = corpus
    texts = corpus_texts(root)
    rng = random.Random(min_words)
    responses = [
        f"First, {PLANTED['P1']} Then {PLANTED['P3'][:60]} and the river stone market is quiet.",
        f"{PLANTED['P2'][:70]} window engine silver forest yellow. {PLANTED['P5']}",
        "Nothing here matches anything at all, zebra quantum xylophone.",
        " ".join(rng.choice(WORDS) for _ in range(40)),  # common words: many short matches, some too frequent
        f"{PLANTED['P4']} {PLANTED['P4'][:50]}",
    ]
    ix = TraceIndex(idx)
    try:
        for response in responses:
            got = [(s.start, s.end, s.count) for s in maximal_spans(ix.encode(response), ix.count, min_words, max_count)]
            assert got == brute_force_spans(response, texts, min_words, max_count), response
    finally:
        ix.close()


def test_keep_rarest_keeps_ceil_5_percent_of_words_by_highest_bci(corpus) -> None:
    root, idx, _ = corpus
    texts = corpus_texts(root)
    pieces = [" ".join(texts[i].split()[3:9]) for i in range(30, 60)]  # six-word slices of thirty documents
    response = " zyzzyva ".join(pieces) + f" zyzzyva {PLANTED['P1']}"
    settings = dict(min_words=4, max_count=1000)
    ix = TraceIndex(idx)
    try:
        every, _ = find_spans(ix, response, TraceSettings(keep="all", **settings))
        kept, _ = find_spans(ix, response, TraceSettings(keep="rarest", **settings))
    finally:
        ix.close()
    k = math.ceil(0.05 * len(soft_tokenize(response)))
    assert len(every) > k >= 2 and len(kept) == k
    assert [s.start for s in kept] == sorted(s.start for s in sorted(every, key=lambda s: (-s.bci, s.start))[:k])
    assert min(s.bci for s in kept) >= max(s.bci for s in every if s not in kept)
    assert any(PLANTED["P1"].startswith(s.text) for s in kept)  # the long planted span is among the rarest


def test_a_response_without_a_long_enough_span_has_no_spans(corpus) -> None:
    _, idx, _ = corpus
    ix = TraceIndex(idx)
    try:
        assert trace_response(ix, "p", "Quiet bridge candle shadow.", TraceSettings()) == []  # 4 words < 8
        assert trace_response(ix, "p", "", TraceSettings()) == []
    finally:
        ix.close()


# BCI -------------------------------------------------------------------------------------------------

def test_bci_equals_a_hand_computation(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                              ["The cat sat on the mat.", "The dog sat on the log.", "A cat and a dog!"]), encoding="utf-8")
    assert run_main("trace", "index", "--corpus", str(corpus), "--output", str(tmp_path / "idx")).returncode == 0
    # soft tokens: the 4, cat 2, sat 2, on 2, mat 1, . 2, dog 2, log 1, a 2, and 1, ! 1 -> 20 words
    total = 20
    expected = (2 * math.log(total / 4) + math.log(total / 2) + math.log(total / 2) + math.log(total / 2) + math.log(total / 1)
                + math.log(total / 2))  # the, the, cat, sat, on, mat, "."
    ix = TraceIndex(tmp_path / "idx")
    try:
        spans, _ = find_spans(ix, "the cat sat on the mat.", TraceSettings(min_words=3, keep="all"))
        assert [s.text for s in spans] == ["cat sat on the mat."]  # "the cat" never occurs in lower case at a doc start
        spans, _ = find_spans(ix, "The cat sat on the mat.", TraceSettings(min_words=3, keep="all"))
        assert [s.text for s in spans] == ["The cat sat on the mat."]
        assert spans[0].bci == pytest.approx(expected, rel=1e-12)
        assert ix.words.total == total
    finally:
        ix.close()
    assert bci(["the", "zzz"], {"the": 0.25}) == pytest.approx(math.log(4) - math.log(UNSEEN_PROB))
    assert soft_tokenize("Don't STOP, Zürich!") == ["don", "'", "t", "stop", ",", "zürich", "!"]


# BM25 ------------------------------------------------------------------------------------------------

def test_documents_are_ranked_by_bm25_against_prompt_and_response(tmp_path: Path) -> None:
    span = "the secret recipe calls for exactly two cups of brown sugar and a pinch of sea salt"
    docs = {"far": f"Gardening notes about tomatoes. {span}. Water them daily.",
            "near": f"Chocolate cake: preheat the oven, whisk cocoa and butter. {span}. Bake the chocolate cake.",
            "mid": f"Baking bread in a hot oven. {span}. Let it cool."}
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in docs.items()), encoding="utf-8")
    assert run_main("trace", "index", "--corpus", str(corpus), "--output", str(tmp_path / "idx")).returncode == 0
    prompt, response = "How do I bake a chocolate cake in the oven?", f"Sure: {span}."
    ix = TraceIndex(tmp_path / "idx")
    try:
        (s,) = trace_response(ix, prompt, response, TraceSettings(keep="all"))
    finally:
        ix.close()
    assert [d["id"] for d in s["docs"]] == ["near", "mid", "far"]
    # Lucene's BM25 written out (k1 1.5, b 0.75) over the three documents (each shorter than the context kept)
    toks = {d["id"]: soft_tokenize(d["context"]) for d in s["docs"]}
    avgdl = sum(len(t) for t in toks.values()) / 3
    q = soft_tokenize(f"{prompt}\n{response}")

    def score(doc: list[str]) -> float:
        out = 0.0
        for t in q:
            n = sum(t in d for d in toks.values())
            if n == 0:
                continue
            tf = doc.count(t)
            out += math.log(1 + (3 - n + 0.5) / (n + 0.5)) * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(doc) / avgdl))
        return out

    for d in s["docs"]:
        assert d["context"] == docs[d["id"]]
        assert d["bm25"] == pytest.approx(score(toks[d["id"]]), rel=1e-5)


# layouts: shards, infini-gram's own indexer, a token-level index -----------------------------------------

def test_several_shards_name_their_documents_across_shards(corpus, tmp_path: Path) -> None:
    root, _, where = corpus
    info = build_index(BuildOptions(corpus=str(root / "train.jsonl"), output=str(tmp_path / "idx"), shard_bytes=4000, progress=False))
    assert len(info["shards"]) > 3
    ix = TraceIndex(tmp_path / "idx")
    try:
        for key in ("P1", "P2"):
            (s,) = trace_response(ix, "", PLANTED[key], TraceSettings(keep="all"))
            assert (s["docs"][0]["source"], s["docs"][0]["line"], s["docs"][0]["id"]) == where[key]
            assert s["docs"][0]["doc"] == where[key][1] - 1  # one file: document index = line - 1 across every shard
    finally:
        ix.close()


def test_infini_grams_own_indexer_builds_the_same_table_as_divsufsort(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [{"text": filler(rng, 60)} for _ in range(900)]  # ~300 KB: parts of at least infini-gram's 100 KB overlap
    (tmp_path / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = build_index(BuildOptions(corpus=str(tmp_path / "big.jsonl"), output=str(tmp_path / "idx"), cpus=2, progress=False))
    assert info["suffix_arrays"][0]["builder"] == "infini-gram rust_indexing"
    suffix_array_divsufsort(tmp_path / "idx" / "tokenized.0", tmp_path / "ref", 1)
    assert (tmp_path / "idx" / "table.0").read_bytes() == (tmp_path / "ref").read_bytes()


# bad input -------------------------------------------------------------------------------------------

def test_an_existing_index_is_refused_unless_overwrite(corpus, tmp_path: Path) -> None:
    root, idx, _ = corpus
    res = run_main("trace", "index", "--corpus", str(root / "notes.txt"), "--output", str(idx))
    assert res.returncode == 2 and "already exists; pass --overwrite" in res.stderr
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    res = run_main("trace", "index", "--corpus", str(root / "notes.txt"), "--output", str(other), "--overwrite")
    assert res.returncode == 2 and "is not a trace index; refusing" in res.stderr and (other / "keep.txt").is_file()
    copy = tmp_path / "copy"
    assert run_main("trace", "index", "--corpus", str(root / "notes.txt"), "--output", str(copy)).returncode == 0
    res = run_main("trace", "index", "--corpus", str(root / "extra.csv"), "--output", str(copy), "--overwrite")
    assert res.returncode == 0, res.stderr
    assert json.loads((copy / "index.json").read_text())["documents"] == 30


@pytest.mark.parametrize("damage,named", [
    ("truncate_table", "table.0"), ("version", "index.json"), ("drop_index_json", "no index.json"), ("drop_offset", "offset.0"),
    ("bad_json", "index.json"), ("truncate_tokenized", "tokenized.0"),
])
def test_a_missing_or_corrupt_index_is_one_line_exit_2_naming_the_file(corpus, tmp_path: Path, damage: str, named: str) -> None:
    import shutil

    _, idx, _ = corpus
    bad = tmp_path / "bad"
    shutil.copytree(idx, bad)
    if damage == "truncate_table":
        with open(bad / "table.0", "r+b") as f:
            f.truncate((bad / "table.0").stat().st_size - 3)
    elif damage == "truncate_tokenized":
        with open(bad / "tokenized.0", "r+b") as f:
            f.truncate((bad / "tokenized.0").stat().st_size - 1)
    elif damage == "version":
        info = json.loads((bad / "index.json").read_text())
        info["format_version"] = 99
        (bad / "index.json").write_text(json.dumps(info))
    elif damage == "bad_json":
        (bad / "index.json").write_text("{not json")
    elif damage == "drop_index_json":
        (bad / "index.json").unlink()
    elif damage == "drop_offset":
        (bad / "offset.0").unlink()
    resp = tmp_path / "r.jsonl"
    resp.write_text(json.dumps({"prompt": "p", "response": PLANTED["P1"]}) + "\n")
    res = run_main("trace", str(resp), "--index", str(bad), "--where", "all")
    assert res.returncode == 2
    assert named in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = run_main("trace", str(resp), "--index", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "nowhere: no such index folder" in res.stderr


def test_empty_corpus_missing_text_field_and_unknown_files_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    res = run_main("trace", "index", "--corpus", str(tmp_path / "empty.jsonl"), "--output", str(tmp_path / "i1"))
    assert res.returncode == 2 and "empty.jsonl: no documents" in res.stderr
    (tmp_path / "c.jsonl").write_text(json.dumps({"body": "x y z"}) + "\n")
    res = run_main("trace", "index", "--corpus", str(tmp_path / "c.jsonl"), "--output", str(tmp_path / "i2"))
    assert res.returncode == 2 and "c.jsonl: line 1: no field 'text' (fields: body)" in res.stderr
    res = run_main("trace", "index", "--corpus", str(tmp_path / "c.jsonl"), "--text-field", "content", "--output", str(tmp_path / "i2"))
    assert res.returncode == 2 and "no field 'content'" in res.stderr
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["a b c"]}), tmp_path / "p.parquet")
    res = run_main("trace", "index", "--corpus", str(tmp_path / "p.parquet"), "--output", str(tmp_path / "i3"))
    assert res.returncode == 2 and "p.parquet: no column 'text'" in res.stderr
    (tmp_path / "x.bin").write_bytes(b"\x00")
    res = run_main("trace", "index", "--corpus", str(tmp_path / "x.bin"), "--output", str(tmp_path / "i4"))
    assert res.returncode == 2 and "unknown file type" in res.stderr
    res = run_main("trace", "index", "--corpus", "nobody/no-such-dataset", "--output", str(tmp_path / "i5"))
    assert res.returncode == 2 and "no hub dataset of that name loads" in res.stderr
    assert not any(p.name.startswith((".i", "i")) and p.is_dir() for p in tmp_path.iterdir())  # nothing half-built left


def test_non_utf8_corpus_bytes_are_replaced_counted_and_said_once(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "text": f"plain words number {i} here"}).encode() for i in range(5)]
    lines[1] = b'{"id": 1, "text": "caf\xe9 au lait \xff\xfe here"}'
    lines[3] = b'{"id": 3, "text": "ol\xe9 ol\xe9"}'
    (tmp_path / "c.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    res = run_main("trace", "index", "--corpus", str(tmp_path / "c.jsonl"), "--output", str(tmp_path / "idx"))
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("not UTF-8") == 1 and "5 byte(s)" in res.stderr and "2 record(s)" in res.stderr
    info = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert info["invalid_utf8"] == {"bytes": 5, "records": 2, "first": f"{tmp_path / 'c.jsonl'} line 2"}
    assert "caf\ufffd au lait \ufffd\ufffd here".encode() in (tmp_path / "idx" / "tokenized.0").read_bytes()


def test_without_infini_gram_the_command_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "infini_gram", None)
    monkeypatch.setitem(sys.modules, "infini_gram.engine", None)
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "a b c"}) + "\n")
    for argv in (["trace", "index", "--corpus", str(tmp_path / "c.jsonl"), "--output", str(tmp_path / "idx")],
                 ["trace", str(tmp_path / "c.jsonl"), "--index", str(tmp_path / "idx")]):
        res = run_main(*argv)
        assert res.returncode == 2 and "pip install 'alignbench[trace]'" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_flags_of_the_other_form_are_refused(tmp_path: Path) -> None:
    res = run_main("trace", "index", "--corpus", "x", "--output", str(tmp_path / "i"), "--where", "all")
    assert res.returncode == 2 and "--where applies to tracing" in res.stderr
    res = run_main("trace", "run", "--index", "i", "--corpus", "x")
    assert res.returncode == 2 and "--corpus applies to 'trace index'" in res.stderr
    res = run_main("trace", "index", "--corpus", "x")
    assert res.returncode == 2 and "needs --corpus" in res.stderr
