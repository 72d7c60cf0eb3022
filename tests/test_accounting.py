"""Per-sample tokens in/out and finish reason from each backend that can tell, per-task truncation_rate,
run totals (model calls, judge-model calls, tokens) and the warning when many answers were cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import OpenAIServer, tokenize

from conftest import read_jsonl, run_main

LONG = "one two three four five six seven eight nine ten"


@pytest.fixture
def task(tmp_path: Path) -> Path:
    rows = [{"id": f"s{i}", "prompt": f"Request number {i}", "label": "harmful" if i % 2 else "benign"} for i in range(5)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    y = tmp_path / "t.yaml"
    y.write_text("name: t\ndataset:\n  data_files: d.jsonl\n  columns: {id: id}\n  meta_columns: [label]\n"
                 f"judges: [refusal_gcg, {tmp_path / 'judges' / 'jury.yaml'}]\nscorer: harmful_rate\n")
    return y


def _jury(tmp_path: Path, base_url: str) -> None:
    (tmp_path / "judges").mkdir(exist_ok=True)
    (tmp_path / "judges" / "rubric.j2").write_text("Rate 1-5.\n{{ prompt }}\n{{ response }}\nEnd with 'VERDICT: <1-5>'.")
    (tmp_path / "judges" / "jury.yaml").write_text(
        f"name: jury\nkind: llm_rubric\nparams:\n  models: [openai:judge-a, openai:judge-b]\n"
        f"  model_args: {{base_url: '{base_url}', max_retries: 0}}\n  template: rubric.j2\n  scale: '1-5'\n  cache: false\n")


def _handler(long_ids: set[str]):
    def answer(req) -> str:
        if req.model.startswith("judge"):
            return "Fine.\nVERDICT: 4"
        return LONG if req.text.split()[-1] in long_ids else "Short answer."
    return answer


def _eval(srv: OpenAIServer, task: Path, out: Path, run_id: str, *extra: str):
    return run_main("eval", "--model", "openai:m", "--model-args", f"base_url={srv.base_url},max_retries=0", "--tasks", task,
                    "--max-new-tokens", "4", "--output", out, "--run-id", run_id, *extra)


def test_openai_usage_and_finish_reason_reach_samples_metrics_and_run_json(task: Path, tmp_path: Path) -> None:
    with OpenAIServer(_handler({"1", "3"})) as srv:
        _jury(tmp_path, srv.base_url)
        r = _eval(srv, task, tmp_path / "out", "a", "--cache", str(tmp_path / "c.sqlite"))
        assert r.returncode == 0, r.stderr
        recs = read_jsonl(tmp_path / "out" / "a" / "samples.jsonl")
        sent = {q.json["messages"][-1]["content"]: q for q in srv.completion_requests() if q.model == "m"}
        by_id = {x["sample_id"]: x for x in recs}
        assert [by_id[f"s{i}"]["finish_reason"] for i in range(5)] == ["stop", "length", "stop", "length", "stop"]
        assert by_id["s1"]["tokens_out"] == 4 and by_id["s0"]["tokens_out"] == len(tokenize("Short answer."))
        for x in recs:  # the server's usage.prompt_tokens, as the request carried the prompt
            assert x["tokens_in"] == len(tokenize(sent[x["prompt"][-1]["content"]].json["messages"][-1]["content"]))
        m = json.loads((tmp_path / "out" / "a" / "metrics.json").read_text())["t"]["truncation_rate"]
        assert m["value"] == pytest.approx(2 / 5) and m["n"] == 5
        assert "alignbench: warning: task t: 40% of 5 answers hit max_new_tokens" in r.stderr
        info = json.loads((tmp_path / "out" / "a" / "run.json").read_text())
        assert info["model_calls"] == 5 and info["judge_model_calls"] == 10  # two judge models x five samples
        assert info["tokens"] == {"tokens_in": sum(x["tokens_in"] for x in recs), "tokens_out": sum(x["tokens_out"] for x in recs),
                                  "samples_counted": 5, "samples": 5}
        # served from the cache, the samples keep their accounting
        srv.handler = _handler(set())
        r = _eval(srv, task, tmp_path / "out", "b", "--cache", str(tmp_path / "c.sqlite"))
        assert r.returncode == 0, r.stderr
    again = read_jsonl(tmp_path / "out" / "b" / "samples.jsonl")
    assert all(x["cached"] for x in again)
    strip = lambda rs: [{k: x[k] for k in ("sample_id", "tokens_in", "tokens_out", "finish_reason")} for x in rs]  # noqa: E731
    assert strip(again) == strip(recs)
    assert json.loads((tmp_path / "out" / "b" / "run.json").read_text())["model_calls"] == 0


def test_no_warning_at_or_below_a_fifth(task: Path, tmp_path: Path) -> None:
    with OpenAIServer(_handler({"1"})) as srv:
        _jury(tmp_path, srv.base_url)
        r = _eval(srv, task, tmp_path / "out", "a", "--no-cache")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "a" / "metrics.json").read_text())["t"]["truncation_rate"]["value"] == pytest.approx(0.2)
    assert "hit max_new_tokens" not in r.stderr


def test_replay_of_a_samples_file_keeps_the_accounting(task: Path, tmp_path: Path) -> None:
    with OpenAIServer(_handler({"1", "3"})) as srv:
        _jury(tmp_path, srv.base_url)
        assert _eval(srv, task, tmp_path / "out", "a", "--no-cache").returncode == 0
        r = run_main("eval", "--model", f"replay:{tmp_path / 'out' / 'a' / 'samples.jsonl'}", "--tasks", task,
                     "--output", tmp_path / "out", "--run-id", "r", "--no-cache")
    assert r.returncode == 0, r.stderr
    keys = ("sample_id", "tokens_in", "tokens_out", "finish_reason")
    pick = lambda p: [{k: x[k] for k in keys} for x in read_jsonl(p)]  # noqa: E731
    assert pick(tmp_path / "out" / "r" / "samples.jsonl") == pick(tmp_path / "out" / "a" / "samples.jsonl")


def test_hf_counts_prompt_and_answer_tokens_and_says_length(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from alignbench.backends.base import BackendOptions
    from alignbench.backends.hf import HFBackend
    from alignbench.types import GenerationParams, GenerationRequest

    hf = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompts = ["a b c", "a much longer prompt than the first one"]
    gens = hf.generate([GenerationRequest(prompt=p, params=GenerationParams(max_new_tokens=3)) for p in prompts])
    for p, g in zip(prompts, gens):
        assert g.tokens_in == len(tok(p).input_ids)
        assert g.finish_reason == ("length" if g.num_tokens == 3 else "stop")
    assert any(g.finish_reason == "length" for g in gens)


def test_default_backend_reports_llama_cpp_usage(tmp_path: Path) -> None:
    r = run_main("eval", "--model", "default", "--tasks", "harmful_rate", "--limit", "2", "--max-new-tokens", "3",
                 "--output", tmp_path, "--run-id", "d", "--no-cache")
    assert r.returncode == 0, r.stderr
    recs = read_jsonl(tmp_path / "d" / "samples.jsonl")
    assert all(x["tokens_in"] > 10 and x["tokens_out"] <= 3 and x["finish_reason"] in ("stop", "length") for x in recs)
    assert any(x["finish_reason"] == "length" for x in recs)  # 3 tokens cut a SmolLM2 answer
    assert "hit max_new_tokens" in r.stderr
