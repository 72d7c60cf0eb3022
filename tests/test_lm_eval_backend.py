"""The ``lm_eval`` backend: lm-eval's ``hf`` model on the tiny test model, against torch and alignbench's ``hf``."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignbench.backends.base import BackendOptions, load_backend
from alignbench.errors import UsageError
from alignbench.types import GenerationParams, GenerationRequest, LoglikelihoodRequest

pytest.importorskip("lm_eval")
torch = pytest.importorskip("torch")

PAIRS = [("What is the capital of France?", " Paris"), ("The quick brown", " fox jumps over"),
         ("I'm sorry,", " but I can't help with that request."), ("yes no", " maybe")]


@pytest.fixture(scope="module")
def lm_eval_backend(tiny_model_dir: Path):
    torch.set_num_threads(1)
    b = load_backend("lm_eval:hf", {"pretrained": str(tiny_model_dir), "device": "cpu", "dtype": "float32"}, BackendOptions(batch_size=4))
    yield b
    b.close()


def _torch_loglikelihood(model_dir: Path, context: str, continuation: str) -> tuple[float, bool]:
    """log P(continuation | context) straight from the model's logits (tokenize whole, split at the context)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    n_ctx = len(tok(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
    targets = whole[n_ctx:]
    rows = logp[n_ctx - 1 : len(whole) - 1]
    total = float(sum(rows[i, t] for i, t in enumerate(targets)))
    greedy = all(int(rows[i].argmax()) == t for i, t in enumerate(targets))
    return total, greedy


def test_loglikelihood_equals_a_direct_torch_computation(lm_eval_backend, tiny_model_dir: Path) -> None:
    got = lm_eval_backend.loglikelihood([LoglikelihoodRequest(c, x) for c, x in PAIRS])
    for (c, x), ll in zip(PAIRS, got):
        lp, greedy = _torch_loglikelihood(tiny_model_dir, c, x)
        assert ll.logprob == pytest.approx(lp, abs=1e-4) and ll.is_greedy == greedy
        assert ll.num_tokens >= 1


def test_loglikelihood_equals_the_hf_backend(lm_eval_backend, tiny_model_dir: Path) -> None:
    hf = load_backend(f"hf:{tiny_model_dir}", {"device": "cpu", "dtype": "float32"}, BackendOptions(batch_size=4))
    reqs = [LoglikelihoodRequest(c, x) for c, x in PAIRS]
    ours, theirs = hf.loglikelihood(reqs), lm_eval_backend.loglikelihood(reqs)
    assert [r.logprob for r in theirs] == pytest.approx([r.logprob for r in ours], abs=1e-5)
    assert [r.is_greedy for r in theirs] == [r.is_greedy for r in ours]
    assert [r.num_tokens for r in theirs] == [r.num_tokens for r in ours]
    # greedy generation agrees too, chat prompts through the same chat template
    gens = [GenerationRequest(prompt=[{"role": "user", "content": "How do I bake bread?"}], params=GenerationParams(max_new_tokens=6)),
            GenerationRequest(prompt="The quick brown fox", params=GenerationParams(max_new_tokens=6))]
    assert [g.text for g in lm_eval_backend.generate(gens)] == [g.text for g in hf.generate(gens)]
    hf.close()


def test_generation_uses_chat_template_and_stop_sequences(lm_eval_backend) -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]
    assert lm_eval_backend.render(msgs) == "<|system|>Be brief.\n<|user|>What is the capital of France?\n<|assistant|>"
    [free] = lm_eval_backend.generate([GenerationRequest(prompt=msgs, params=GenerationParams(max_new_tokens=12))])
    assert isinstance(free.text, str) and free.text
    stop = free.text[len(free.text) // 2 :][:2] or free.text[:1]
    [cut] = lm_eval_backend.generate([GenerationRequest(prompt=msgs, params=GenerationParams(max_new_tokens=12, stop=(stop,)))])
    assert stop not in cut.text and free.text.startswith(cut.text)


def test_fingerprint_and_errors(lm_eval_backend, tiny_model_dir: Path) -> None:
    fp = lm_eval_backend.fingerprint()
    assert fp["id"] == "lm_eval:hf" and len(fp["hash"]) == 16
    with pytest.raises(UsageError, match=r"unknown lm-eval model 'hff'; did you mean 'hf'"):
        load_backend("lm_eval:hff", {"pretrained": str(tiny_model_dir)})
    with pytest.raises(UsageError, match=r"--model-args for lm_eval:hf: .*no_such_arg"):
        load_backend("lm_eval:hf", {"pretrained": str(tiny_model_dir), "device": "cpu", "no_such_arg": 1})


def test_multiple_choice_eval_through_lm_eval(lm_eval_backend, tiny_model_dir: Path, tmp_path: Path) -> None:
    import json

    from alignbench.run.evaluate import run_eval
    from alignbench.run.settings import EvalConfig

    from conftest import read_jsonl

    rows = [{"id": str(i), "question": q, "choices": [" Paris", " London"], "target": 0}
            for i, q in enumerate(["What is the capital of France?", "Capital of France:"])]
    (tmp_path / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "mc.yaml").write_text("name: mc\noutput_type: multiple_choice\ndataset:\n  data_files: mc.jsonl\n"
                                      "  columns: {id: id, prompt: question, choices: choices, target: target}\nprompt:\n  chat: false\n")
    cfg = EvalConfig(model="lm_eval:hf", tasks=str(tmp_path / "mc.yaml"), output=str(tmp_path / "out"), run_id="r", no_cache=True)
    own = load_backend("lm_eval:hf", {"pretrained": str(tiny_model_dir), "device": "cpu", "dtype": "float32"})
    rd = run_eval(cfg, backend=own)  # the eval loop closes its backend
    recs = read_jsonl(rd.samples_file)
    expected = lm_eval_backend.loglikelihood([LoglikelihoodRequest(r["question"], " " + c) for r in rows for c in r["choices"]])
    assert [ll for r in recs for ll in r["loglikelihoods"]] == pytest.approx([e.logprob for e in expected])
    assert rd.read_run()["model_fingerprint"]["id"] == "lm_eval:hf"
