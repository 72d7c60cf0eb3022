"""`alignbench judge` never replaces a file silently: an existing OUTPUT needs --overwrite or --resume,
and OUTPUT may not be the input file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import read_jsonl, run_main

ROWS = [{"id": str(i), "prompt": f"Question {i}?", "response": "I'm sorry, I can't." if i % 2 else f"Answer {i}."}
        for i in range(5)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _judge(inp: Path, out: Path, *extra: str, judges: str = "refusal_gcg"):
    return run_main("judge", "--judges", judges, "--input", inp, "--output", out, *extra)


def _one_line_error(r, needle: str) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: ") and needle in lines[0], r.stderr


def test_an_existing_output_is_refused_and_kept(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out.jsonl"
    out.write_text("a finished file of another judge\n")
    _one_line_error(_judge(inp, out), "--output")
    assert "--overwrite" in _judge(inp, out).stderr
    assert out.read_text() == "a finished file of another judge\n"
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_overwrite_replaces_it(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    r = _judge(inp, out, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert [g["judgments"]["refusal_gcg"]["label"] for g in read_jsonl(out)] == ["compliance", "refusal"] * 2 + ["compliance"]


def test_resume_keeps_a_finished_output_and_judges_only_what_is_missing(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS[:3])
    out = tmp_path / "out.jsonl"
    assert _judge(inp, out).returncode == 0
    first = read_jsonl(out)
    first[0]["judgments"]["refusal_gcg"]["raw"] = "kept from the first run"  # a mark that a re-judging would erase
    _write(out, first)
    _write(inp, ROWS)  # two more lines since
    r = _judge(inp, out, "--resume")
    assert r.returncode == 0, r.stderr
    got = read_jsonl(out)
    assert len(got) == 5 and got[0]["judgments"]["refusal_gcg"]["raw"] == "kept from the first run"
    assert [g["id"] for g in got] == [r["id"] for r in ROWS]


def test_output_equal_to_input_is_refused_in_every_spelling(tmp_path: Path, monkeypatch) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS)
    before = inp.read_bytes()
    monkeypatch.chdir(tmp_path)
    os.symlink(inp, tmp_path / "link.jsonl")
    for out in (inp, Path("in.jsonl"), tmp_path / "sub" / ".." / "in.jsonl", tmp_path / "link.jsonl"):
        for extra in ((), ("--overwrite",), ("--resume",)):
            if out == tmp_path / "sub" / ".." / "in.jsonl":
                (tmp_path / "sub").mkdir(exist_ok=True)
            _one_line_error(_judge(inp, out, *extra), "is the --input file")
    assert inp.read_bytes() == before


def test_resume_and_overwrite_together_is_a_usage_error(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", ROWS)
    r = _judge(inp, tmp_path / "o.jsonl", "--resume", "--overwrite")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
