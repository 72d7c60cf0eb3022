"""`drift --token-shift-tokens N` profiles the N answer tokens, not N + the chat template's trailing newline.

lm-eval's tokenisation (used by ``continuation_logprobs``) moves a context's trailing whitespace into the
continuation, so with a chat template ending in "assistant\\n" the first scored position is that newline:
a prompt token the tuned model never generated.
"""

from __future__ import annotations

import numpy as np
import pytest

from alignbench.backends._loglik import TokenLogprobs
from alignbench.drift.token_shift import ShiftItem, token_shift_profile
from alignbench.types import Generation

ANSWER = ["Gra", "vity", " is", " a", " force"]
VOCAB: dict[str, int] = {}


class TemplatedModel:
    """Renders chat prompts with a trailing newline and scores the way lm-eval tokenises: whitespace moved."""

    name = "templated"

    def decode_token(self, token_id):
        return {v: k for k, v in VOCAB.items()}.get(token_id, f"<{token_id}>")

    def render_prompt(self, prompt):
        return ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",)

    def generate(self, requests):
        return [Generation(text="".join(ANSWER), num_tokens=len(ANSWER)) for _ in requests]

    def continuation_logprobs(self, requests):
        out = []
        for r in requests:
            moved = r.context[len(r.context.rstrip()):]
            tokens = ([moved] if moved else []) + ANSWER
            ids = np.array([VOCAB.setdefault(t, len(VOCAB)) for t in tokens], dtype=np.int64)
            logits = np.full((len(tokens), 32), -5.0, dtype=np.float32)
            logits[np.arange(len(tokens)), ids] = 0.0  # each token the argmax: greedy everywhere
            out.append(TokenLogprobs(token_ids=ids, logprobs=logits - np.log(np.exp(logits).sum(1, keepdims=True)), tokens=tokens))
        return out


def test_the_template_newline_is_not_an_answer_position() -> None:
    m = TemplatedModel()
    prof = token_shift_profile(m, m, [ShiftItem("t", "1", [{"role": "user", "content": "hi"}])], max_new_tokens=len(ANSWER))
    (s,) = prof["samples"]
    assert s["n_tokens"] == len(ANSWER) and s["tokens"] == ANSWER
    assert prof["n_positions"] == len(ANSWER) and prof["n_excluded_positions"] == 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_smollm2_gguf_sixteen_tokens_are_sixteen_positions() -> None:
    from alignbench.backends.base import load_backend
    from alignbench.backends.default import packaged_gguf

    m = load_backend(f"hf:{packaged_gguf()}", {"dtype": "float32", "device": "cpu"})
    items = [ShiftItem("t", str(i), [{"role": "user", "content": q}]) for i, q in enumerate(["Explain gravity.", "How do I bake bread?"])]
    prof = token_shift_profile(m, m, items, max_new_tokens=16)
    assert prof["samples"] and all(s["n_tokens"] == 16 for s in prof["samples"])  # before: 17 (the template's "\n" counted)
    assert all(not t.isspace() for s in prof["samples"] for t in s["tokens"][:1])
