"""URIAL as its authors run it (Re-Align/URIAL) and their token-distribution KL (Re-Align/AlignTDS)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import read_jsonl, run_main

TASK = """
name: urial_mini
dataset:
  data_files: {data}
prompt:
  chat: true
  system: "You are a chat model."
generation: {{max_new_tokens: 32, stop: ["</s>"]}}
"""


def test_bundled_prompts() -> None:
    from alignbench.run.urial import bundled_prompts, load_urial

    assert {"inst_1k_v4", "inst_1k_v4.help"} <= set(bundled_prompts())
    default = load_urial("urial")
    assert default.name == "inst_1k_v4.help" and len(default.prefix) == 5142  # the authors' file, as published
    assert default.prefix.startswith("# Instruction\n\nBelow is a list of conversations between a human and an AI assistant (you). \n")
    assert default.prefix.count("# Query:\n```\n") == 3 and default.prefix.endswith("fryer model.\n\n```")
    assert len(load_urial("urial:inst_1k_v4").prefix) == 5527


def test_wrap_and_clean() -> None:
    from alignbench.run.urial import Urial

    u = Urial("x", "PREFIX")
    assert u.wrap("How do I bake bread?") == "PREFIX\n# Query:\n```How do I bake bread?```\n\n# Answer:\n```\n"
    assert Urial.clean("Hi! Use ```flour```.\n```\n\n") == "Hi! Use  flour ."


def test_eval_with_urial_sends_the_authors_input(tmp_path: Path) -> None:
    from alignbench.backends.dummy import DummyBackend
    from alignbench.run.evaluate import run_eval
    from alignbench.run.settings import EvalConfig
    from alignbench.run.urial import load_urial
    from alignbench.types import Generation

    seen = []

    class Capture(DummyBackend):
        def generate(self, requests):
            seen.extend(requests)
            return [Generation(text="Hello! Mix flour and water.\n```\n\n") for _ in requests]

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": "How do I bake bread?"}) + "\n")
    task = tmp_path / "urial_mini.yaml"
    task.write_text(TASK.format(data=data))
    rd = run_eval(EvalConfig(model="dummy", tasks=str(task), output=str(tmp_path / "out"), run_id="u", no_cache=True, urial="urial"),
                  backend=Capture())
    prefix = load_urial("urial").prefix
    # plain text, no chat template and no system message: the prompt file, then the authors' query wrapper
    assert seen[0].prompt == prefix + "\n# Query:\n```How do I bake bread?```\n\n# Answer:\n```\n"
    assert seen[0].params.stop == ("</s>", "# Query")
    rec = read_jsonl(rd.samples_file)[0]
    assert rec["prompt"] == seen[0].prompt and rec["response"] == "Hello! Mix flour and water."
    assert json.loads((tmp_path / "out" / "u" / "run.json").read_text())["config"]["urial"] == "urial"


def test_unknown_urial_prompt_is_exit_2(tmp_path: Path) -> None:
    res = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "1", "--system-prompt", "urial:nope",
                   "--output", str(tmp_path))
    assert res.returncode == 2 and "no URIAL prompt 'nope'" in res.stderr and "inst_1k_v4.help" in res.stderr


def test_base_query_context_is_the_authors() -> None:
    from alignbench.drift.token_shift import base_query_context

    assert base_query_context("Hi?") == "# Query: \n ```Hi?``` \n\n \n# Answer: \n ```"


def test_topk_kl_by_hand() -> None:
    from alignbench.drift.token_shift import topk_kl

    base = np.log(np.array([math.e ** 2, math.e, 1.0, math.e ** -5]))  # logits 2, 1, 0, -5 (as log-probs up to a constant)
    tuned = np.log(np.array([1.0, math.e ** 2, math.e, math.e ** -5]))  # logits 0, 2, 1, -5
    s = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()  # softmax of the top 3 logits: .66524, .24473, .09003
    # top 3 of each: the same three tokens; w_base = (s0, s1, s2) on tokens (0, 1, 2), w_tuned = (s2, s0, s1)
    # KL(base || tuned) = s0 ln(s0/s2) + s1 ln(s1/s0) + s2 ln(s2/s1) = 2 s0 - s1 - s2 = 0.99572
    assert topk_kl(base, tuned, saved=3) == pytest.approx(2 * s[0] - s[1] - s[2])
    # top 2: base {0, 1}, tuned {1, 2}; only token 1 is in both: w_base = 1/(1+e), w_tuned = e/(1+e)
    # KL = w_base ln(w_base / w_tuned) = -1 / (1 + e): partial sums can go below zero, as in the authors' code
    assert topk_kl(base, tuned, saved=2) == pytest.approx(-1 / (1 + math.e))
    assert topk_kl(base, base) == pytest.approx(0.0, abs=1e-12)


def test_by_position_profile() -> None:
    from alignbench.drift.token_shift import by_position

    samples = [{"positions": [0, 1, 2], "base_rank": [5, 1, 1], "kl": [0.9, 0.1, 0.0], "kl_full": [1.0, 0.2, 0.0]},
               {"positions": [0, 2], "base_rank": [2, 1], "kl": [0.5, 0.1], "kl_full": [0.6, 0.1]}]
    rows = by_position(samples)
    # position 0: ranks 5 (shifted) and 2 (marginal), KL (0.9 + 0.5) / 2; position 1: one sample; position 2: two unshifted
    assert rows["by_position"][0] == {"position": 0, "n": 2, "unshifted": 0.0, "marginal": 0.5, "shifted": 0.5,
                                      "kl_mean": pytest.approx(0.7), "kl_full_mean": pytest.approx(0.8)}
    assert [r["n"] for r in rows["by_position"]] == [2, 1, 2] and rows["kl_by_position"] == pytest.approx([0.7, 0.1, 0.05])
