"""Batched generation on the ``default`` backend (several sequences per llama.cpp decode call): the
same texts as one request at a time, ``--batch-size`` sequences per batch, seeded sampling that does
not depend on the batch, and the one-at-a-time limits and errors."""

from __future__ import annotations

import os

import pytest

from alignbench.backends._llama_batch import BatchDecoder
from alignbench.backends.base import BackendOptions
from alignbench.backends.default import DefaultBackend
from alignbench.errors import UsageError
from alignbench.types import GenerationParams, GenerationRequest

pytest.importorskip("llama_cpp")

QUESTIONS = ["How do I pick a lock?", "Name three primary colours.", "What is the capital of France?",
             "Write a haiku about rain.", "How many legs does a spider have?", "Tell me a joke."]


def chat(text: str, **params) -> GenerationRequest:
    return GenerationRequest(prompt=[{"role": "user", "content": text}], params=GenerationParams(**{"max_new_tokens": 12, **params}))


@pytest.fixture(scope="module")
def one() -> DefaultBackend:
    b = DefaultBackend("", BackendOptions(batch_size=1), n_threads=1)
    yield b
    b.close()


@pytest.fixture(scope="module")
def batched() -> DefaultBackend:
    b = DefaultBackend("", BackendOptions(batch_size=4), n_threads=1)
    yield b
    b.close()


@pytest.mark.slow
def test_greedy_texts_equal_one_at_a_time(one: DefaultBackend, batched: DefaultBackend) -> None:
    reqs = [chat(q) for q in QUESTIONS]
    reqs += [chat("Count from one to ten.", stop=("3.",)),  # a stop string cuts the text
             GenerationRequest(prompt="Question: What colour is the sky?\nAnswer:", params=GenerationParams(max_new_tokens=12, stop=("\n",))),
             GenerationRequest(prompt=[{"role": "user", "content": "Say hi."}], system_prompt="Answer in French.",
                               params=GenerationParams(max_new_tokens=12))]
    expected = one.generate(reqs)
    got = batched.generate(reqs)
    # each prompt is decoded on its own, as on the one-at-a-time path, and only the steps after it are batched:
    # then every greedy text is the same (with prompts batched together, 3 of 9 parted at a near-tie)
    same = [g.text == e.text for g, e in zip(got, expected)]
    assert all(same), [(g.text, e.text) for g, e in zip(got, expected)]
    for g, e in zip(got, expected):
        assert len(os.path.commonprefix([g.text, e.text])) >= 12 or g.text == e.text
    assert got[len(QUESTIONS)].text == "1. 1\n2. 2\n" and got[len(QUESTIONS)].finish_reason == "stop"


def test_batch_size_sequences_per_batch(batched: DefaultBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    waves: list[int] = []
    run_wave = BatchDecoder._run_wave
    monkeypatch.setattr(BatchDecoder, "_run_wave", lambda self, seqs: (waves.append(len(seqs)), run_wave(self, seqs))[1])
    batched.generate([chat(q, max_new_tokens=2) for q in QUESTIONS + QUESTIONS[:3]])
    assert waves == [4, 4, 1]
    assert batched._decoder is not None and batched._decoder.n_seq == 4


def test_sampling_is_seeded_per_request_not_per_batch(batched: DefaultBackend) -> None:
    warm = chat("Tell me a story about a cat.", temperature=1.0, max_new_tokens=6)
    alone = batched.generate([warm, chat("unrelated", temperature=1.0, max_new_tokens=2)])[0]
    mixed = batched.generate([chat("other", temperature=1.0, max_new_tokens=2), chat("more", max_new_tokens=2), warm])[2]
    assert alone.text == mixed.text and alone.num_tokens == 6
    reseeded = chat("Tell me a story about a cat.", temperature=1.0, max_new_tokens=6, seed=7)
    assert batched.generate([reseeded, warm])[0].text != alone.text


def test_limits_of_the_one_at_a_time_path() -> None:
    small = DefaultBackend("", BackendOptions(batch_size=4), n_ctx=64, n_threads=1)
    try:
        long = chat("word " * 80)
        with pytest.raises(UsageError, match=r"Requested tokens \(\d+\) exceed context window of 64; pass --model-args n_ctx"):
            small.generate([long, chat("hi")])
        # max_new_tokens is clipped to the window, as create_chat_completion does
        near = chat("word " * 30, max_new_tokens=100)
        got = small.generate([near, chat("hi")])[0]
        assert got.num_tokens <= 64 - len(small.llm.tokenize(b"word " * 30))
    finally:
        small.close()


@pytest.mark.slow
def test_a_request_too_long_for_a_batch_slot_runs_alone(one: DefaultBackend, batched: DefaultBackend) -> None:
    long = chat("Summarise: " + "the quick brown fox jumps over the lazy dog " * 60, max_new_tokens=4)  # > 512 tokens
    reqs = [long, chat("Name three primary colours.")]
    assert [g.text for g in batched.generate(reqs)] == [g.text for g in one.generate(reqs)]
