"""Text scanning over degenerate model output: every judge-side pattern is linear in the response's length.

Two parts:

1. ``head`` (learned judges: the words an embedder sees) against its previous pattern, ``\\s*(?:\\S+\\s+)``
   scanned with ``finditer``: on a response without spaces that pattern rescans the rest of the text from
   every character (quadratic). Both are timed at growing lengths of one no-space word; the previous one
   only up to ``--old-max`` characters (its time grows with the square of the length).
2. Every judge that reads a response, and every parsing helper in ``alignbench.judges`` that reads a model's
   text, on 1 MB inputs built to hit a pattern's worst case (no spaces, a run of spaces, of line breaks, of
   dots, of blank lines with tabs, a code fence around a 1 MB blank, a run of ``` openings).

    python benchmarks/bench_text_scan.py [--size 1000000] [--old-max 40000] [--json FILE]
"""

from __future__ import annotations

import argparse
import re
import time

from _common import emit, machine, table

OLD_WORDS = re.compile(r"\s*(?:\S+\s+)")


def old_head(text: str, words: int) -> str:
    end = 0
    for n, m in enumerate(OLD_WORDS.finditer(text)):
        if n == words:
            break
        end = m.end()
    else:
        return text
    return text[:end]


def seconds(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def inputs(size: int) -> dict[str, str]:
    return {"no spaces": "x" * size, "spaces": "a" + " " * size + "b", "line breaks": "\n" * size + "- x", "dots": "a" + "." * size + "b",
            "blank lines": "\n \t" * (size // 3) + "z", "fenced blank": "```json\n{" + " " * size + "}\n```",
            "fence openings": "```{" * (size // 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--old-max", type=int, default=40_000)
    ap.add_argument("--json")
    args = ap.parse_args()

    from alignbench.judges import _verdicts, constraints
    from alignbench.judges.catalog import builtin_judges
    from alignbench.judges.embeddings import head
    from alignbench.types import JudgeInput

    rows = []
    n = 5_000
    while n <= args.size:
        text = "x" * n
        row = {"characters": n, "head (s)": seconds(head, text, 128)}
        row["previous pattern (s)"] = seconds(old_head, text, 128) if n <= args.old_max else "not run"
        rows.append(row)
        n *= 2 if n < args.old_max else 10
    out = table("head(text, 128) on one word without spaces", rows, ["characters", "head (s)", "previous pattern (s)"])

    catalog = builtin_judges()
    judges = [catalog.build(name) for name in ("refusal_clf", "refusal_xstest", "xstest_strmatch", "refusal_gcg", "idk_broad", "bleu",
                                               "rouge1", "constraint_rules")]
    helpers = {"constraints.count_sentences": constraints.count_sentences, "constraints bullets": constraints._BULLET.findall,
               "constraints.parse_json_object": lambda t: _try(constraints.parse_json_object, t),
               "verdict lines": _verdicts._VERDICT_LINE.findall, "aspect verdict lines": _verdicts.aspect_lines,
               "verdict JSON": _verdicts._json_object}
    judges[0].judge([JudgeInput(prompt="q", response="warm up")])
    scan = []
    meta = {"constraints": [{"type": "max_sentences", "n": 3}, {"type": "bullets", "n": 2}, {"type": "json"}]}
    for name, text in inputs(args.size).items():
        item = JudgeInput(prompt="How do I do this?", response=text, references=["a reference answer"], meta=meta)
        row = {"input": name, "characters": len(text)}
        for j in judges:
            row[j.name] = seconds(j.judge, [item])
        row["slowest helper"] = max(seconds(fn, text) for fn in helpers.values())
        scan.append(row)
    cols = ["input", "characters", *[j.name for j in judges], "slowest helper"]
    out += "\n" + table(f"seconds per judgment of one {args.size:,}-character response", scan, cols)
    out += f"\n{machine()}\n"
    emit(out, args.json, {"head": rows, "judges": scan})


def _try(fn, text):
    try:
        return fn(text)
    except ValueError:
        return None


if __name__ == "__main__":
    main()
