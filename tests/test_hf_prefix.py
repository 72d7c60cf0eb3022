"""Shared-prefix log-likelihood scoring in the ``hf`` backend: every shared prompt prefix runs once, the
numbers equal the full computation (float32, within 1e-4 nats; in practice a few ulps), left
truncation and odd requests work, and a model whose cache cannot be reused is scored in full after
one message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alignbench.backends._prefix import MIN_SHARED, plan
from alignbench.backends.base import BackendOptions
from alignbench.backends.hf import HFBackend
from alignbench.types import LoglikelihoodRequest

PREAMBLE = ("Q: What is the capital of France?\nA: Paris is the capital of France.\n\n"
            "Q: How do I bake bread?\nA: Mix flour, water, yeast and salt, then knead and bake.\n\n")
QUESTIONS = ["Can you help?", "The quick brown fox jumps over the lazy dog?", "yes or no?", "What is true?"]
CHOICES = [" I'm sorry, but I can't help with that request.", " Sure, here is a helpful answer", " no", " maybe true",
           " I don't know"]


def requests() -> list[LoglikelihoodRequest]:
    reqs = [LoglikelihoodRequest(context=f"{PREAMBLE}Q: {q}\nA:", continuation=c) for q in QUESTIONS for c in CHOICES]
    reqs += [LoglikelihoodRequest(context="", continuation="hello world"),  # empty context: plain path
             LoglikelihoodRequest(context="yes", continuation=" no"),
             LoglikelihoodRequest(context="The quick ", continuation="brown fox"),  # trailing space moves
             LoglikelihoodRequest(context=f"{PREAMBLE}Q: yes or no?\nA:", continuation=" no")]  # a repeat
    return reqs


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> HFBackend:
    torch.set_num_threads(1)
    return HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")


def both(b: HFBackend, reqs: list[LoglikelihoodRequest]):
    b.shared_prefix = False
    full = b.loglikelihood(reqs)
    b.shared_prefix = True
    shared = b.loglikelihood(reqs)
    return full, shared


def tokens_through(b: HFBackend, fn) -> int:
    """Token positions the model's embedding layer sees while ``fn`` runs."""
    seen = [0]
    handle = b.model.get_input_embeddings().register_forward_hook(lambda m, inp, out: seen.__setitem__(0, seen[0] + inp[0].numel()))
    try:
        fn()
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_shared_prefix_scores_equal_the_full_computation(tiny_model_dir: Path, batch_size: int) -> None:
    b = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=batch_size), device="cpu")
    full, shared = both(b, requests())
    assert b.shared_prefix and b._prefix_verified
    assert [r.num_tokens for r in full] == [r.num_tokens for r in shared]
    assert [r.is_greedy for r in full] == [r.is_greedy for r in shared]
    assert max(abs(f.logprob - s.logprob) for f, s in zip(full, shared)) < 1e-4
    assert shared[2 * len(CHOICES) + 2].logprob == shared[-1].logprob  # order kept, repeats alike


def test_each_shared_prefix_runs_once(backend: HFBackend) -> None:
    reqs = requests()[: len(QUESTIONS) * len(CHOICES)]
    backend.shared_prefix = False
    n_full = tokens_through(backend, lambda: backend.loglikelihood(reqs))
    backend.shared_prefix = True
    backend.loglikelihood(reqs[:2])  # the first use checks two requests against the full computation
    n_shared = tokens_through(backend, lambda: backend.loglikelihood(reqs))
    enc = backend._encode
    pre = len(enc(PREAMBLE + "Q: "))
    question = max(len(enc(r.context)) - pre for r in reqs)
    choice = max(len(enc(r.context + r.continuation)) - len(enc(r.context)) for r in reqs)
    assert n_full >= sum(len(enc(r.context + r.continuation)) - 1 for r in reqs)  # every window in full (and padding)
    # at most: the preamble once, each question once, each choice with the context's last token (batches padded)
    assert n_shared <= pre + len(QUESTIONS) * question + len(reqs) * (choice + 1)
    assert n_shared * 2 < n_full


def test_left_truncation_at_max_length(tiny_model_dir: Path) -> None:
    b = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu", max_length=24)
    full, shared = both(b, requests())
    assert b.shared_prefix
    assert max(abs(f.logprob - s.logprob) for f, s in zip(full, shared)) < 1e-4


def test_continuation_logprobs_through_shared_prefixes(backend: HFBackend) -> None:
    reqs = requests()
    backend.shared_prefix = True
    rows = backend.continuation_logprobs(reqs)
    backend.shared_prefix = False
    ref = backend.continuation_logprobs(reqs)
    backend.shared_prefix = True
    for a, r in zip(rows, ref):
        assert a.logprobs.shape == r.logprobs.shape
        assert float(abs(a.logprobs - r.logprobs).max()) < 1e-4


def test_plan_groups_contexts_and_clusters_preambles() -> None:
    pre_a, pre_b = list(range(100, 100 + MIN_SHARED + 4)), list(range(300, 300 + MIN_SHARED + 4))
    windows, n = [], []
    for pre in (pre_a, pre_b):
        for q in (1, 2, 3):
            for c in (7, 8):
                windows.append(pre + [q, q, 50] + [c, c, c][:-1])  # context = pre + question + last context token
                n.append(3)
    windows.append([1, 9, 9])  # context of one token after windowing: scored after the prefix token only
    n.append(3)
    clusters, plain = plan(windows, n)
    assert plain == [12]
    assert [c.prefix_len for c in clusters] == [len(pre_a), len(pre_b)]
    assert [[g.members for g in c.groups] for c in clusters] == [[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9], [10, 11]]]
    lone, _ = plan([[5, 6, 7, 8], [9, 6, 7, 8]], [2, 2])  # nothing shared: one cluster without a preamble
    assert [(c.prefix_len, len(c.groups)) for c in lone] == [(0, 2)]


def test_model_whose_cache_cannot_be_reused_is_scored_in_full_after_one_message(tiny_model_dir: Path,
                                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    b = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")
    b.model.config.sliding_window = 8  # a sliding window: cached keys past it are not kept
    ref = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu", shared_prefix=False)
    reqs = requests()
    expected = ref.loglikelihood(reqs)
    assert b.loglikelihood(reqs) == expected
    assert b.loglikelihood(reqs[:6]) == expected[:6]
    err = capsys.readouterr().err
    assert err.count("cannot be reused for shared prompt prefixes") == 1 and "sliding-window attention" in err


def test_a_cache_that_gives_other_numbers_is_caught_by_the_first_check(tiny_model_dir: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    b = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu")
    forward = b.model.forward

    def misplaced(*args, **kwargs):  # a model that numbers the tokens after a cache its own way
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = kwargs["position_ids"] + 50
        return forward(*args, **kwargs)

    b.model.forward = misplaced
    ref = HFBackend(str(tiny_model_dir), BackendOptions(batch_size=4), device="cpu", shared_prefix=False)
    reqs = requests()
    assert b.loglikelihood(reqs) == ref.loglikelihood(reqs)
    assert not b.shared_prefix
    assert "changed a score by" in capsys.readouterr().err
