"""Token log-probabilities of generations (hf in-process, openai chat/completions) and the verdict
probability read from them, checked against a direct forward pass and the server's numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from alignbench.backends.base import BackendOptions
from alignbench.judges.safety._probs import verdict_probabilities
from alignbench.types import GenerationParams, GenerationRequest

from openai_server import OpenAIServer, Recorded


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path):
    from alignbench.backends.hf import HFBackend

    return HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")


def test_hf_token_logprobs_are_the_models_next_token_distribution(hf) -> None:
    import torch

    prompts = ["The quick brown fox", "How do I bake bread?"]
    gens = hf.generate([GenerationRequest(prompt=p, params=GenerationParams(max_new_tokens=3, logprobs=5)) for p in prompts])
    for p, g in zip(prompts, gens):
        toks = g.token_logprobs
        assert toks is not None and len(toks) == g.num_tokens and "".join(t["token"] for t in toks) == g.text
        ids = hf.encode_prompt(p)
        for step, t in enumerate(toks):
            with torch.inference_mode():
                logits = hf.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            lp = torch.log_softmax(logits, dim=-1)
            best = lp.topk(5)
            assert t["logprob"] == pytest.approx(float(best.values[0]), abs=1e-4)  # greedy: the chosen token is the top one
            expected: dict[str, float] = {}  # the 5 best tokens by text (ids that decode alike add up)
            for v, i in zip(best.values.tolist(), best.indices.tolist()):
                text = hf.tokenizer.decode([i])
                expected[text] = float(torch.logaddexp(torch.tensor(expected[text]), torch.tensor(v))) if text in expected else v
            assert t["top"] == pytest.approx(expected, abs=1e-4)
            ids = ids + [int(best.indices[0])]
    plain = hf.generate([GenerationRequest(prompt=prompts[0], params=GenerationParams(max_new_tokens=3))])[0]
    assert plain.token_logprobs is None and plain.text == gens[0].text


def test_verdict_probability_from_hf_logprobs_renormalises_the_two_words(hf) -> None:
    (g,) = hf.generate([GenerationRequest(prompt="yes or no?", params=GenerationParams(max_new_tokens=1, logprobs=5))])
    first = g.token_logprobs[0]
    ranked = sorted(first["top"].items(), key=lambda kv: -kv[1])
    words = {}
    for tok, _ in ranked:  # two alternatives whose texts are not prefixes of each other
        w = tok.strip().lower()
        if w and all(not (o.startswith(w) or w.startswith(o)) for o in words.values()):
            words[f"label{len(words)}"] = w
        if len(words) == 2:
            break
    if len(words) < 2 or not g.text.strip():
        pytest.skip("the random model's top tokens are whitespace")
    p = verdict_probabilities(g.token_logprobs, g.text, len(g.text) - len(g.text.lstrip()), words)
    if p is None:
        pytest.skip("the chosen token is neither word")
    masses = {lab: sum(math.exp(v) for t, v in first["top"].items() if t.strip().lower() and w.startswith(t.strip().lower()))
              for lab, w in words.items()}
    assert p == pytest.approx({lab: m / sum(masses.values()) for lab, m in masses.items()})


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_openai_token_logprobs_come_from_the_server(endpoint: str) -> None:
    from alignbench.backends.openai import OpenAIBackend

    rec = Recorded("No.", [("No", -0.2, {"No": -0.2, "Yes": -1.9, "Maybe": -3.0}), (".", -0.01, {".": -0.01})])
    with OpenAIServer(lambda req: rec) as srv:
        b = OpenAIBackend("m", base_url=srv.base_url, endpoint=endpoint)
        (g,) = b.generate([GenerationRequest(prompt="q", params=GenerationParams(max_new_tokens=4, logprobs=2))])
        (plain,) = b.generate([GenerationRequest(prompt="q", params=GenerationParams(max_new_tokens=4))])
        sent = srv.completion_requests()
    assert g.text == "No." and [t["token"] for t in g.token_logprobs] == ["No", "."]
    assert g.token_logprobs[0]["logprob"] == -0.2 and g.token_logprobs[0]["top"] == {"No": -0.2, "Yes": -1.9}  # k = 2
    assert plain.token_logprobs is None
    if endpoint == "chat":
        assert sent[0].json["logprobs"] is True and sent[0].json["top_logprobs"] == 2 and "logprobs" not in sent[1].json
    else:
        assert sent[0].json["logprobs"] == 2 and "logprobs" not in sent[1].json
    p = verdict_probabilities(g.token_logprobs, g.text, 0, {"yes": "yes", "no": "no"})
    assert p == pytest.approx({"no": math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.9)),
                               "yes": math.exp(-1.9) / (math.exp(-0.2) + math.exp(-1.9))})


def test_cached_generations_keep_their_logprobs(tmp_path: Path) -> None:
    from alignbench.backends.cache import CachedBackend, GenerationCache
    from alignbench.backends.openai import OpenAIBackend

    rec = Recorded("safe", [("safe", -0.1, {"safe": -0.1, "unsafe": -2.5})])
    req = GenerationRequest(prompt="q", params=GenerationParams(max_new_tokens=2, logprobs=3))
    with OpenAIServer(lambda r: rec) as srv:
        cache = GenerationCache(tmp_path / "c.sqlite")
        b = CachedBackend(OpenAIBackend("m", base_url=srv.base_url), cache)
        first, again = b.generate([req])[0], b.generate([req])[0]
        cache.close()
    assert again.cached and again.token_logprobs == first.token_logprobs and b.model_calls == 1


def test_probability_needs_tokens_that_spell_the_text() -> None:
    toks = [{"token": "un", "logprob": -0.1, "top": {"un": -0.1, "safe": -2.0}}, {"token": "safe", "logprob": 0.0, "top": {}}]
    words = {"unsafe": "unsafe", "safe": "safe"}
    assert verdict_probabilities(toks, "unsafe", 0, words) == pytest.approx(
        {"unsafe": math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.0)), "safe": math.exp(-2.0) / (math.exp(-0.1) + math.exp(-2.0))})
    assert verdict_probabilities(toks, "other text", 0, words) is None
    assert verdict_probabilities(None, "unsafe", 0, words) is None
    assert verdict_probabilities([{"token": "The", "logprob": -0.1, "top": {"The": -0.1}}], "The", 0, words) is None
