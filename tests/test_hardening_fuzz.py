"""Property-based fuzzing of everything a user hands the CLI: task YAML, judge YAML, data files.

Whatever the input (random mappings, wrong types, garbage bytes, bad encodings, random columns,
empty files), `alignbench eval` either succeeds or exits 2 with ONE line on stderr that starts with
``alignbench: error:``; never a traceback and never exit 1 ("internal error"). The CLI runs in-process
(``alignbench.cli.main``) for speed; a few cases go through a subprocess too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from conftest import run_main as cli

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)

# ---------------------------------------------------------------------------------------------------
# running the CLI in-process


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A fresh temporary folder that is also the working directory (so nothing resolves against the repo)."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            yield Path(d)
        finally:
            os.chdir(old)



def assert_clean(rc: int, err: str, ok: tuple[int, ...] = (0, 2)) -> None:
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    assert rc in ok, (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
        assert lines[0].startswith("alignbench: error: ") or lines[0].startswith("alignbench eval: error: "), lines[0]


def eval_task(task: Path | str, *extra: str) -> tuple[int, str, str]:
    return cli("eval", "--model", "dummy", "--tasks", str(task), "--output", "out", "--no-cache", "--limit", "5", *extra)


# ---------------------------------------------------------------------------------------------------
# strategies

text = st.text(max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True, allow_infinity=True), text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
                      max_leaves=12)

TASK_KEYS = ["name", "version", "description", "family", "group", "dataset", "prompt", "output_type", "generation", "judges",
             "scorer", "scorer_args"]
DATASET_KEYS = ["hub", "name", "split", "data_files", "format", "columns", "meta_columns", "constants", "filter", "hook"]

VALID_TASK: dict[str, Any] = {
    "name": "fz",
    "dataset": {"data_files": "d.jsonl", "columns": {"id": "id", "category": "cat"}, "meta_columns": ["label"]},
    "prompt": {"template": "Q: {{ prompt }}", "system": "be nice"},
    "generation": {"max_new_tokens": 8, "stop": ["\n"]},
    "judges": ["refusal_gcg"],
    "scorer": "harmful_rate",
    "scorer_args": {"refusal_judge": "refusal_xstest"},
}
VALID_ROWS = [{"id": f"r{i}", "prompt": f"prompt {i}", "cat": "xy"[i % 2], "label": ["harmful", "benign"][i % 2],
               "choices": ["a", "b"], "target": 0, "refs": ["ref a", "ref b"]} for i in range(6)]

# paths into the valid task where a mutation is applied
PATHS = [(), ("name",), ("version",), ("group",), ("dataset",), ("dataset", "data_files"), ("dataset", "columns"),
         ("dataset", "columns", "id"), ("dataset", "columns", "prompt"), ("dataset", "columns", "references"),
         ("dataset", "columns", "choices"), ("dataset", "columns", "target"), ("dataset", "meta_columns"), ("dataset", "constants"),
         ("dataset", "filter"), ("dataset", "format"), ("dataset", "hook"), ("dataset", "hub"), ("dataset", "split"), ("prompt",),
         ("prompt", "template"), ("prompt", "system"), ("prompt", "chat"), ("generation",), ("generation", "max_new_tokens"),
         ("generation", "temperature"), ("generation", "top_p"), ("generation", "stop"), ("judges",), ("scorer",), ("scorer_args",),
         ("scorer_args", "refusal_judge"), ("scorer_args", "label_field"), ("output_type",)]

INTERESTING = st.sampled_from([
    None, "", "..", "../x.jsonl", "/etc/passwd", "a\x00b", "x" * 300, "~", "{{", "{% for %}", "{{ 1/0 }}", "{{ nope }}",
    "os:system", "os.path:join", "json:loads", "alignbench.tasks.data:read_rows", "nope:nope", ":", "harmful_rate",
    "refusal_gcg", "multiple_choice", "generate", "csv", "parquet", "id", "prompt", "label", "cat", "refs", "choices", "target",
    ["id", "prompt"], ["refs"], ["nope"], [], {}, {"a": 1}, {"id": "x"}, {"label": ["harmful"]}, -1, 0, 1, 2**70, 1e308, True,
    float("nan"), [1, 2], [None], [["x"]], ".", "/", "walledai/AdvBench", "../../..", "d.jsonl", "d.csv", ["d.jsonl", "d.jsonl"],
])


def _set(d: Any, path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    if not isinstance(d, dict):
        return d
    d[path[0]] = _set(d.get(path[0], {}), path[1:], value) if len(path) > 1 else value
    return d


@st.composite
def mutated_tasks(draw: st.DrawFn) -> Any:
    cfg = copy.deepcopy(VALID_TASK)
    if draw(st.booleans()):
        cfg["output_type"] = "multiple_choice"
        cfg["dataset"]["columns"]["choices"] = "choices"
        cfg["dataset"]["columns"]["target"] = "target"
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        value = draw(st.one_of(INTERESTING, values))
        if draw(st.integers(0, 9)) == 0 and path:  # delete the key instead
            parent = cfg
            for k in path[:-1]:
                parent = parent.get(k) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            continue
        cfg = _set(cfg, path, value)
    return cfg


def _write_rows(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# task YAML


@FUZZ
@given(raw=st.binary(max_size=300))
def test_task_yaml_garbage_bytes(raw: bytes) -> None:
    with _workdir() as d:
        (d / "t.yaml").write_bytes(raw)
        _write_rows(d / "d.jsonl", VALID_ROWS)
        assert_clean(*eval_task(d / "t.yaml")[::2])


@FUZZ
@given(body=st.one_of(values, st.dictionaries(st.one_of(st.sampled_from(TASK_KEYS), text), values, max_size=8)))
def test_task_yaml_random_structures(body: Any) -> None:
    with _workdir() as d:
        (d / "t.yaml").write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        _write_rows(d / "d.jsonl", VALID_ROWS)
        rc, _, err = eval_task(d / "t.yaml")
        assert_clean(rc, err, ok=(2,))  # no random structure is a valid task (no dataset source)


@FUZZ
@given(cfg=mutated_tasks())
def test_task_yaml_mutations_of_a_valid_task(cfg: Any) -> None:
    with _workdir() as d:
        (d / "t.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        _write_rows(d / "d.jsonl", VALID_ROWS)
        (d / "d.csv").write_text("id,prompt,cat,label\nr1,hello,x,harmful\n", encoding="utf-8")
        rc, _, err = eval_task(d / "t.yaml")
        assert_clean(rc, err)


def test_the_unmutated_task_runs() -> None:
    """The seed of the mutations is valid, so a failure above is the mutation's doing."""
    with _workdir() as d:
        (d / "t.yaml").write_text(yaml.safe_dump(VALID_TASK), encoding="utf-8")
        _write_rows(d / "d.jsonl", VALID_ROWS)
        rc, out, err = eval_task(d / "t.yaml")
        assert rc == 0, err
        assert "fz\tcompliance_rate\t" in out


# ---------------------------------------------------------------------------------------------------
# data files

COLS = ["id", "prompt", "cat", "label", "choices", "target", "refs", "x", ""]
cells = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8),
                  st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def rows_strategy(draw: st.DrawFn) -> list[Any]:
    """Mostly plausible rows (id + prompt + a few columns), with random cells, missing keys and non-object rows mixed in."""
    rows: list[Any] = []
    for i in range(draw(st.integers(0, 6))):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            rows.append(draw(cells))
        elif roll == 1:
            rows.append(draw(st.dictionaries(st.sampled_from(COLS), cells, max_size=6)))
        else:
            row: dict[str, Any] = {"id": f"r{i}", "prompt": f"prompt {i}", "cat": "x", "label": "harmful", "refs": ["a b"],
                                   "choices": ["yes", "no"], "target": 0}
            for _ in range(draw(st.integers(0, 2))):
                key = draw(st.sampled_from(COLS))
                if draw(st.booleans()):
                    row.pop(key, None)
                else:
                    row[key] = draw(cells)
            rows.append(row)
    return rows

TASK_FOR_DATA = {
    "name": "fzdata",
    "dataset": {"data_files": "data.FMT", "columns": {"id": "id", "category": "cat", "references": "refs"}, "meta_columns": ["label"]},
    "judges": ["refusal_gcg"],
}


@st.composite
def data_files(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["jsonl", "json", "csv", "tsv", "parquet"]))
    kind = draw(st.sampled_from(["rows", "rows", "rows", "bytes", "empty", "latin1", "utf16", "bom"]))
    rows = draw(rows_strategy())
    if kind == "bytes":
        return fmt, draw(st.binary(max_size=200))
    if kind == "empty":
        return fmt, b""
    if fmt == "jsonl":
        body = "".join(json.dumps(r) + "\n" for r in rows)
    elif fmt == "json":
        body = json.dumps(draw(st.sampled_from([rows, {"data": rows}, {"x": 1}, rows[:1]])))
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        header = draw(st.one_of(st.just(["id", "prompt", "cat", "label", "refs"]), st.lists(st.sampled_from(COLS), max_size=5)))
        lines = [sep.join(header)]
        for i, r in enumerate(rows):
            if isinstance(r, dict) and draw(st.booleans()):
                lines.append(sep.join(str(r.get(h, "")) for h in header))
            else:
                lines.append(sep.join(str(c) for c in draw(st.lists(cells, max_size=6))))
        body = "\n".join(lines) + "\n"
    else:  # parquet
        import pandas as pd

        dict_rows = [r for r in rows if isinstance(r, dict)]
        try:
            buf = io.BytesIO()
            pd.DataFrame(dict_rows).to_parquet(buf)
            return fmt, buf.getvalue()
        except Exception:  # pyarrow cannot store that mix of types: store garbage instead
            return fmt, b"PAR1" + json.dumps(rows, default=str).encode()
    if kind == "latin1":
        return fmt, (body + "caf\u00e9").encode("latin-1", errors="replace")
    if kind == "utf16":
        return fmt, body.encode("utf-16")
    if kind == "bom":
        return fmt, b"\xef\xbb\xbf" + body.encode()
    return fmt, body.encode()


@FUZZ
@given(data=data_files(), mc=st.booleans())
def test_data_files_random_columns_types_and_encodings(data: tuple[str, bytes], mc: bool) -> None:
    fmt, raw = data
    cfg = copy.deepcopy(TASK_FOR_DATA)
    cfg["dataset"]["data_files"] = f"data.{fmt}"
    if mc:
        cfg["output_type"] = "multiple_choice"
        cfg["dataset"]["columns"].update(choices="choices", target="target")
    with _workdir() as d:
        (d / f"data.{fmt}").write_bytes(raw)
        (d / "t.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        rc, _, err = eval_task(d / "t.yaml")
        assert_clean(rc, err)
        # the same file through --data-files
        rc, _, err = cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--data-files", f"harmful_rate={d / f'data.{fmt}'}",
                         "--output", "out2", "--no-cache", "--limit", "3")
        assert_clean(rc, err)


gen_values = st.one_of(values, st.dictionaries(st.sampled_from(["temperature", "top_p", "seed", "max_new_tokens", "stop", "x"]),
                                                st.one_of(INTERESTING, values), max_size=4))


@FUZZ
@given(gens=st.lists(gen_values, min_size=1, max_size=4))
def test_per_sample_generation_overrides(gens: list[Any]) -> None:
    """``meta.generation`` in the data (per-sample decoding) with random contents."""
    with _workdir() as d:
        _write_rows(d / "d.jsonl", [{"id": f"r{i}", "prompt": f"p{i}", "generation": g} for i, g in enumerate(gens)])
        (d / "t.yaml").write_text("name: t\ndataset: {data_files: d.jsonl, columns: {id: id}, meta_columns: [generation]}\n")
        assert_clean(*eval_task(d / "t.yaml")[::2])


# ---------------------------------------------------------------------------------------------------
# judge YAML (passed as --judges FILE.yaml)

JUDGE_KEYS = ["name", "kind", "description", "version", "params"]


@st.composite
def judge_configs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 4)) == 0:
        return draw(values)
    cfg: dict[str, Any] = {"name": draw(st.sampled_from(["j", "refusal_gcg", "", "x/y"])),
                           "kind": draw(st.one_of(st.sampled_from(["refusal_prefix", "refusal_xstest"]), st.sampled_from(["nope", "bleu"]), text))}
    params = draw(st.dictionaries(st.sampled_from(["prefixes", "match", "case_sensitive", "bogus", "batch_size"]),
                                  st.one_of(INTERESTING, values), max_size=3))
    cfg["params"] = draw(st.one_of(st.just(params), st.just({}), values))
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        cfg[draw(st.one_of(st.sampled_from(JUDGE_KEYS), text))] = draw(values)
    return cfg


@FUZZ
@given(cfg=judge_configs(), garbage=st.one_of(st.none(), st.binary(max_size=100)))
def test_judge_yaml(cfg: Any, garbage: bytes | None) -> None:
    with _workdir() as d:
        j = d / "judge.yaml"
        if garbage is not None:
            j.write_bytes(garbage)
        else:
            j.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        rc, _, err = cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--judges", str(j), "--output", "out", "--no-cache",
                         "--limit", "3")
        assert_clean(rc, err)


# ---------------------------------------------------------------------------------------------------
# a few through a real subprocess (the console entry point, not just main())


@pytest.mark.parametrize("body", [b"\xff\xfe\x00garbage", b"name: [unclosed\n", b"- a\n- b\n", b"name: t\ndataset: {data_files: \"a\\0b\"}\n"])
def test_subprocess_bad_task_yaml_is_one_line(tmp_path: Path, body: bytes) -> None:
    y = tmp_path / "t.yaml"
    y.write_bytes(body)
    r = run_cli("eval", "--model", "dummy", "--tasks", str(y), "--output", str(tmp_path / "o"), "--no-cache")
    assert_clean(r.returncode, r.stderr, ok=(2,))


# ---------------------------------------------------------------------------------------------------
# crashes the fuzzing found, pinned (each was exit 1 "internal error" before the fix)


@pytest.mark.parametrize("data,needle", [
    ('null\n', "line 1: expected a JSON object, got NoneType"),
    ('{"id": "a", "prompt": "x"}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
    ('{"id": "a", "prompt": "x", "refs": "r"}\n{"prompt": "y", "refs": "r"}\n', "record 2: missing column(s) ['id']"),
    ('{"id": null, "prompt": "x", "refs": "r"}\n', "column 'id': expected a sample id"),
    ('{"id": "a", "prompt": {"text": "x"}, "refs": "r"}\n', "column 'prompt': expected a prompt string or a list of chat messages"),
    ('{"id": "a", "prompt": [1, 2], "refs": "r"}\n', "column 'prompt': expected a prompt string or a list of chat messages"),
    ('{"id": "a", "prompt": "x", "refs": {"a": 1}}\n', "column 'refs': expected a string or a list of strings"),
])
def test_pinned_data_crashes(tmp_path: Path, data: str, needle: str) -> None:
    (tmp_path / "d.jsonl").write_text(data)
    (tmp_path / "t.yaml").write_text("name: t\ndataset: {data_files: d.jsonl, columns: {id: id, references: refs}}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "o"), "--no-cache")
    assert_clean(rc, err, ok=(2,))
    assert needle in err and "d.jsonl" in err, err


def test_pinned_chat_prompt_and_scalar_references_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": 1, "prompt": [{"role": "user", "content": "hi"}], "refs": 3}\n'
                                      '{"id": 2, "prompt": 42, "refs": ["a", 1]}\n')
    (tmp_path / "t.yaml").write_text("name: t\ndataset: {data_files: d.jsonl, columns: {id: id, references: refs}}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "o"), "--run-id", "r", "--no-cache")
    assert rc == 0, err
    recs = [json.loads(x) for x in (tmp_path / "o/r/samples.jsonl").read_text().splitlines()]
    assert recs[0]["prompt"] == [{"role": "user", "content": "hi"}] and recs[0]["references"] == ["3"]
    assert recs[1]["prompt"] == [{"role": "user", "content": "42"}] and recs[1]["references"] == ["a", "1"]


def test_pinned_judge_given_as_a_yaml_file(tmp_path: Path) -> None:
    """`--judges FILE.yaml` used to fail when run.json looked the judge up by name in the catalog."""
    j = tmp_path / "starts.yaml"
    j.write_text("name: starts_with_sorry\nkind: refusal_prefix\nparams: {match: start, prefixes: [\"I'm sorry\"]}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", "harmful_rate", "--judges", str(j), "--output", str(tmp_path / "o"),
                     "--run-id", "r", "--no-cache")
    assert rc == 0, err
    info = json.loads((tmp_path / "o/r/run.json").read_text())
    assert info["judges"]["starts_with_sorry"]["kind"] == "refusal_prefix" and len(info["judges"]["starts_with_sorry"]["hash"]) == 16
    rec = json.loads((tmp_path / "o/r/samples.jsonl").read_text().splitlines()[0])
    assert rec["judgments"]["starts_with_sorry"]["label"] in ("refusal", "compliance")


def test_pinned_nul_byte_in_data_path(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text('name: t\ndataset: {data_files: "a\\0b.jsonl"}\n')
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "o"), "--no-cache")
    assert_clean(rc, err, ok=(2,))
    assert "dataset.data_files" in err


@pytest.mark.parametrize("scorer,args,needle", [
    ("harmful_rate", "{refusal_judge: 5}", "judge name(s) [5] must be non-empty strings"),
    ("harmful_rate", "{refusal_judge: [a]}", "must be non-empty strings"),
    ("multiple_choice", "{metrics: 5}", "field 'scorer_args': TypeError"),
    ("harmful_rate", "{label_field: [a]}", "scorer 'harmful_rate' failed (TypeError"),
])
def test_pinned_bad_scorer_args(tmp_path: Path, scorer: str, args: str, needle: str) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": "a", "prompt": "x", "label": "harmful"}\n')
    (tmp_path / "t.yaml").write_text(f"name: t\ndataset: {{data_files: d.jsonl, meta_columns: [label]}}\nscorer: {scorer}\nscorer_args: {args}\n")
    rc, _, err = cli("eval", "--model", "dummy", "--tasks", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "o"), "--no-cache")
    assert_clean(rc, err, ok=(2,))
    assert needle in err, err


# ---------------------------------------------------------------------------------------------------
# gate rules YAML and corrupted run folders (alignbench gate)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gateruns")
    for run_id, refuse in (("base", "0.6"), ("cand", "0.3")):
        rc, _, err = cli("eval", "--model", "dummy", "--model-args", f"refuse={refuse}", "--tasks", "harmful_rate",
                         "--output", str(d), "--run-id", run_id, "--no-cache")
        assert rc == 0, err
    return d


def assert_gate_clean(rc: int, err: str) -> None:
    """0 pass, 1 a gate failed (each failure one 'gate failed' line), 2 one-line usage error; never an internal error."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert rc in (0, 1, 2), (rc, err)
    if rc == 1:
        assert err.strip() and all(x.startswith("alignbench: gate failed: ") for x in err.strip().splitlines()), err
    if rc == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("alignbench"), err


RULE_KEYS = ["task", "metric", "name", "category", "max", "min", "max_increase", "max_decrease", "alpha"]
rule_values = st.one_of(st.sampled_from(["harmful_rate", "refusal_rate", "over_refusal_rate", "burglary", "nope", "by_category"]),
                        st.floats(-2, 2), st.just(0.05), INTERESTING, values)


@st.composite
def gate_files(draw: st.DrawFn) -> Any:
    roll = draw(st.integers(0, 5))
    if roll == 0:
        return draw(values)
    if roll == 1:
        return {"gates": draw(values)}
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {"task": "harmful_rate", "metric": draw(st.sampled_from(["harmful_rate", "refusal_rate", "over_refusal_rate"])),
                                draw(st.sampled_from(["max", "min", "max_increase", "max_decrease"])): draw(st.floats(0, 1))}
        for _ in range(draw(st.integers(0, 3))):
            rule[draw(st.one_of(st.sampled_from(RULE_KEYS), text))] = draw(rule_values)
        rules.append(rule)
    return {"gates": rules}


@FUZZ
@given(rules=gate_files(), baseline=st.booleans(), garbage=st.one_of(st.none(), st.binary(max_size=60)))
def test_gate_rules_yaml(two_runs: Path, rules: Any, baseline: bool, garbage: bytes | None) -> None:
    with _workdir() as d:
        g = d / "gates.yaml"
        if garbage is not None:
            g.write_bytes(garbage)
        else:
            g.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
        argv = ["gate", "--candidate", str(two_runs / "cand"), "--rules", str(g), "--junit", str(d / "j" / "junit.xml")]
        rc, _, err = cli(*argv, *(["--baseline", str(two_runs / "base")] if baseline else []))
        assert_gate_clean(rc, err)


RUN_FILES = ["run.json", "metrics.json", "samples.jsonl"]
json_docs = st.one_of(values.map(lambda v: json.dumps(v).encode()),
                      st.builds(lambda k, v: json.dumps({"harmful_rate": {k: v}}).encode(), st.sampled_from(["harmful_rate", "by_category", "x"]), values),
                      st.builds(lambda v, n: json.dumps({"harmful_rate": {"harmful_rate": {"value": v, "n": n}}}).encode(), values, values),
                      st.builds(lambda m, c: json.dumps({"task": "harmful_rate", "sample_id": "h001", "metrics": m, "category": c}).encode(),
                                st.one_of(values, st.dictionaries(st.sampled_from(["harmful_rate", "refusal_rate"]), values, max_size=2)), values),
                      st.binary(max_size=80))


def _corrupt(two_runs: Path, d: Path, which: str, content: bytes, side: str, lines: bool) -> None:
    """Copy the two runs into ``d`` and overwrite one file of one of them (or one line of its samples.jsonl)."""
    import shutil

    for r in ("base", "cand"):
        shutil.copytree(two_runs / r, d / r)
    target = d / side / which
    if which == "samples.jsonl" and lines:
        recs = target.read_bytes().splitlines(keepends=True)
        recs[len(recs) // 2] = content.replace(b"\n", b" ") + b"\n"
        target.write_bytes(b"".join(recs))
    else:
        target.write_bytes(content)


@FUZZ
@given(which=st.sampled_from(RUN_FILES), content=json_docs, side=st.sampled_from(["cand", "base"]), lines=st.booleans())
def test_gate_on_corrupted_run_folders(two_runs: Path, which: str, content: bytes, side: str, lines: bool) -> None:
    with _workdir() as d:
        _corrupt(two_runs, d, which, content, side, lines)
        (d / "g.yaml").write_text("gates:\n  - {task: harmful_rate, metric: harmful_rate, max: 0.9, max_increase: 0.5, alpha: 0.05}\n")
        rc, _, err = cli("gate", "--baseline", str(d / "base"), "--candidate", str(d / "cand"), "--rules", str(d / "g.yaml"))
        assert_gate_clean(rc, err)


@settings(FUZZ, max_examples=15)
@given(which=st.sampled_from(RUN_FILES), content=json_docs, side=st.sampled_from(["cand", "base"]), lines=st.booleans(),
       fmt=st.sampled_from(["md", "html"]))
def test_report_on_corrupted_run_folders(two_runs: Path, which: str, content: bytes, side: str, lines: bool, fmt: str) -> None:
    with _workdir() as d:
        _corrupt(two_runs, d, which, content, side, lines)
        rc, _, err = cli("report", str(d / "base"), str(d / "cand"), "--format", fmt, "--out", str(d / f"r.{fmt}"))
        assert_clean(rc, err)


# ---------------------------------------------------------------------------------------------------
# `alignbench judge` / `judge-eval` input files

judge_lines = st.one_of(
    values.map(lambda v: json.dumps(v)),
    st.fixed_dictionaries({"prompt": st.one_of(st.text(max_size=10), values), "response": st.one_of(st.text(max_size=10), values)},
                          optional={"references": values, "label": values, "meta": values, "judgments": values,
                                    "id": values, "category": values}).map(json.dumps),
    st.text(max_size=20),
)


@FUZZ
@given(lines=st.lists(judge_lines, max_size=5), raw=st.one_of(st.none(), st.binary(max_size=60)), resume=st.booleans())
@example(lines=['{"prompt": "", "response": "", "judgments": null, "label": 0}'], raw=None, resume=False)
def test_judge_and_judge_eval_inputs(lines: list[str], raw: bytes | None, resume: bool) -> None:
    with _workdir() as d:
        f = d / "in.jsonl"
        if raw is not None:
            f.write_bytes(raw)
        else:
            f.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if resume:  # a stale progress file of some other content
            (d / "out.jsonl.partial").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
        rc, _, err = cli("judge", "--judges", "refusal_gcg,bleu,exact_match", "--input", str(f), "--output", str(d / "out.jsonl"),
                         *(["--resume"] if resume else []))
        assert_judge_clean(rc, err)
        rc, _, err = cli("judge-eval", "--judge", "refusal_xstest", "--input", str(f))
        assert_clean(rc, err, ok=(0, 1, 2))


def assert_judge_clean(rc: int, err: str) -> None:
    """`judge` prints a per-judge summary and notes on stderr on success: the whole stderr must be free of
    tracebacks and internal errors, and its error lines (the summary left out) must be one usage error."""
    assert "Traceback" not in err and "internal error" not in err, err
    errors = "".join(x + "\n" for x in err.splitlines() if "error" in x and not x.startswith(("refusal_gcg\t", "bleu\t", "exact_match\t")))
    assert_clean(rc, errors)


def test_judge_check_sees_a_traceback_among_summary_lines() -> None:
    summary = "refusal_gcg\t3 judged\n"
    assert_judge_clean(0, summary)
    with pytest.raises(AssertionError):
        assert_judge_clean(0, summary + 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 1\n')
