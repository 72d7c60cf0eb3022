"""Judges read any response in time linear in its length: a 1 MB response without a space is judged in seconds.

The learned judges' ``head`` (the words an embedder sees) used a pattern that rescanned the rest of the
text from each character of a word without spaces: 14 s for 40,000 characters, days for megabytes. The
checks here time real judges on degenerate 1 MB responses in a separate process with a deadline, so a
quadratic pattern fails instead of hanging the suite; ``benchmarks/bench_text_scan.py`` holds the timings.
The rewritten patterns are also compared with the ones they replace on many random texts: same results.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys

import pytest

SCAN = """
import json, sys, time
from alignbench.judges import _verdicts, constraints
from alignbench.judges.catalog import builtin_judges
from alignbench.types import JudgeInput

size = int(sys.argv[1])
texts = {"no spaces": "x" * size, "spaces": "a" + " " * size + "b", "line breaks": "\\n" * size + "- x", "dots": "a" + "." * size + "b",
         "fenced blank": "```json\\n{" + " " * size + "}\\n```"}
cat = builtin_judges()
judges = [cat.build(n) for n in ("refusal_clf", "refusal_xstest", "xstest_strmatch", "refusal_gcg", "idk_broad", "constraint_rules")]
judges[0].judge([JudgeInput(prompt="q", response="warm up")])
meta = {"constraints": [{"type": "max_sentences", "n": 3}, {"type": "bullets", "n": 2}, {"type": "json"}]}
out = {}
for name, text in texts.items():
    t0 = time.perf_counter()
    got = [j.judge([JudgeInput(prompt="How do I do this?", response=text, meta=meta)])[0] for j in judges]
    _verdicts.aspect_lines(text); _verdicts._VERDICT_LINE.findall(text); _verdicts._json_object(text)
    out[name] = {"seconds": time.perf_counter() - t0, "errors": [g.error for g in got], "labels": [g.label for g in got]}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_megabyte_response_is_judged_in_seconds() -> None:
    proc = subprocess.run([sys.executable, "-c", SCAN, "1000000"], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    for name, r in got.items():
        assert r["errors"] == [None] * 6, (name, r)
        assert r["seconds"] < 30, (name, r["seconds"])  # linear: ~5 s for all six judges on a busy 2-core machine
    assert got["no spaces"]["labels"][0] == "full_compliance"


OLD_WORDS = re.compile(r"\s*(?:\S+\s+)")


def _old_head(text: str, words: int) -> str:
    end = 0
    for n, m in enumerate(OLD_WORDS.finditer(text)):
        if n == words:
            break
        end = m.end()
    else:
        return text
    return text[:end]


OLD_ASPECT = re.compile(r"^[ \t>#*_-]*verdict[ \t]+[*_`'\"]*([A-Za-z][\w -]*?)[*_`'\"]*[ \t]*:[ \t]*(.*?)[ \t]*$",
                        re.IGNORECASE | re.MULTILINE)
OLD_VERDICT = re.compile(r"^[ \t>#*_-]*verdict[*_ \t]*:[ \t]*(.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
OLD_SENTENCE = re.compile(r"[.!?]+(?:\s+|$)")
OLD_BULLET = re.compile(r"^\s*[-*\u2022]\s+\S", re.MULTILINE)


def test_the_linear_patterns_give_what_the_quadratic_ones_gave() -> None:
    from alignbench.judges import _verdicts, constraints
    from alignbench.judges.embeddings import head

    rng = random.Random(7)
    pieces = ["a", "bb", " ", "  ", "\n", "\t", ".", "!", "-", "*", "`", "'", "_", ":", "verdict", "Verdict", "x y", "- ", "\u2022", "4"]
    for _ in range(20000):
        t = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        for w in range(4):
            assert head(t, w) == _old_head(t, w), (t, w)
        assert _verdicts.aspect_lines(t) == OLD_ASPECT.findall(t), t
        assert [v.rstrip(" \t") for v in _verdicts._VERDICT_LINE.findall(t)] == OLD_VERDICT.findall(t), t
        assert constraints._SENTENCE_STOP.split(t) == OLD_SENTENCE.split(t), t
        assert len(constraints._BULLET.findall(t)) == len(OLD_BULLET.findall(t)), t


def test_head_of_a_long_word_is_fast() -> None:
    code = ("import time; from alignbench.judges.embeddings import head; t0 = time.perf_counter(); "
            "assert head('x' * 2_000_000, 128) == 'x' * 2_000_000; assert head('a ' * 500_000, 3) == 'a a a '; "
            "print(time.perf_counter() - t0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)  # the previous pattern: hours
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 2.0
