"""Property-based fuzzing of the paths that must never lose or mix work: `eval --resume` and `judge --output`.

* resume: a finished or killed run, then `--resume` with any mix of changed settings and a samples.jsonl
  cut anywhere. Either the settings match and the run completes with every sample exactly once and the
  same records as an uninterrupted run, or the resume exits 2 with one line naming a stored value and
  leaves every file byte for byte as it was.
* judge: any existing OUTPUT (some other file, a finished or partial judging, garbage bytes), OUTPUT
  spelt as the input, with or without --resume / --overwrite. Either exit 2 with one line and nothing
  touched, or exit 0 with every input line judged once; an existing OUTPUT is replaced only with
  --overwrite, and --resume keeps the lines it already had.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_hardening_fuzz import FUZZ, _workdir, assert_clean

from conftest import run_main as cli

N = 6
ROWS = [{"id": f"s{i}", "prompt": f"Question {i}: help with topic {i % 3}?", "label": "harmful" if i % 2 else "benign"}
        for i in range(N)]
TASK = "name: fz\ndataset:\n  data_files: d.jsonl\n  columns: {id: id}\n  meta_columns: [label]\njudges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n"
BASE = {"--limit": "5", "--seed": "1", "--max-new-tokens": "16", "--temperature": "0.5", "--system-prompt": "be brief",
        "--judges": "refusal_xstest", "--model-args": "refuse=0.5"}
OTHER = {"--limit": ["4", "6"], "--seed": ["0", "2"], "--max-new-tokens": ["15", "17"], "--temperature": ["0.0", "0.6"],
         "--system-prompt": ["be long", ""], "--judges": ["bleu", "refusal_xstest,bleu"], "--model-args": ["refuse=0.9", "refuse=0.1"],
         "--shard": ["0/2", "1/2"]}
RUNTIME = {"--batch-size": ["1", "3", "auto"], "--concurrency": ["1", "4"], "--model-args": ["refuse=0.5,delay=0.0"]}


def _argv(d: Path, opts: dict[str, str], run_id: str) -> list[str]:
    out = ["eval", "--model", "dummy", "--tasks", str(d / "t.yaml"), "--output", str(d / "out"), "--run-id", run_id, "--no-cache"]
    for k, v in opts.items():
        out += [f"{k}={v}"]
    return out


def _files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def _records(run: Path) -> list[dict[str, Any]]:
    lines = (run / "samples.jsonl").read_text().splitlines()
    return sorted(({k: v for k, v in json.loads(x).items() if k not in ("latency_s", "cached")} for x in lines),
                  key=lambda r: r["sample_id"])


@settings(FUZZ, max_examples=20)
@given(changed=st.dictionaries(st.sampled_from(sorted(OTHER)), st.integers(0, 1), max_size=3),
       runtime=st.dictionaries(st.sampled_from(sorted(RUNTIME)), st.integers(0, 2), max_size=2),
       cut=st.one_of(st.none(), st.floats(0.0, 1.0)), finished=st.booleans())
def test_resume_only_adds_what_is_missing_or_touches_nothing(changed: dict[str, int], runtime: dict[str, int],
                                                            cut: float | None, finished: bool) -> None:
    with _workdir() as d:
        (d / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        (d / "t.yaml").write_text(TASK)
        assert cli(*_argv(d, BASE, "ref"))[0] == 0
        assert cli(*_argv(d, BASE, "A"))[0] == 0
        run = d / "out" / "A"
        if not finished:  # as if killed: status running, samples.jsonl cut anywhere (a torn last line included)
            info = json.loads((run / "run.json").read_text())
            info["status"] = "running"
            (run / "run.json").write_text(json.dumps(info))
            (run / "metrics.json").unlink()
        if cut is not None:
            data = (run / "samples.jsonl").read_bytes()
            (run / "samples.jsonl").write_bytes(data[: int(len(data) * cut)])
        before = _files(run)
        opts = dict(BASE)
        for k, i in runtime.items():
            opts[k] = RUNTIME[k][i % len(RUNTIME[k])]
        for k, i in changed.items():
            opts[k] = OTHER[k][i]
        norm = lambda k, v: "refuse=0.5" if (k, v) == ("--model-args", "refuse=0.5,delay=0.0") else v  # noqa: E731 - a delay changes no answer
        same = all(norm(k, opts.get(k)) == BASE.get(k) for k in OTHER)
        rc, _, err = cli(*_argv(d, opts, "A"), "--resume")
        assert_clean(rc, err)
        if same:
            assert rc == 0, err
            assert _records(run) == _records(d / "out" / "ref")  # none lost, none twice, the same answers
            assert json.loads((run / "metrics.json").read_text()) == json.loads((d / "out" / "ref" / "metrics.json").read_text())
        else:
            assert rc == 2 and "--resume: run A was made with " in err, err
            assert _files(run) == before


JUDGE_ROWS = [{"id": str(i), "prompt": f"q{i}", "response": "I'm sorry, I can't." if i % 2 else f"Sure {i}."} for i in range(4)]
existing = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.just("judged"),  # a finished judging of the same input
    st.just("judged_prefix"),  # a finished judging of the input's first lines
    st.just("other"),  # a finished file of something else
)


def _judged(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps({**r, "judgments": {"refusal_gcg": {"label": "kept", "score": 9.0, "raw": None, "error": None}}}) + "\n"
                   for r in rows)


@settings(FUZZ, max_examples=30)
@given(out_kind=existing, partial=st.one_of(st.none(), st.integers(0, 4)), spelling=st.sampled_from(["other", "input", "input_rel", "link"]),
       flag=st.sampled_from([(), ("--resume",), ("--overwrite",)]))
def test_judge_never_replaces_a_file_it_was_not_told_to(out_kind: Any, partial: int | None, spelling: str, flag: tuple[str, ...]) -> None:
    with _workdir() as d:
        inp = d / "in.jsonl"
        inp.write_text("".join(json.dumps(r) + "\n" for r in JUDGE_ROWS))
        out = d / "out.jsonl"
        if isinstance(out_kind, bytes):
            out.write_bytes(out_kind)
        elif out_kind == "judged":
            out.write_text(_judged(JUDGE_ROWS))
        elif out_kind == "judged_prefix":
            out.write_text(_judged(JUDGE_ROWS[:2]))
        elif out_kind == "other":
            out.write_text('{"something": "else"}\n')
        if partial is not None:
            (d / "out.jsonl.partial").write_text(_judged(JUDGE_ROWS[:partial]))
        target = {"other": out, "input": inp, "input_rel": Path("in.jsonl"), "link": d / "link.jsonl"}[spelling]
        if spelling == "link":
            os.symlink(inp, target)
        input_before, output_before = inp.read_bytes(), out.read_bytes() if out.exists() else None
        rc, _, err = cli("judge", "--judges", "refusal_gcg", "--input", str(inp), "--output", str(target), *flag)
        errors = "".join(x + "\n" for x in err.splitlines() if "error" in x)
        assert_clean(rc, errors)
        assert inp.read_bytes() == input_before  # the input is never written
        if spelling != "other":
            assert rc == 2 and "is the --input file" in err, err
            return
        if output_before is not None and not flag:
            assert rc == 2 and "already exists" in err, err
            assert out.read_bytes() == output_before
            return
        if partial is not None and not flag:  # the judged lines of an interrupted run are neither resumed nor dropped unasked
            assert rc == 2 and "holds the lines of an interrupted run" in err, err
            assert (d / "out.jsonl.partial").read_text() == _judged(JUDGE_ROWS[:partial]) and not out.exists()
            return
        if rc == 2:  # e.g. --resume over a file that is not a judging of this input: nothing replaced
            assert "--resume" in err and flag == ("--resume",), err
            assert (out.read_bytes() if out.exists() else None) == output_before
            return
        got = [json.loads(x) for x in out.read_text().splitlines()]
        assert [g["id"] for g in got] == [r["id"] for r in JUDGE_ROWS]
        kept = sum(g["judgments"]["refusal_gcg"]["label"] == "kept" for g in got)
        if flag == ("--resume",):  # lines already judged (partial file first, else the finished output) are kept
            expect = partial if partial is not None else {"judged": 4, "judged_prefix": 2}.get(out_kind, 0)  # type: ignore[arg-type]
            assert kept == expect, (kept, expect, out_kind, partial)
        else:
            assert kept == 0
