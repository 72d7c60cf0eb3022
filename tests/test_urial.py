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


# sha256 of the authors' files: main at b3d6f52 (what their vllm_urial.py downloads at run time), and 4c4d740
MAIN = {"inst_1k_v4.help": "226e9719f2e3fe03a937c26ba6175bf8bc604295577dab28f0e0c78a4ffecfed",
        "inst_1k_v4": "7373f07b27e708a6cfdb7ad27299e1e4ef7ac5acb476860b96254d74f87f54e0"}
OLD = {"inst_1k_v4.help.4c4d740": "529f92cb3002791b4cce65e9f416707eac0086030c58347ae1115d770e7c52e3",
       "inst_1k_v4.4c4d740": "06f0583a36b2d7aa2761a920a910e3c075453bebac52f7d798a458259e0c0780"}


def _authors_apply_urial(pure_input_texts: list[str], urial_prompt: str) -> list[str]:
    """vllm_urial.py's apply_urial, written out."""
    return [f"{urial_prompt}\n# Query:\n```{text_in}```\n\n# Answer:\n```\n" for text_in in pure_input_texts]


def test_bundled_prompts_are_the_files_the_authors_script_downloads() -> None:
    import hashlib

    from alignbench.run.urial import bundled_prompts, load_urial

    files = bundled_prompts()
    assert set(files) == set(MAIN) | set(OLD)
    source = (files["inst_1k_v4.help"].parent / "SOURCE").read_text()
    for name, digest in {**MAIN, **OLD}.items():
        assert hashlib.sha256(files[name].read_bytes()).hexdigest() == digest and f"{digest}  {name}.txt" in source
    assert "b3d6f523644fcd6592f90c4344b3615d4c4db30c" in source and "4c4d740b8722387b68d80c074febf4756dae6bdb" in source
    default = load_urial("urial")
    assert default.name == "inst_1k_v4.help" and default.prefix == files["inst_1k_v4.help"].read_text(encoding="utf-8")
    # "no refusal": their current system text, a maths example, no refusal example
    assert "You excel in a wide range of tasks" in default.prefix and "Natalia sold clips" in default.prefix
    assert "torture" not in default.prefix and default.prefix.count("# Query:\n```\n") == 3
    assert default.prefix.endswith("fryer model.\n```\n")
    safer = load_urial("urial:inst_1k_v4").prefix
    assert "torture a friend" in safer and "you can reject to answer some controversial topics" in safer
    assert "torture a friend" in load_urial("urial:inst_1k_v4.help.4c4d740").prefix  # the file bundled before


def test_model_inputs_equal_the_authors_and_differ_from_the_older_file() -> None:
    from alignbench.run.urial import bundled_prompts, load_urial

    files = bundled_prompts()
    queries = ["How do I bake bread?", "What is the capital of France?", "Write a haiku about rain."]
    theirs = _authors_apply_urial(queries, files["inst_1k_v4.help"].read_text(encoding="utf-8"))
    ours = [load_urial("urial").wrap(q) for q in queries]
    assert ours == theirs
    # e.g. the first: "...fryer model.\n```\n" + "\n# Query:\n```How do I bake bread?```\n\n# Answer:\n```\n"
    assert ours[0].endswith("fryer model.\n```\n\n# Query:\n```How do I bake bread?```\n\n# Answer:\n```\n")
    before = [load_urial("urial:inst_1k_v4.help.4c4d740").wrap(q) for q in queries]
    assert sum(a == b for a, b in zip(before, theirs)) == 0  # the older file gave other model inputs for every prompt


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


def test_a_resume_must_use_the_urial_prompt_the_run_was_made_with(tmp_path: Path) -> None:
    """The same name (``urial``) held another prompt file in an earlier version: run.json records the prompt's sha256,
    and a resume with another prompt, or of a run that recorded none, would mix two prompts in one run."""
    import hashlib

    from alignbench.run.urial import load_urial

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(3)))
    task = tmp_path / "urial_mini.yaml"
    task.write_text(TASK.format(data=data))
    args = ["eval", "--model", "dummy", "--tasks", str(task), "--output", str(tmp_path / "out"), "--run-id", "u", "--no-cache",
            "--system-prompt", "urial"]
    assert run_main(*args).returncode == 0
    run_json = tmp_path / "out" / "u" / "run.json"
    info = json.loads(run_json.read_text())
    want = hashlib.sha256(load_urial("urial").prefix.encode()).hexdigest()
    assert info["urial"] == {"prompt": "inst_1k_v4.help", "sha256": want}
    r = run_main(*args, "--resume")
    assert r.returncode == 0, r.stderr  # the same prompt: resumes (nothing left to do)
    info["urial"]["sha256"] = hashlib.sha256(load_urial("urial:inst_1k_v4.help.4c4d740").prefix.encode()).hexdigest()
    run_json.write_text(json.dumps(info))
    r = run_main(*args, "--resume")
    assert r.returncode == 2 and "another URIAL prompt" in r.stderr and "another version of the file" in r.stderr, r.stderr
    del info["urial"]
    run_json.write_text(json.dumps(info))
    r = run_main(*args, "--resume")
    assert r.returncode == 2 and "records no URIAL prompt digest" in r.stderr, r.stderr


def test_unknown_urial_prompt_is_exit_2(tmp_path: Path) -> None:
    res = run_main("eval", "--model", "dummy", "--tasks", "harmful_rate", "--limit", "1", "--system-prompt", "urial:nope",
                   "--output", str(tmp_path))
    assert res.returncode == 2 and "no URIAL prompt 'nope'" in res.stderr and "inst_1k_v4.help" in res.stderr


def test_base_query_context_is_the_authors() -> None:
    from alignbench.drift.token_shift import base_query_context

    assert base_query_context("Hi?") == "# Query: \n ```Hi?``` \n\n \n# Answer: \n ```"


def _authors_kl(token_list_1: list[dict], token_list_2: list[dict], top_k: int = 50) -> float:
    """compute_dist_diff.py's norm_prob + compute_similarity(metric="KL"), written out.

    A token list is logit_analysis.py's: the model's top logits in descending order, each
    {"token_id", "token": tokenizer.decode(token_id), "logit"}."""
    for token_list in (token_list_1, token_list_2):  # norm_prob
        max_logit = max(token["logit"] for token in token_list)
        sum_exp_logit = sum(math.exp(token["logit"] - max_logit) for token in token_list)
        for token in token_list:
            token["norm_prob"] = math.exp(token["logit"] - max_logit) / sum_exp_logit
    list1 = [i["token"] for i in token_list_1[:top_k]]
    list2 = [i["token"] for i in token_list_2[:top_k]]
    similarity = 0.0
    for t in set(list1).union(set(list2)):
        w1 = token_list_1[list1.index(t)]["norm_prob"] if t in list1 else 0
        w2 = token_list_2[list2.index(t)]["norm_prob"] if t in list2 else 0
        if w1 > 0 and w2 > 0:
            similarity += w1 * math.log(w1 / w2)
    return similarity


def _token_list(logits: list[float], decode, top_k: int) -> list[dict]:
    order = sorted(range(len(logits)), key=lambda i: -logits[i])[:top_k]  # torch.topk: descending
    return [{"token_id": i, "token": decode(i), "logit": logits[i]} for i in order]


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


def test_topk_kl_keys_tokens_by_text_as_the_authors_do() -> None:
    """Two ids that decode to the same text are one token to the authors: the first (highest) keeps its weight."""
    from alignbench.drift.token_shift import topk_kl

    text = {0: "a", 1: "a", 2: "b", 3: "c"}.__getitem__  # ids 0 and 1 decode alike (e.g. two byte tokens -> U+FFFD)
    base_logits, tuned_logits = [2.0, 1.0, 0.0, -5.0], [0.0, 2.0, 1.0, -5.0]
    s = np.exp([2.0, 1.0, 0.0]) / np.exp([2.0, 1.0, 0.0]).sum()
    # top 3, descending: base ids (0, 1, 2) -> texts (a, a, b), weights (s0, s1, s2) -> {a: s0, b: s2}
    #                    tuned ids (1, 2, 0) -> texts (a, b, a), weights (s0, s1, s2) -> {a: s0, b: s1}
    # theirs: s0 ln(s0/s0) + s2 ln(s2/s1) = -s2 = -0.09003
    theirs = _authors_kl(_token_list(base_logits, text, 3), _token_list(tuned_logits, text, 3))
    assert theirs == pytest.approx(-s[2])
    base, tuned = np.array(base_logits) - 7.0, np.array(tuned_logits) + 3.0  # log-probs up to a constant per row
    assert topk_kl(base, tuned, text, text, saved=3) == pytest.approx(theirs)
    # keyed by id instead: s0 ln(s0/s2) + s1 ln(s1/s0) + s2 ln(s2/s1) = 2 s0 - s1 - s2 = 0.99572 (kl_id)
    assert topk_kl(base, tuned, saved=3) == pytest.approx(2 * s[0] - s[1] - s[2])
    by_id = _authors_kl(_token_list(base_logits, str, 3), _token_list(tuned_logits, str, 3))  # their code, keys that never collide
    assert topk_kl(base, tuned, saved=3) == pytest.approx(by_id)
    # top 4 (every token): the two lists share all texts; base {a: w0, b: w2, c: w3}, tuned {a: v1, b: v2, c: v3}
    theirs4 = _authors_kl(_token_list(base_logits, text, 4), _token_list(tuned_logits, text, 4))
    assert topk_kl(base, tuned, text, text, saved=4) == pytest.approx(theirs4)
    w, v = np.exp(base_logits) / np.exp(base_logits).sum(), np.exp(tuned_logits) / np.exp(tuned_logits).sum()
    assert theirs4 == pytest.approx(w[0] * np.log(w[0] / v[1]) + w[2] * np.log(w[2] / v[2]) + w[3] * np.log(w[3] / v[3]))


def test_by_position_profile() -> None:
    from alignbench.drift.token_shift import by_position

    samples = [{"positions": [0, 1, 2], "base_rank": [5, 1, 1], "kl": [0.9, 0.1, 0.0], "kl_full": [1.0, 0.2, 0.0]},
               {"positions": [0, 2], "base_rank": [2, 1], "kl": [0.5, 0.1], "kl_full": [0.6, 0.1]}]
    rows = by_position(samples)
    # position 0: ranks 5 (shifted) and 2 (marginal), KL (0.9 + 0.5) / 2; position 1: one sample; position 2: two unshifted
    assert rows["by_position"][0] == {"position": 0, "n": 2, "unshifted": 0.0, "marginal": 0.5, "shifted": 0.5,
                                      "kl_mean": pytest.approx(0.7), "kl_full_mean": pytest.approx(0.8)}
    assert [r["n"] for r in rows["by_position"]] == [2, 1, 2] and rows["kl_by_position"] == pytest.approx([0.7, 0.1, 0.05])
