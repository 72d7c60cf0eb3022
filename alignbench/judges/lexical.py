"""Lexical judges: n-gram overlap and string matching against references.

* ``bleu``: sentence BLEU from sacrebleu (``sacrebleu.metrics.BLEU(effective_order=True)``, the same
  computation as ``sacrebleu.sentence_bleu``); score on sacrebleu's 0-100 scale. ``max_ngram_order: 1``
  gives BLEU-1.
* ``chrf``: sentence chrF from sacrebleu (``sacrebleu.sentence_chrf``); 0-100 scale; ``word_order: 2``
  gives chrF++.
* ``rouge``: ROUGE F-measure (0-1) from Google's ``rouge_score.RougeScorer``; ``rouge_type`` is
  ``rouge1``, ``rouge2``, ``rougeL`` or ``rougeLsum``; precision and recall are kept in ``raw``.
  rouge-score's default tokenizer keeps only ASCII letters and digits.
* ``exact_match``: 1.0 when the normalised response equals a normalised reference; label match|no_match.
* ``regex_match``: 1.0 when a regular expression matches the response (no references needed); the
  pattern is the ``pattern`` param or, per sample, ``meta[meta_field]``; label match|no_match.

All reference-based kinds score each reference on its own and keep the maximum (see
``alignbench.judges._reference``), so ``raw["per_reference"]`` has one sacrebleu / rouge-score number
per reference.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Any

from alignbench.judges._reference import ReferenceJudge
from alignbench.judges.base import Judge
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput, Judgment


@judge_kinds.register("bleu")
class BleuJudge(ReferenceJudge):
    kind = "bleu"
    batch_size = 1024

    def __init__(self, name: str | None = None, tokenize: str = "13a", lowercase: bool = False, smooth_method: str = "exp",
                 smooth_value: float | None = None, max_ngram_order: int = 4, **params: Any) -> None:
        super().__init__(name, **params)
        from sacrebleu.metrics import BLEU

        try:
            self.metric = BLEU(lowercase=lowercase, tokenize=tokenize, smooth_method=smooth_method, smooth_value=smooth_value,
                               max_ngram_order=max_ngram_order, effective_order=True)
        except Exception as exc:  # sacrebleu raises assorted errors for bad options
            raise TypeError(f"bad BLEU option: {exc}") from None

    def score_pairs(self, responses: list[str], references: list[str]) -> tuple[list[float], dict[str, list[Any]]]:
        return [self.metric.sentence_score(h, [r]).score for h, r in zip(responses, references)], {}


@judge_kinds.register("chrf")
class ChrfJudge(ReferenceJudge):
    kind = "chrf"
    batch_size = 1024

    def __init__(self, name: str | None = None, char_order: int = 6, word_order: int = 0, beta: int = 2,
                 lowercase: bool = False, whitespace: bool = False, eps_smoothing: bool = False, **params: Any) -> None:
        super().__init__(name, **params)
        from sacrebleu.metrics import CHRF

        self.metric = CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase,
                           whitespace=whitespace, eps_smoothing=eps_smoothing)

    def score_pairs(self, responses: list[str], references: list[str]) -> tuple[list[float], dict[str, list[Any]]]:
        return [self.metric.sentence_score(h, [r]).score for h, r in zip(responses, references)], {}


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@judge_kinds.register("rouge")
class RougeJudge(ReferenceJudge):
    kind = "rouge"
    batch_size = 1024

    def __init__(self, name: str | None = None, rouge_type: str = "rougeL", use_stemmer: bool = True, **params: Any) -> None:
        super().__init__(name, **params)
        if rouge_type not in ROUGE_TYPES:
            raise TypeError(f"rouge_type must be one of {list(ROUGE_TYPES)}, got {rouge_type!r}")
        from rouge_score.rouge_scorer import RougeScorer

        self.rouge_type = rouge_type
        self.scorer = RougeScorer([rouge_type], use_stemmer=use_stemmer)

    def score_pairs(self, responses: list[str], references: list[str]) -> tuple[list[float], dict[str, list[Any]]]:
        res = [self.scorer.score(r, h)[self.rouge_type] for h, r in zip(responses, references)]  # score(target, prediction)
        return [s.fmeasure for s in res], {"precision": [s.precision for s in res], "recall": [s.recall for s in res]}


_PUNCT = {c for c in string.punctuation} | {"\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026"}


def normalize_text(text: str, lowercase: bool = True, strip_punctuation: bool = True, strip_articles: bool = False) -> str:
    """NFKC, optional lower-casing / punctuation removal / English article removal, collapsed whitespace."""
    text = unicodedata.normalize("NFKC", text or "")
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        text = "".join(" " if (c in _PUNCT or unicodedata.category(c).startswith("P")) else c for c in text)
    if strip_articles:
        text = re.sub(r"\b(a|an|the)\b", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


@judge_kinds.register("exact_match")
class ExactMatchJudge(ReferenceJudge):
    kind = "exact_match"
    batch_size = 4096

    def __init__(self, name: str | None = None, lowercase: bool = True, strip_punctuation: bool = True,
                 strip_articles: bool = False, **params: Any) -> None:
        super().__init__(name, **params)
        self.opts = {"lowercase": lowercase, "strip_punctuation": strip_punctuation, "strip_articles": strip_articles}

    def score_pairs(self, responses: list[str], references: list[str]) -> tuple[list[float], dict[str, list[Any]]]:
        return [float(normalize_text(h, **self.opts) == normalize_text(r, **self.opts)) for h, r in zip(responses, references)], {}

    def label_for(self, score: float) -> Any:
        return "match" if score >= 1.0 else "no_match"


_FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}


@judge_kinds.register("regex_match")
class RegexMatchJudge(Judge):
    kind = "regex_match"
    labels = ("match", "no_match")
    batch_size = 4096
    checks_a_judgment = False  # a sample's pattern may come from its meta

    def __init__(self, name: str | None = None, pattern: str | None = None, meta_field: str | None = None,
                 mode: str = "search", flags: list[str] | None = None, **params: Any) -> None:
        super().__init__(name, **params)
        if pattern is None and meta_field is None:
            raise TypeError("regex_match needs 'pattern' or 'meta_field' (the meta field holding each sample's pattern)")
        if mode not in ("search", "fullmatch", "match"):
            raise TypeError(f"mode must be search, match or fullmatch, got {mode!r}")
        bad = sorted(set(flags or []) - set(_FLAGS))
        if bad:
            raise TypeError(f"unknown regex flag(s) {bad}; known: {sorted(_FLAGS)}")
        self.flags = 0
        for f in flags or []:
            self.flags |= _FLAGS[f]
        self.mode = mode
        self.meta_field = meta_field
        self.pattern = self._compile(pattern) if pattern is not None else None

    def _compile(self, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern, self.flags)
        except re.error as exc:
            raise TypeError(f"bad regular expression {pattern!r}: {exc}") from None

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        out = []
        for it in items:
            pat = self.pattern
            if pat is None or (self.meta_field and (it.meta or {}).get(self.meta_field) is not None):
                value = (it.meta or {}).get(self.meta_field) if self.meta_field else None
                if value is None:
                    out.append(Judgment(error=f"judge {self.name!r}: sample has no meta field {self.meta_field!r} with a pattern"))
                    continue
                try:
                    pat = self._compile(str(value))
                except TypeError as exc:
                    out.append(Judgment(error=str(exc)))
                    continue
            m = getattr(pat, self.mode)(it.response or "")
            out.append(Judgment(label="match" if m else "no_match", score=1.0 if m else 0.0,
                                raw={"pattern": pat.pattern, "matched": m.group(0) if m else None}))
        return out
