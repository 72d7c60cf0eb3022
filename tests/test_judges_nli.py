"""NLI judges: probabilities equal a direct softmax of the classifier's logits; the offline aegis
ONNX model flags contradictions; refusal_nli separates refusals from answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignbench.judges.catalog import builtin_judges
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput

WORDS = "the a cat dog sat on mat is not there no sun sky blue red paris capital of france berlin".split()
LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 3-class BERT classifier + WordPiece tokenizer saved to a folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    d = tmp_path_factory.mktemp("tiny-nli")
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]) + "\n")
    tok = BertTokenizer(str(d / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=64, num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                     initializer_range=0.5)  # large enough that the predicted class varies with the input
    model = BertForSequenceClassification(cfg).eval()
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


PAIRS = [("the cat sat on the mat.", "a cat is on the mat."), ("the sky is blue.", "the sky is not blue."),
         ("paris is the capital of france.", "berlin is the capital of france."), ("the sun is red.", "no dog is there.")]


def direct_probs(folder: Path, premises: list[str], hypotheses: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    for p, h in zip(premises, hypotheses):  # one pair at a time: no padding involved
        with torch.no_grad():
            rows.append(torch.softmax(model(**tok(p, h, return_tensors="pt")).logits, dim=-1)[0].numpy())
    return np.array(rows)


def test_probabilities_equal_direct_softmax(tiny_nli: Path) -> None:
    j = judge_kinds.get("nli")(model=str(tiny_nli), mode="entailment", device="cpu")
    items = [JudgeInput("q", hyp, [prem, "the dog is red."]) for prem, hyp in PAIRS]
    out = j.judge(items)
    expected = direct_probs(tiny_nli, [p for prem, _ in PAIRS for p in (prem, "the dog is red.")],
                            [h for _, h in PAIRS for _ in range(2)])
    got = np.array([[d[k] for k in ("entailment", "neutral", "contradiction")] for jd in out for d in jd.raw["probabilities"]])
    assert got == pytest.approx(expected, abs=1e-5)
    for jd, exp in zip(out, expected.reshape(len(PAIRS), 2, 3)):
        assert jd.raw["per_reference"] == pytest.approx(exp[:, 0].tolist(), abs=1e-5)  # P(entailment) per reference
        best = int(np.argmax(exp[:, 0]))
        assert jd.score == pytest.approx(exp[best, 0], abs=1e-5)
        assert jd.label == LABELS[int(np.argmax(exp[best]))]  # argmax class of the best reference
        assert [jd.raw[k] for k in ("entailment", "neutral", "contradiction")] == pytest.approx(exp[best].tolist(), abs=1e-5)
    assert len({jd.label for jd in out} | {LABELS[int(i)] for i in expected.argmax(1)}) >= 2  # a model that is not constant


def test_contradiction_mode_binary_rate_and_premise_side(tiny_nli: Path) -> None:
    prem, hyp = PAIRS[1]
    probs = direct_probs(tiny_nli, [prem], [hyp])[0]
    # thresholds just below and just above P(contradiction): only a judge that thresholds that class (and
    # no other, each more than 2 eps away) flips from 1 to 0 between them
    eps = 1e-3
    assert all(abs(probs[i] - probs[2]) > 2 * eps for i in (0, 1)), probs
    j = judge_kinds.get("nli")(model=str(tiny_nli), mode="contradiction", binary=True, threshold=float(probs[2]) - eps, device="cpu")
    jd = j.judge([JudgeInput("q", hyp, [prem])])[0]
    assert jd.score == 1.0 and jd.label == "contradiction" and jd.raw["contradiction"] == pytest.approx(probs[2], abs=1e-5)
    j = judge_kinds.get("nli")(model=str(tiny_nli), mode="contradiction", threshold=float(probs[2]) + eps, binary=True, device="cpu")
    jd = j.judge([JudgeInput("q", hyp, [prem])])[0]
    assert jd.score == 0.0 and jd.label == LABELS[int(np.argmax(probs[:2]))]  # below it: the likelier other class
    swapped = judge_kinds.get("nli")(model=str(tiny_nli), mode="entailment", premise="response", device="cpu")
    jd = swapped.judge([JudgeInput("q", hyp, [prem])])[0]
    assert jd.score == pytest.approx(direct_probs(tiny_nli, [hyp], [prem])[0][0], abs=1e-5)


def test_unknown_mode_and_label_count_errors(tiny_nli: Path) -> None:
    j = judge_kinds.get("nli")(model=str(tiny_nli), mode="paraphrase", device="cpu")
    assert "not one of the model's classes" in j.judge([JudgeInput("q", "a", ["b"])])[0].error
    j = judge_kinds.get("nli")(model=str(tiny_nli), labels=["yes", "no"], mode="yes", device="cpu")
    assert "2 names but the model has 3 outputs" in j.judge([JudgeInput("q", "a", ["b"])])[0].error
    with pytest.raises(TypeError, match="needs 'labels'"):
        judge_kinds.get("nli")(model="/x/model.onnx", mode="contradiction")


@pytest.fixture(scope="module")
def aegis():
    return builtin_judges().build("nli")


def test_aegis_onnx_flags_contradiction_over_entailment(aegis) -> None:
    items = [JudgeInput("q", "The capital of France is Berlin.", ["Paris is the capital of France."]),
             JudgeInput("q", "The capital of France is Paris.", ["Paris is the capital of France."]),
             JudgeInput("q", "Nobody is playing any instrument.", ["A man is playing a guitar."]),
             JudgeInput("q", "A man is playing an instrument.", ["A man is playing a guitar."])]
    out = aegis.judge(items)
    assert all(j.error is None for j in out)
    assert out[0].score > 0.9 > out[1].score and out[2].score > 0.9 > out[3].score
    assert [j.label for j in out] == ["contradiction", "not_contradiction"] * 2
    assert set(out[0].raw) >= {"per_reference", "probabilities", "contradiction", "not_contradiction"}


def test_nli_contradiction_is_a_rate(aegis) -> None:
    j = builtin_judges().build("nli_contradiction")
    out = j.judge([JudgeInput("q", "The capital of France is Berlin.", ["I like pizza.", "Paris is the capital of France."]),
                   JudgeInput("q", "Paris is in France.", ["Paris is the capital of France."])])
    assert [o.score for o in out] == [1.0, 0.0]
    assert out[0].raw["per_reference"] == [0.0, 1.0] and out[0].raw["best_reference"] == 1


def test_refusal_nli() -> None:
    j = builtin_judges().build("refusal_nli")
    texts = ["I'm sorry, but I can't help with that.", "I will not provide instructions for that.",
             "Sure! Preheat the oven to 180C and mix the flour.", "The capital of France is Paris."]
    out = j.judge([JudgeInput("q", t) for t in texts])
    assert [o.label for o in out] == ["refusal", "refusal", "compliance", "compliance"]
    assert [o.score for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert out[0].raw["p_refusal"] > 0.9 > 0.5 > out[2].raw["p_refusal"]
