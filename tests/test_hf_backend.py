"""The ``hf`` backend on a tiny random Llama: log-likelihoods equal lm-eval's and a direct torch
computation, batching changes nothing, chat templates and stop strings work, fingerprints track
the weights, and the CLI runs it end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from alignbench.backends.base import BackendOptions, load_backend
from alignbench.backends.hf import HFBackend, render_plain_chat
from alignbench.errors import UsageError
from alignbench.types import GenerationParams, GenerationRequest, LoglikelihoodRequest

from conftest import read_jsonl, run_cli

PAIRS = [
    ("The quick ", "brown fox"),  # trailing space moves to the continuation
    ("The quick brown", " fox jumps over"),
    ("What is the capital of France?  ", "Paris"),  # two trailing spaces
    ("I'm sorry, but", " I can't help with that request."),
    ("yes", " no"),
    ("", "hello world"),  # empty context: BOS as the prefix
]

PROMPTS = ["The quick brown", "Sure, here is", "What is the capital of France? Paris is the capital of",
           "How do I bake bread?", "no", "I'm sorry, but I can't help with that request. Mix flour, water"]


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> HFBackend:
    torch.set_num_threads(1)
    return HFBackend(str(tiny_model_dir), BackendOptions(batch_size=8), device="cpu")


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def direct_loglikelihood(model, tok, context: str, continuation: str) -> tuple[float, bool, list[int]]:
    """lm-eval's recipe written out: move trailing spaces, split the whole encoding, sum log_softmax."""
    if context:
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        ctx = tok(context)["input_ids"]
        cont = tok(context + continuation)["input_ids"][len(ctx):]
    else:
        ctx, cont = [tok.bos_token_id], tok(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0]
    lp = torch.log_softmax(logits.float(), dim=-1)[len(ctx) - 1:-1]
    target = torch.tensor(cont)
    return float(lp[torch.arange(len(cont)), target].sum()), bool((lp.argmax(-1) == target).all()), cont


def gen(prompt, **params) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, params=GenerationParams(**{"max_new_tokens": 8, **params}))


# log-likelihood -----------------------------------------------------------------------------------
def test_loglikelihood_equals_direct_torch_computation(hf: HFBackend, reference) -> None:
    model, tok = reference
    got = hf.loglikelihood([LoglikelihoodRequest(c, k) for c, k in PAIRS])
    for (c, k), res in zip(PAIRS, got):
        want, greedy, cont = direct_loglikelihood(model, tok, c, k)
        assert res.logprob == pytest.approx(want, abs=1e-4), (c, k)
        assert res.is_greedy == greedy and res.num_tokens == len(cont)
    # the trailing space really moved: " brown" is one token of the continuation, not two pieces
    assert hf.loglikelihood([LoglikelihoodRequest("The quick ", "brown")])[0].logprob == pytest.approx(
        hf.loglikelihood([LoglikelihoodRequest("The quick", " brown")])[0].logprob, abs=1e-5)


def test_loglikelihood_equals_lm_eval(hf: HFBackend, reference) -> None:
    lm_hf = pytest.importorskip("lm_eval.models.huggingface")
    from lm_eval.api.instance import Instance

    model, tok = reference
    lm = lm_hf.HFLM(pretrained=model, tokenizer=tok, batch_size=4, device="cpu")
    want = lm.loglikelihood([Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(PAIRS)],
                            disable_tqdm=True)
    got = hf.loglikelihood([LoglikelihoodRequest(c, k) for c, k in PAIRS])
    assert [r.logprob for r in got] == pytest.approx([w[0] for w in want], abs=1e-4)
    assert [r.is_greedy for r in got] == [w[1] for w in want]


def _greedy_tokens(model, ids: list[int], n: int) -> list[int]:
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
            out.append(nxt)
    return out


def test_is_greedy(hf: HFBackend, reference) -> None:
    model, tok = reference
    for context in ["The quick brown", "Sure, here is", "Paris is the capital", "How do I", "yes no"]:
        ctx_ids = tok(context)["input_ids"]
        greedy = _greedy_tokens(model, ctx_ids, 3)
        text = tok.decode(greedy)
        if tok(context + text)["input_ids"] == ctx_ids + greedy:
            break
    else:
        pytest.fail("no context whose greedy continuation re-encodes to the same tokens")
    res = hf.loglikelihood([LoglikelihoodRequest(context, text)])[0]
    assert res.is_greedy and res.num_tokens == 3
    # replace the last greedy token by a runner-up that re-encodes to itself: same length, not greedy
    with torch.no_grad():
        logits = model(torch.tensor([ctx_ids + greedy[:2]])).logits[0, -1]
    for cand in logits.topk(20).indices[1:].tolist():
        other = greedy[:2] + [cand]
        other_text = tok.decode(other)
        if tok(context + other_text)["input_ids"][len(ctx_ids):] == other:
            break
    else:
        pytest.fail("no runner-up token that re-encodes to itself")
    res2 = hf.loglikelihood([LoglikelihoodRequest(context, other_text)])[0]
    assert not res2.is_greedy and res2.logprob < res.logprob


def test_continuation_logprobs_are_distributions_that_match_loglikelihood(hf: HFBackend) -> None:
    reqs = [LoglikelihoodRequest(c, k) for c, k in PAIRS]
    rows = hf.continuation_logprobs(reqs)
    lls = hf.loglikelihood(reqs)
    vocab = hf.model.config.vocab_size
    for r, ll in zip(rows, lls):
        assert r.logprobs.dtype == np.float32 and r.logprobs.shape == (ll.num_tokens, vocab)
        assert r.token_ids.dtype == np.int64 and len(r.tokens) == ll.num_tokens
        np.testing.assert_allclose(np.exp(r.logprobs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-5)
        assert r.total == pytest.approx(ll.logprob, abs=1e-4)
        assert (r.ranks() == 0).all() == ll.is_greedy
        np.testing.assert_allclose(r.kl(r), 0.0, atol=1e-6)
    assert "".join(rows[0].tokens) == " brown fox"


# batching and order -----------------------------------------------------------------------------
def test_batched_equals_unbatched_and_order_is_kept(hf: HFBackend) -> None:
    reqs = [gen(p) for p in PROMPTS]
    lreqs = [LoglikelihoodRequest(c, k) for c, k in PAIRS] * 2
    hf.batch_size = 1
    try:
        one_gen = [hf.generate([r])[0].text for r in reqs]
        one_ll = [hf.loglikelihood([r])[0].logprob for r in lreqs]
    finally:
        hf.batch_size = 8
    assert len(set(one_gen)) > 2  # different prompts give different texts, so a mix-up would show
    assert [g.text for g in hf.generate(reqs)] == one_gen
    assert [r.logprob for r in hf.loglikelihood(lreqs)] == pytest.approx(one_ll, abs=1e-5)
    # mixed lengths, shuffled: each result still belongs to its request
    perm = [3, 0, 5, 1, 4, 2]
    assert [g.text for g in hf.generate([reqs[i] for i in perm])] == [one_gen[i] for i in perm]


def test_sampling_is_seeded_per_request(hf: HFBackend) -> None:
    hot = [gen(p, temperature=1.0, seed=7, max_new_tokens=6) for p in PROMPTS]
    a = [g.text for g in hf.generate(hot)]
    b = [g.text for g in hf.generate(list(reversed(hot)))][::-1]
    assert a == b  # independent of batch composition and order
    assert hf.generate([hot[2]])[0].text == a[2]
    other = [g.text for g in hf.generate([gen(p, temperature=1.0, seed=8, max_new_tokens=6) for p in PROMPTS])]
    assert other != a
    greedy = [g.text for g in hf.generate([gen(p, max_new_tokens=6) for p in PROMPTS])]
    assert greedy != a


# prompts ------------------------------------------------------------------------------------------
def test_chat_template_is_applied(hf: HFBackend) -> None:
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is the capital of France?"}]
    text, special = hf.render_prompt(msgs)
    assert text == "<|system|>be brief\n<|user|>What is the capital of France?\n<|assistant|>" and special is False
    assert hf.encode_prompt(msgs) == hf.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert hf.render_prompt("plain text") == ("plain text", True)
    # request.system_prompt is added when the conversation has none
    assert hf.render_prompt(msgs[1:], system_prompt="be brief")[0] == text


def test_template_without_system_role_gets_system_merged(tiny_model_dir: Path) -> None:
    b = HFBackend(str(tiny_model_dir), device="cpu")
    b.tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")
    text, _ = b.render_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "[user]S\n\nU[assistant]"


def test_no_template_and_forced_off_render_plain_lines(tiny_model_dir: Path) -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert render_plain_chat(msgs) == "system: S\nuser: U\nassistant:"
    off = HFBackend(str(tiny_model_dir), device="cpu", chat_template=False)
    assert off.render_prompt(msgs) == ("system: S\nuser: U\nassistant:", True)


def test_bos_is_not_added_twice(tiny_model_dir: Path) -> None:
    from tokenizers.processors import TemplateProcessing

    b = HFBackend(str(tiny_model_dir), device="cpu")
    tok = b.tokenizer
    tok._tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    assert b.encode_prompt("hello")[:1] == [tok.bos_token_id]  # a string prompt gets the tokenizer's BOS
    assert b.encode_prompt("<s>hello").count(tok.bos_token_id) == 1
    tok.chat_template = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"
    ids = b.encode_prompt([{"role": "user", "content": "hi"}])
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1


def test_stop_strings_truncate(hf: HFBackend) -> None:
    prompt = "Sure, here is"
    full = hf.generate([gen(prompt, max_new_tokens=16)])[0]
    stop = next(ch for ch in full.text[2:] if ch.isalnum())
    cut = hf.generate([gen(prompt, max_new_tokens=16, stop=(stop,))])[0]
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.num_tokens < full.num_tokens  # generation stopped early, not just cut afterwards


# provenance ---------------------------------------------------------------------------------------
def test_fingerprint_tracks_weights_not_location(hf: HFBackend, tiny_model_dir: Path, tmp_path: Path) -> None:
    from tiny_model import build_tiny_model

    fp = hf.fingerprint()
    assert fp["id"] == f"hf:{tiny_model_dir}" and len(fp["hash"]) == 16
    moved = shutil.copytree(tiny_model_dir, tmp_path / "moved")
    assert HFBackend(str(moved), device="cpu").fingerprint()["hash"] == fp["hash"]
    other = build_tiny_model(tmp_path / "reseeded", seed=1)  # same shapes and file sizes, other weights
    assert HFBackend(str(other), device="cpu").fingerprint()["hash"] != fp["hash"]
    assert HFBackend(str(moved), device="cpu", dtype="bfloat16").fingerprint()["hash"] != fp["hash"]


# bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, args, message", [
    ("hf:/no/such/dir", {}, "no such file or folder"),
    ("hf:./relative/missing", {}, "no such file or folder"),
    ("hf:not-an-org/not-a-cached-model", {}, "pass a local path"),
    ("hf:TINY", {"dtype": "float64"}, "dtype='float64'"),
    ("hf:TINY", {"device": "gpu"}, "device='gpu'"),
    ("hf:TINY", {"gguf_file": "model.gguf"}, "gguf_file=model.gguf: no such file"),
    ("hf:TINY", {"colour": "red"}, "backend 'hf' has no option 'colour'"),
])
def test_bad_model_specs_are_usage_errors(spec: str, args: dict, message: str, tiny_model_dir: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_backend(spec.replace("TINY", str(tiny_model_dir)), args)
    assert message in str(err.value) and "\n" not in str(err.value)


# a whole run ---------------------------------------------------------------------------------------
def test_eval_run_with_hf_spec_records_fingerprint(tiny_model_dir: Path, hf: HFBackend, tmp_path: Path) -> None:
    from alignbench.run.evaluate import run_eval
    from alignbench.run.settings import EvalConfig

    run = run_eval(EvalConfig(model=f"hf:{tiny_model_dir}", model_args={"device": "cpu"}, tasks="harmful_rate", limit=4,
                              max_new_tokens=4, output=str(tmp_path), run_id="r", no_cache=True))
    info = json.loads((run.path / "run.json").read_text())
    assert info["status"] == "complete" and info["model_fingerprint"] == hf.fingerprint()
    recs = read_jsonl(run.path / "samples.jsonl")
    assert recs and len(recs) == info["tasks"]["harmful_rate"]["n_samples"] <= 4
    assert all(isinstance(x["response"], str) and x["judgments"] for x in recs)


@pytest.mark.slow
def test_cli_eval_with_hf_model(tiny_model_dir: Path, hf: HFBackend, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    r = run_cli("eval", "--model", f"hf:{tiny_model_dir}", "--model-args", "device=cpu", "--tasks", "harmful_rate",
                "--limit", "4", "--max-new-tokens", "4", "--output", str(out), "--run-id", "r")
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "r" / "run.json").read_text())
    assert info["status"] == "complete" and info["model_fingerprint"] == hf.fingerprint()
    recs = read_jsonl(out / "r" / "samples.jsonl")
    assert recs and len(recs) == info["tasks"]["harmful_rate"]["n_samples"] <= 4
    assert all(isinstance(x["response"], str) and x["judgments"] for x in recs)


def test_cli_missing_model_folder_exits_2(tmp_path: Path) -> None:
    r = run_cli("eval", "--model", "hf:/no/such/dir", "--tasks", "harmful_rate", "--limit", "1", "--output", str(tmp_path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "/no/such/dir" in lines[0] and "Traceback" not in r.stderr
