"""OPENAI_API_KEY never leaks: not into any file a command writes, not to stdout/stderr, not into errors.

With a random ``sk-test-...`` key in the environment, eval (openai backend on the local test server,
generation cache on), an LLM-jury judge on the same server (in eval and in `alignbench judge`), report
(md + html) and gate (with JUnit)
run; then servers that answer 401/400/500 with the Authorization header echoed in the error message.
Every byte written under the test folder (run folders, SQLite cache with its WAL, reports, JUnit)
and every byte of stdout/stderr is searched for the key (and for its random tail alone).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from conftest import run_cli
from conftest import run_main as cli
from openai_server import OpenAIServer, Reply, default_text



@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    k = f"sk-test-{secrets.token_hex(16)}"
    monkeypatch.setenv("OPENAI_API_KEY", k)
    return k


@pytest.fixture
def task(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i}", "prompt": f"Request {i}", "label": "harmful" if i % 2 else "benign", "ref": "Sure, here it is."}
            for i in range(6)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "t.yaml"
    y.write_text("name: t\ndataset:\n  data_files: d.jsonl\n  columns: {id: id, references: ref}\n  meta_columns: [label]\n"
                 "judges: [refusal_gcg, bleu]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    return y


def _jury_yaml(tmp_path: Path, base_url: str) -> Path:
    (tmp_path / "rubric.j2").write_text("Rate 1-5.\n{{ prompt }}\n{{ response }}\nEnd with 'VERDICT: <1-5>'.")
    j = tmp_path / "jury.yaml"
    j.write_text(f"name: keyjury\nkind: llm_rubric\nparams:\n  models: [openai:judge-a, openai:judge-b]\n"
                 f"  model_args: {{base_url: '{base_url}', max_retries: 0}}\n  template: rubric.j2\n  scale: '1-5'\n")
    return j


def _assert_no_key(key: str, folder: Path, *texts: str) -> None:
    tail = key.split("sk-test-")[1]
    for t in texts:
        assert key not in t and tail not in t, t[-500:]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        assert key.encode() not in data and tail.encode() not in data, p
        assert key.encode("utf-16-le") not in data, p


def _handler(req) -> str:
    if req.model and req.model.startswith("judge"):
        return "Fine.\nVERDICT: 4"
    return default_text(req)


def test_key_never_written_through_eval_jury_report_gate(key: str, task: Path, tmp_path: Path) -> None:
    with OpenAIServer(_handler, api_key=key) as srv:
        jury = _jury_yaml(tmp_path, srv.base_url)
        outs = []
        for run_id in ("a", "b"):
            rc, out, err = cli("eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url}", "--tasks", str(task),
                               "--judges", str(jury), "--output", str(tmp_path / "runs"), "--run-id", run_id,
                               "--cache", str(tmp_path / "cache.sqlite"), "--json")
            assert rc == 0, err
            outs += [out, err]
        (tmp_path / "stored.jsonl").write_text('{"prompt": "Request 1", "response": "Sure.", "references": ["Sure, here it is."]}\n')
        rc, out, err = cli("judge", "--judges", f"bleu,{jury}", "--input", str(tmp_path / "stored.jsonl"), "--output", str(tmp_path / "judged.jsonl"))
        assert rc == 0, err
        outs += [out, err]
        assert json.loads((tmp_path / "judged.jsonl").read_text())["judgments"]["keyjury"]["score"] == 4.0
        assert all(r.headers.get("authorization") == f"Bearer {key}" for r in srv.requests)  # it was really used
        assert any(r.model == "judge-b" for r in srv.requests)
    rec = json.loads((tmp_path / "runs/a/samples.jsonl").read_text().splitlines()[0])
    assert rec["judgments"]["keyjury"]["error"] is None and rec["judgments"]["keyjury"]["score"] == 4.0
    for fmt in ("md", "html"):
        rc, out, err = cli("report", str(tmp_path / "runs/a"), str(tmp_path / "runs/b"), "--out", str(tmp_path / f"report.{fmt}"))
        assert rc == 0, err
        outs += [out, err]
    (tmp_path / "gates.yaml").write_text("gates:\n  - {task: t, metric: compliance_rate, max: 1.0, max_increase: 0.5}\n")
    rc, out, err = cli("gate", "--baseline", str(tmp_path / "runs/a"), "--candidate", str(tmp_path / "runs/b"),
                       "--rules", str(tmp_path / "gates.yaml"), "--junit", str(tmp_path / "junit.xml"))
    assert rc == 0, err
    outs += [out, err]
    assert (tmp_path / "cache.sqlite").is_file() and (tmp_path / "report.html").is_file() and (tmp_path / "junit.xml").is_file()
    _assert_no_key(key, tmp_path, *outs)


def _echo(status: int):
    def handler(req) -> Reply:
        auth = req.headers.get("authorization", "")
        return Reply(status, {"error": {"message": f"Incorrect API key provided: {auth} (header was '{auth}')", "type": "auth"}})
    return handler


@pytest.mark.parametrize("status", [401, 400, 500])
def test_errors_echoing_the_authorization_header_are_redacted(key: str, task: Path, tmp_path: Path, status: int) -> None:
    with OpenAIServer(_echo(status)) as srv:
        rc, out, err = cli("eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url},max_retries=1,backoff=0.01",
                           "--tasks", str(task), "--output", str(tmp_path / "runs"), "--run-id", "x", "--cache", str(tmp_path / "c.sqlite"))
        assert rc == 3, err
        assert "Incorrect API key provided: Bearer ***" in err
        # the same through a real process with --debug (tracebacks must not carry it either)
        r = run_cli("--debug", "eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url},max_retries=0",
                    "--tasks", str(task), "--output", str(tmp_path / "runs"), "--run-id", "y", "--no-cache",
                    env={"OPENAI_API_KEY": key})
        assert r.returncode == 3, r.stderr
    info = json.loads((tmp_path / "runs/x/run.json").read_text())
    assert info["status"] == "failed" and "***" in info["error"]
    _assert_no_key(key, tmp_path, out, err, r.stdout, r.stderr)


def test_jury_judge_errors_echoing_the_key_are_redacted_in_samples(key: str, task: Path, tmp_path: Path) -> None:
    """A judge model that fails keeps the sample with the judge's error recorded; the error must not carry the key."""
    def handler(req):
        if req.model and req.model.startswith("judge"):
            return _echo(401)(req)
        return default_text(req)

    with OpenAIServer(handler) as srv:
        jury = _jury_yaml(tmp_path, srv.base_url)
        rc, out, err = cli("eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url}", "--tasks", str(task),
                           "--judges", str(jury), "--output", str(tmp_path / "runs"), "--run-id", "j", "--no-cache")
    recs = [json.loads(x) for x in (tmp_path / "runs/j/samples.jsonl").read_text().splitlines()] if rc == 0 else []
    assert rc == 0, err  # judge failures are kept per sample, with the reason
    j = recs[0]["judgments"]["keyjury"]
    assert j["error"] and "Bearer ***" in json.dumps(j)
    assert "keyjury failed on 6 sample(s)" in err
    _assert_no_key(key, tmp_path, out, err)
