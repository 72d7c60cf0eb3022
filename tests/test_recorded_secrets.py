"""Credentials in a URL, or echoed by a server, reach no file alignbench writes and nothing it prints.

``base_url=http://user:password@host/v1`` is recorded without its ``user:password@`` (run.json's command,
config and fingerprint, compare.json's command, error lines); secret-looking query parameters of any URL
recorded are masked; a response that echoes the request's Authorization header is stored with the key
cut out (samples.jsonl and the generation cache).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from conftest import run_main
from openai_server import OpenAIServer


@pytest.fixture
def task(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i}", "prompt": f"Request {i}", "label": "harmful" if i % 2 else "benign"} for i in range(4)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "t.yaml"
    y.write_text("name: t\ndataset:\n  data_files: d.jsonl\n  columns: {id: id}\n  meta_columns: [label]\njudges: [refusal_gcg]\n")
    return y


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_url_credentials_are_not_recorded(task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    password = f"pw-{secrets.token_hex(8)}"
    with OpenAIServer() as srv:
        base = srv.base_url
        url = base.replace("http://", f"http://alice:{password}@")
        rc, _, err = run_main("eval", "--model", "openai:test-model", "--model-args", f"base_url={url},max_retries=0", "--tasks", str(task),
                              "--output", str(tmp_path / "o"), "--run-id", "r", "--cache", str(tmp_path / "c.sqlite"))
        assert rc == 0, err
        assert any(r.headers.get("authorization", "").startswith("Basic ") for r in srv.requests)  # the credentials were used
    info = json.loads((tmp_path / "o" / "r" / "run.json").read_text())
    assert info["config"]["model_args"]["base_url"] == base
    assert f"base_url={base},max_retries=0" in info["command"]
    assert password.encode() not in _all_bytes(tmp_path / "o") and "alice" not in json.dumps(info) and password not in err
    # the same URL on a server that is not there: the error line and run.json's error hold no credentials either
    dead = f"http://alice:{password}@127.0.0.1:9/v1"
    rc, _, err = run_main("eval", "--model", "openai:test-model", "--model-args", f"base_url={dead},max_retries=0", "--tasks", str(task),
                          "--output", str(tmp_path / "o"), "--run-id", "dead", "--no-cache")
    assert rc == 3 and password not in err and "alice" not in err, err
    assert password.encode() not in _all_bytes(tmp_path / "o")


def test_a_response_echoing_the_key_is_stored_without_it(task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"sk-test-{secrets.token_hex(16)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with OpenAIServer(lambda req: f"Your request carried {req.headers.get('authorization')}.", api_key=key) as srv:
        rc, _, err = run_main("eval", "--model", "openai:test-model", "--model-args", f"base_url={srv.base_url}", "--tasks", str(task),
                              "--output", str(tmp_path / "o"), "--run-id", "r", "--cache", str(tmp_path / "c.sqlite"))
        assert rc == 0, err
    recs = [json.loads(x) for x in (tmp_path / "o" / "r" / "samples.jsonl").read_text().splitlines()]
    assert [r["response"] for r in recs] == ["Your request carried Bearer ***."] * 4
    assert key.encode() not in _all_bytes(tmp_path)  # run folder, SQLite cache and its WAL


@pytest.mark.parametrize("url,want", [
    ("http://u:p@h:8000/v1", "http://h:8000/v1"),
    ("https://api.example/v1?api-key=abc&deployment=x", "https://api.example/v1?api-key=***&deployment=x"),
    ("https://h/v1?token=t1;sig=s2&X-Amz-Signature=s3&X-Amz-Credential=c4&page=2", "https://h/v1?token=***;sig=***&X-Amz-Signature=***&X-Amz-Credential=***&page=2"),
    ("https://h/v1?access_token=&q=1", "https://h/v1?access_token=&q=1"),  # nothing to hide
    ("https://h/v1?max_tokens=5", "https://h/v1?max_tokens=5"),  # a count, not a secret
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://u:p@[::1]:8000/v1", "http://[::1]:8000/v1"),
])
def test_every_recorded_url_is_scrubbed(url: str, want: str) -> None:
    from alignbench.backends.openai_client import public_url
    from alignbench.run.provenance import scrub, scrub_argv

    assert scrub({"base_url": url, "nested": [f"see {url} now"]}) == {"base_url": want, "nested": [f"see {want} now"]}
    assert scrub_argv(["alignbench", "eval", "--model-args", f"base_url={url},timeout=5"]) == \
        ["alignbench", "eval", "--model-args", f"base_url={want},timeout=5"]
    assert public_url(url) == want.rstrip("/")


def test_compare_records_its_command_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compare_factory import make_runs

    a, b = make_runs(tmp_path, {"x": lambda i: 2, "y": lambda i: 4}, n=4)
    password = f"pw-{secrets.token_hex(8)}"
    with OpenAIServer(lambda req: "VERDICT: A") as srv:
        base = srv.base_url
        url = base.replace("http://", f"http://bob:{password}@")
        rc, _, err = run_main("compare", str(a), str(b), "--judge", "jury_pairwise", "--judge-model", "jury_pairwise=openai:j",
                              "--judge-model-args", f"base_url={url}", "--output", str(tmp_path / "c"), "--run-id", "c")
        assert rc == 0, err
    assert password.encode() not in _all_bytes(tmp_path / "c")
    assert f"base_url={base}" in json.loads((tmp_path / "c" / "c" / "compare.json").read_text())["command"]
