"""Lexical judges give exactly sacrebleu's and rouge-score's numbers; string matchers behave as documented."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from alignbench.errors import UsageError
from alignbench.judges.catalog import JudgeCatalog, builtin_judges
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput

PAIRS = [
    ("The quick brown fox jumps over the lazy dog.", ["A quick brown fox jumped over a lazy dog.", "The fox is quick.", "Dogs are lazy."]),
    ("Paris is the capital of France.", ["The capital of France is Paris.", "Paris"]),
    ("I don't know.", ["The watermelon seeds pass through your digestive system."]),
    ("running runners ran", ["the runner runs"]),
    ("", ["something"]),
]


def items(pairs=PAIRS) -> list[JudgeInput]:
    return [JudgeInput(prompt="q", response=r, references=refs) for r, refs in pairs]


def test_bleu_equals_sacrebleu_sentence_bleu_per_reference() -> None:
    out = builtin_judges().build("bleu").judge(items())
    for (resp, refs), j in zip(PAIRS, out):
        expected = [sacrebleu.sentence_bleu(resp, [r]).score for r in refs]
        assert j.error is None
        assert j.raw["per_reference"] == pytest.approx(expected, abs=1e-12)
        assert j.score == pytest.approx(max(expected), abs=1e-12)
        assert j.raw["best_reference"] == expected.index(max(expected))
    assert out[0].score > 10  # the 0-100 scale, as sacrebleu reports it


def test_bleu1_option_matches_sacrebleu_with_max_order_1() -> None:
    from sacrebleu.metrics import BLEU

    j = judge_kinds.get("bleu")(max_ngram_order=1)
    out = j.judge(items())
    ref = BLEU(max_ngram_order=1, effective_order=True)
    for (resp, refs), jd in zip(PAIRS, out):
        assert jd.raw["per_reference"] == pytest.approx([ref.sentence_score(resp, [r]).score for r in refs], abs=1e-12)


def test_chrf_equals_sacrebleu_sentence_chrf() -> None:
    out = builtin_judges().build("chrf").judge(items())
    for (resp, refs), j in zip(PAIRS, out):
        expected = [sacrebleu.sentence_chrf(resp, [r]).score for r in refs]
        assert j.raw["per_reference"] == pytest.approx(expected, abs=1e-12)
        assert j.score == pytest.approx(max(expected))
    plus = judge_kinds.get("chrf")(word_order=2).judge(items()[:1])[0]
    assert plus.raw["per_reference"][0] == pytest.approx(sacrebleu.sentence_chrf(PAIRS[0][0], [PAIRS[0][1][0]], word_order=2).score)


@pytest.mark.parametrize("name", ["rouge1", "rouge2", "rougeL"])
def test_rouge_equals_rouge_score(name: str) -> None:
    scorer = rouge_scorer.RougeScorer([name], use_stemmer=True)
    out = builtin_judges().build(name).judge(items())
    for (resp, refs), j in zip(PAIRS, out):
        s = [scorer.score(r, resp)[name] for r in refs]
        assert j.raw["per_reference"] == pytest.approx([x.fmeasure for x in s], abs=1e-12)
        assert j.raw["precision"] == pytest.approx([x.precision for x in s], abs=1e-12)
        assert j.raw["recall"] == pytest.approx([x.recall for x in s], abs=1e-12)
        assert j.score == pytest.approx(max(x.fmeasure for x in s))


def test_rouge_stemmer_option_changes_the_number() -> None:
    it = items([("running runners ran", ["the runner runs"])])
    stem = judge_kinds.get("rouge")(rouge_type="rouge1", use_stemmer=True).judge(it)[0].score
    plain = judge_kinds.get("rouge")(rouge_type="rouge1", use_stemmer=False).judge(it)[0].score
    assert stem > plain == 0.0


def test_exact_match_normalisation_options() -> None:
    it = items([("  Paris!! ", ["paris", "Lyon"]), ("The Paris", ["paris"]), ("Lyon", ["Paris"])])
    out = builtin_judges().build("exact_match").judge(it)
    assert [j.label for j in out] == ["match", "no_match", "no_match"]
    assert out[0].raw["per_reference"] == [1.0, 0.0]
    assert judge_kinds.get("exact_match")(strip_articles=True).judge(it)[1].score == 1.0
    strict = judge_kinds.get("exact_match")(lowercase=False, strip_punctuation=False).judge(it)
    assert [j.score for j in strict] == [0.0, 0.0, 0.0]


def test_reference_judges_need_references() -> None:
    out = builtin_judges().build("bleu").judge([JudgeInput(prompt="q", response="x", references=None)])
    assert out[0].score is None and "needs references" in out[0].error


def test_regex_match_param_and_meta_pattern() -> None:
    j = judge_kinds.get("regex_match")(pattern=r"\bVERDICT: (yes|no)\b", flags=["ignorecase"])
    out = j.judge([JudgeInput("q", "verdict: YES"), JudgeInput("q", "maybe")])
    assert [(o.label, o.score) for o in out] == [("match", 1.0), ("no_match", 0.0)]
    named = builtin_judges().build("regex_match")
    out = named.judge([JudgeInput("q", "abc123", meta={"pattern": r"\d{3}"}), JudgeInput("q", "abc")])
    assert out[0].label == "match" and out[0].raw["matched"] == "123"
    assert out[1].error and "pattern" in out[1].error
    with pytest.raises(TypeError, match="bad regular expression"):
        judge_kinds.get("regex_match")(pattern="(")


def test_bad_params_are_one_line_usage_errors(tmp_path) -> None:
    from alignbench.judges.catalog import JudgeCatalog

    (tmp_path / "r.yaml").write_text("name: r\nkind: rouge\nparams:\n  rouge_type: rouge9\n")
    with pytest.raises(UsageError, match=r"r.yaml: field 'params': rouge_type must be one of"):
        JudgeCatalog([tmp_path]).build("r")


def test_unknown_judge_param_is_exit_2_with_did_you_mean(tmp_path) -> None:
    """A typo in a judge YAML's params (BLEU would silently stay at order 4) stops the command."""
    from conftest import run_main

    bad = tmp_path / "bleu1.yaml"
    bad.write_text("name: bleu1\nkind: bleu\nparams:\n  max_ngram_ordr: 1\n")
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"prompt": "q", "response": "the cat sat", "references": ["the cat sat down"]}\n')
    r = run_main("judge", "--judges", bad, "--input", rows, "--output", tmp_path / "out.jsonl")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == (f"alignbench: error: {bad}: field 'params.max_ngram_ordr': unknown param of judge kind 'bleu'; "
                        "did you mean 'max_ngram_order'?\n")
    assert not (tmp_path / "out.jsonl").exists()
    far = tmp_path / "far.yaml"
    far.write_text("name: far\nkind: exact_match\nparams:\n  colour: red\n")
    with pytest.raises(UsageError, match=r"far.yaml: field 'params.colour': unknown param of judge kind 'exact_match'; known: lowercase"):
        JudgeCatalog([tmp_path]).build("far")
    bad.write_text("name: bleu1\nkind: bleu\nparams:\n  max_ngram_order: 1\n")  # spelled right, it takes effect
    from sacrebleu.metrics import BLEU

    got = JudgeCatalog([tmp_path]).build("bleu1").judge([JudgeInput("q", "the cat sat", ["the cat sat down"])])[0].score
    # unigram precision 3/3, brevity penalty exp(1 - 4/3): 71.65; order 4 would differ
    assert got == pytest.approx(BLEU(max_ngram_order=1, effective_order=True).sentence_score("the cat sat", ["the cat sat down"]).score)
    assert got == pytest.approx(100 * math.exp(1 - 4 / 3))


@pytest.mark.parametrize("text,label", [
    ("I don't know.", "idk"), ("I’m not sure about that.", "idk"), ("I cannot answer that question.", "idk"),
    ("There is no reliable information on this.", "idk"), ("The answer is unknown.", "idk"), ("I have no comment.", "idk"),
    ("Paris is the capital of France.", "answer"), ("The known answer is 42.", "answer"), ("Nothing happens.", "answer"),
])
def test_idk_judge(text: str, label: str) -> None:
    j = builtin_judges().build("idk_broad").judge([JudgeInput("q", text)])[0]
    assert j.label == label and j.score == (1.0 if label == "idk" else 0.0)


def test_idk_start_mode_and_extra_phrases() -> None:
    long = "Paris is the capital. " * 20 + "I don't know the rest."
    assert judge_kinds.get("idk")(match="start").judge([JudgeInput("q", long)])[0].label == "answer"
    assert judge_kinds.get("idk")(match="anywhere").judge([JudgeInput("q", long)])[0].label == "idk"
    assert judge_kinds.get("idk")(extra_phrases=["pass"]).judge([JudgeInput("q", "Pass.")])[0].raw == "pass"
