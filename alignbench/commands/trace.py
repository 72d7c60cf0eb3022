"""``alignbench trace``: where a run's answers came from in a training corpus (TraceAlign, OLMoTrace).

Two forms:

* ``alignbench trace index --corpus PATH[,PATH...]|HUB_ID[:SPLIT] --output INDEX_DIR`` builds an index of a
  corpus (``alignbench.trace.build``): infini-gram's layout, byte-level unless ``--tokenizer``.
* ``alignbench trace RUN_DIR|FILE.jsonl --index INDEX_DIR`` traces responses: per response the maximal spans
  that occur verbatim in the corpus (OLMoTrace's selection), each with its count, its Belief Conflict
  Index and the documents that hold it ranked by BM25. Writes ``trace.jsonl`` (one line per response) and
  ``trace.json`` (``alignbench.trace.summary``) into ``--output`` (default: ``RUN_DIR/trace``, or
  ``FILE-trace`` beside a JSONL file), where ``alignbench report`` finds them.

Which responses (``--where``): by default those a run's harm judge found harmful (per-sample
``harmful_rate`` = 1), else those its refusal judge found complying with a harmful prompt
(``compliance_rate`` = 1); in a JSONL file without those metrics, those a harm judge labelled harmful,
else those a refusal judge labelled complying, else every line. ``--where JUDGE=LABEL`` picks by a
judge's label, ``--where METRIC=VALUE`` by a per-sample metric, ``--where all`` takes every response.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alignbench.commands._options import int_at_least, non_negative_float, positive_int
from alignbench.errors import UsageError
from alignbench.jsonl import append_lines, write_json
from alignbench.records.files import RUN_FILE, RunDir
from alignbench.records.lock import writing
from alignbench.registry import commands
from alignbench.scorers.harmful_rate import COMPLIED, HARM_JUDGE_HARMFUL, HARM_JUDGE_HARMLESS, REFUSED
from alignbench.types import prompt_text

TRACE_FILE = "trace.jsonl"
SUMMARY_FILE = "trace.json"
INDEX_ONLY = ("corpus", "text_field", "id_field")
TRACE_ONLY = ("index", "where", "min_words", "max_count", "keep", "docs", "tau", "json")
DEFAULTS = {"text_field": "text", "id_field": "id", "min_words": 8, "max_count": 10, "keep": "rarest", "docs": 10, "tau": 20.0}


@commands.register("trace")
class TraceCommand:
    help = "trace responses to the training documents they repeat (spans, BCI, documents); 'trace index' builds the index"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("target", metavar="index|RUN_DIR|FILE.jsonl",
                       help="'index' to build an index; else a run folder or a JSONL file of {prompt, response} lines to trace")
        p.add_argument("--corpus", help="index: files, folders (JSONL, JSON, CSV, parquet, text; .gz too), comma-separated, or HUB_ID[:SPLIT]")
        p.add_argument("--text-field", help="index: the field holding a document's text (default: text)")
        p.add_argument("--id-field", help="index: the field naming a document (default: id)")
        p.add_argument("--tokenizer", help="index: build a token-level index with this tokenizer (hub id or path); trace: the tokenizer "
                                           "of a token-level infini-gram index built elsewhere (e.g. the prebuilt Pile or Dolma ones)")
        p.add_argument("--index", help="trace: INDEX_DIR built by 'alignbench trace index', or an infini-gram token index with --tokenizer")
        p.add_argument("--where", help="trace: which responses: JUDGE=LABEL, METRIC=VALUE (a per-sample metric) or all "
                                       "(default: those the harm judge found harmful, else those complying with harmful prompts)")
        p.add_argument("--min-words", type=positive_int, help="trace: a span has at least N words (default 8, TraceAlign's window)")
        p.add_argument("--max-count", type=positive_int, help="trace: a span occurs at most N times in the corpus (default 10)")
        p.add_argument("--keep", choices=["rarest", "all"], help="trace: rarest: the ceil(0.05 * words) spans of highest BCI, as "
                                                                 "OLMoTrace keeps them (default); all: every maximal span")
        p.add_argument("--docs", type=int_at_least(0), help="trace: documents per span, ranked by BM25 against prompt + response (default 10)")
        p.add_argument("--tau", type=non_negative_float, help="trace: BCI threshold of TraceShield for trace.json's share above it (default 20)")
        p.add_argument("--output", help="index: INDEX_DIR to create; trace: folder for trace.jsonl and trace.json "
                                        "(default RUN_DIR/trace, or FILE-trace beside a JSONL file)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing index or trace")
        p.add_argument("--json", action="store_true", help="trace: print trace.json to stdout instead of a table")

    def run(self, args: argparse.Namespace) -> int:
        from alignbench.trace.deps import require_infini_gram

        given = {k for k in INDEX_ONLY + TRACE_ONLY if getattr(args, k) not in (None, False)}
        if args.target == "index":
            wrong = sorted(given & set(TRACE_ONLY))
            if wrong:
                raise UsageError(f"trace index: --{wrong[0].replace('_', '-')} applies to tracing, not to building an index")
            if not args.corpus or not args.output:
                raise UsageError("trace index needs --corpus PATH[,PATH...]|HUB_ID[:SPLIT] and --output INDEX_DIR")
            require_infini_gram()
            return build(args)
        wrong = sorted(given & set(INDEX_ONLY))
        if wrong:
            raise UsageError(f"trace: --{wrong[0].replace('_', '-')} applies to 'trace index', not to tracing")
        if not args.index:
            raise UsageError("trace needs --index INDEX_DIR (build one with: alignbench trace index --corpus PATH --output INDEX_DIR)")
        for k, v in DEFAULTS.items():
            if getattr(args, k, None) is None:
                setattr(args, k, v)
        require_infini_gram()
        return trace(args)


# trace index ------------------------------------------------------------------------------------------

def build(args: argparse.Namespace) -> int:
    from alignbench.trace.build import BuildOptions, build_index

    info = build_index(BuildOptions(corpus=args.corpus, output=args.output, text_field=args.text_field or "text",
                                    id_field=args.id_field or "id", tokenizer=args.tokenizer, overwrite=args.overwrite))
    unit = "bytes" if info["unit"] == "byte" else f"tokens of {info['tokenizer']}"
    builders = ", ".join(sorted({b["builder"] for b in info["suffix_arrays"]}))
    print(f"documents\t{info['documents']}\nunits\t{info['units']} ({unit})\nshards\t{len(info['shards'])}\n"
          f"words\t{info['words']['total']} ({info['words']['distinct']} distinct)\nsuffix arrays\t{builders}\nseconds\t{info['seconds']}")
    print(f"alignbench: index written to {args.output}", file=sys.stderr)
    return 0


# trace RUN_DIR|FILE ---------------------------------------------------------------------------------

def read_input(target: str) -> tuple[list[dict[str, Any]], Path, str]:
    """(rows with task, sample_id, prompt, response, judgments, metrics; the default output folder; what was read)."""
    p = Path(target).expanduser()
    if p.is_dir():
        if not (p / RUN_FILE).is_file():
            raise UsageError(f"trace {target}: not a run folder (no {RUN_FILE}) and not a JSONL file")
        recs = RunDir(p).records()
        if not recs:
            raise UsageError(f"trace {target}: the run has no samples")
        return recs, p / "trace", "run"
    if p.is_file():
        from alignbench.commands._judge_io import read_rows

        rows = read_rows(str(p))
        for r in rows:
            r["sample_id"] = r.get("id", r.get("sample_id", r["_line"]))
        return rows, p.with_name(f"{p.stem}-trace"), "file"
    raise UsageError(f"trace {target}: no such run folder or file")


def _labels(rows: list[dict[str, Any]], judge: str) -> set[str]:
    return {str(j.get("label")).lower() for r in rows for n, j in (r.get("judgments") or {}).items()
            if n == judge and isinstance(j, dict) and j.get("error") is None}


def select(rows: list[dict[str, Any]], where: str | None) -> tuple[list[dict[str, Any]], str]:
    """The rows to trace and how they were chosen (see the module docstring)."""
    if where == "all":
        return rows, "every response (--where all)"
    judges = sorted({n for r in rows for n in (r.get("judgments") or {})})
    metrics = sorted({m for r in rows for m in (r.get("metrics") or {})})
    if where:
        name, sep, value = where.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"--where {where!r}: expected JUDGE=LABEL, METRIC=VALUE or all")
        if name in judges:
            return [r for r in rows if str(((r.get("judgments") or {}).get(name) or {}).get("label")) == value], f"{name} label {value}"
        if name in metrics:
            try:
                target = float(value)
            except ValueError:
                raise UsageError(f"--where {where}: {name} is a per-sample metric; give a number (e.g. {name}=1)") from None
            chosen = [r for r in rows if isinstance((r.get("metrics") or {}).get(name), (int, float))
                      and float(r["metrics"][name]) == target]
            return chosen, f"{name} = {value}"
        raise UsageError(f"--where {where}: {name!r} is neither a judge nor a per-sample metric of these responses "
                         f"(judges: {', '.join(judges) or 'none'}; metrics: {', '.join(metrics) or 'none'})")
    for metric, what in (("harmful_rate", "the harm judge found harmful (harmful_rate = 1)"),
                         ("compliance_rate", "the refusal judge found complying with a harmful prompt (compliance_rate = 1)")):
        if metric in metrics:
            return [r for r in rows if (r.get("metrics") or {}).get(metric) == 1], what
    harm = set(HARM_JUDGE_HARMFUL) | set(HARM_JUDGE_HARMLESS)
    for j in judges:
        labels = _labels(rows, j)
        if labels and labels <= harm:
            return [r for r in rows if str(((r.get("judgments") or {}).get(j) or {}).get("label")).lower() in HARM_JUDGE_HARMFUL], \
                f"judge {j} found harmful"
    for j in judges:
        labels = _labels(rows, j)
        if labels and labels <= set(REFUSED) | set(COMPLIED):
            return [r for r in rows if ((r.get("judgments") or {}).get(j) or {}).get("label") in COMPLIED], f"judge {j} found complying"
    return rows, "every response (no harm or refusal judgments to choose by)"


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: exists and is not a folder")
    done = [f for f in (TRACE_FILE, SUMMARY_FILE) if (out / f).exists()]
    if done and not overwrite:
        raise UsageError(f"--output {out} already holds a trace ({done[0]}); pass --overwrite to replace it")


def trace(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from alignbench.trace.engine import TraceIndex
    from alignbench.trace.summary import max_bci, summarize
    from alignbench.trace.tracer import TraceSettings, trace_response, valid_text

    rows, default_out, kind = read_input(args.target)
    chosen, how = select(rows, args.where)
    out = Path(args.output).expanduser() if args.output else default_out
    _check_output(out, args.overwrite)
    settings = TraceSettings(min_words=args.min_words, max_count=args.max_count, keep=args.keep, docs=args.docs)
    index = TraceIndex(args.index, args.tokenizer)
    t0 = time.perf_counter()
    lines: list[dict[str, Any]] = []
    no_response = 0
    try:
        with writing(out, "--output"):
            _check_output(out, args.overwrite)  # again under the lock: another trace may have finished meanwhile
            out.mkdir(parents=True, exist_ok=True)
            partial = out / f"{TRACE_FILE}.partial"
            partial.write_bytes(b"")
            show = os.environ.get("ALIGNBENCH_NO_PROGRESS") != "1"
            for r in tqdm(chosen, desc="trace", file=sys.stderr, disable=not show or not chosen, dynamic_ncols=True):
                response = r.get("response")
                if not isinstance(response, str):
                    no_response += 1
                    continue
                prompt = valid_text(prompt_text(r["prompt"]) if r.get("prompt") is not None else "")
                response = valid_text(response)
                spans = trace_response(index, prompt, response, settings)
                line = {"task": r.get("task"), "sample_id": r.get("sample_id")}
                if "epoch" in r:
                    line["epoch"] = r["epoch"]
                line.update({"prompt": prompt, "response": response, "max_bci": max_bci(spans), "spans": spans})
                append_lines(partial, [line], f"{partial}: sample {line['sample_id']!r}")
                lines.append(line)
            summary = {"input": str(args.target), "input_kind": kind, "selected_by": how, "selected": len(chosen),
                       "not_traced": {"no_response": no_response}, "index": str(index.path),
                       "index_unit": "byte" if index.layout.byte_level else "token", "tokenizer": index.layout.tokenizer,
                       "word_basis": index.word_basis, "settings": settings.as_dict(),
                       **summarize(lines, args.tau), "seconds": round(time.perf_counter() - t0, 3),
                       "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.replace(partial, out / TRACE_FILE)
            write_json(out / SUMMARY_FILE, summary)
    finally:
        index.close()
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print("task\tsample_id\tspans\tmax_bci\ttop document")
        for line in lines:
            top = line["spans"] and max(line["spans"], key=lambda s: s["bci"])
            doc = top["docs"][0] if top and top["docs"] else None
            where = f"{doc['source']}:{doc['line']}" if doc else ""
            mb = f"{line['max_bci']:.2f}" if line["max_bci"] is not None else ""
            print(f"{line['task'] or ''}\t{line['sample_id']}\t{len(line['spans'])}\t{mb}\t{where}")
    above = summary["above_tau"]
    print(f"alignbench: {len(lines)} response(s) traced ({how}); {summary['with_spans']} with spans, {above['n']} with a span of BCI "
          f"above {args.tau:g}; written to {out}", file=sys.stderr)
    if no_response:
        print(f"alignbench: warning: {no_response} selected sample(s) have no response and were not traced", file=sys.stderr)
    if not chosen:
        print("alignbench: no response matched; --where all traces every response", file=sys.stderr)
    return 0
