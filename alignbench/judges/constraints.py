"""``constraint_rules``: deterministic checks of the constraints an instruction states.

Each sample lists its constraints in ``meta.constraints`` (the meta field is a judge param) as
``{"type": ..., ...}`` objects. Verifiable types are checked by rule, following IFEval's checkers
where one exists (Zhou et al. 2023: strict lower-casing, ``endswith`` after stripping, JSON after
removing code fences):

=================  =========================  ==============================================
type               fields                     satisfied when the response ...
=================  =========================  ==============================================
``max_words``      ``n``                      has at most n words (whitespace-separated tokens
``min_words``      ``n``                      holding a letter or digit) / at least n words
``max_sentences``  ``n``                      has at most n sentences (ended by . ! ? or the end)
``include``        ``terms`` (list)           contains every term (case-insensitive, whole words)
``exclude``        ``terms`` (list)           contains none of the terms (same matching)
``bullets``        ``n``                      has exactly n bullet lines (``-``, ``*`` or ``•``)
``starts_with``    ``phrase``                 starts with the phrase (case-insensitive, stripped)
``ends_with``      ``phrase``                 ends with the phrase (case-insensitive, stripped)
``lowercase``                                 equals its lower-cased self
``uppercase``                                 equals its upper-cased self
``no_commas``                                 contains no comma
``json``           ``keys`` (optional list)   parses as a JSON object holding every key
``judge``          ``text``                   (not verifiable by rule: left to an LLM jury)
=================  =========================  ==============================================

Every constraint may carry ``text``: how the constraint reads for a person or an LLM jury (shown
in reports and jury prompts; a default is derived from the fields). The judgment's ``score`` is the share of rule-checkable constraints
satisfied (``None`` when the sample has none), ``label`` is ``pass``/``fail``/``n/a`` and ``raw``
holds each check (``checks``), the counts (``passed``, ``checked``) and the texts of the
constraints left to a jury (``unverifiable``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alignbench.errors import UsageError
from alignbench.judges.base import Judge
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput, Judgment

# type -> (required fields, optional fields)
SCHEMA: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "max_words": (("n",), ()),
    "min_words": (("n",), ()),
    "max_sentences": (("n",), ()),
    "include": (("terms",), ()),
    "exclude": (("terms",), ()),
    "bullets": (("n",), ()),
    "starts_with": (("phrase",), ()),
    "ends_with": (("phrase",), ()),
    "lowercase": ((), ()),
    "uppercase": ((), ()),
    "no_commas": ((), ()),
    "json": ((), ("keys",)),
    "judge": (("text",), ()),
}
UNVERIFIABLE = {"judge"}


@dataclass(frozen=True)
class Constraint:
    type: str
    n: int | None = None
    terms: tuple[str, ...] = ()
    phrase: str = ""  # starts_with / ends_with
    keys: tuple[str, ...] = ()
    text: str = field(default="", compare=False)  # how it reads (reports, jury prompts)

    @property
    def verifiable(self) -> bool:
        return self.type not in UNVERIFIABLE

    def describe(self) -> str:
        if self.text:
            return self.text
        t, n = self.type, self.n
        return {
            "max_words": f"at most {n} words",
            "min_words": f"at least {n} words",
            "max_sentences": f"at most {n} sentences",
            "include": "mention " + ", ".join(repr(x) for x in self.terms),
            "exclude": "do not mention " + ", ".join(repr(x) for x in self.terms),
            "bullets": f"exactly {n} bullet points",
            "starts_with": f"start with {self.phrase!r}",
            "ends_with": f"end with {self.phrase!r}",
            "lowercase": "all lowercase letters",
            "uppercase": "all capital letters",
            "no_commas": "no commas",
            "json": "a JSON object" + (" with keys " + ", ".join(repr(k) for k in self.keys) if self.keys else ""),
            "judge": "",
        }[t]


def parse_constraint(spec: Any, where: str) -> Constraint:
    """One ``{"type": ..., ...}`` object -> Constraint; UsageError naming ``where`` otherwise."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise UsageError(f"{where}: expected an object with a 'type', got {str(spec)[:60]!r}")
    t = spec["type"]
    if t not in SCHEMA:
        raise UsageError(f"{where}: unknown constraint type {t!r}; known: {', '.join(SCHEMA)}")
    required, optional = SCHEMA[t]
    allowed = set(required) | set(optional) | {"type", "text"}
    extra = sorted(set(spec) - allowed)
    missing = [f for f in required if f not in spec]
    if extra or missing:
        what = f"unknown field(s) {extra}" if extra else f"missing field(s) {missing}"
        raise UsageError(f"{where}: constraint {t!r}: {what}")
    n = spec.get("n")
    if "n" in required and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise UsageError(f"{where}: constraint {t!r}: 'n' must be a non-negative integer, got {n!r}")
    for key in ("terms", "keys"):
        v = spec.get(key)
        if key in spec and (not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v) or (key == "terms" and not v)):
            raise UsageError(f"{where}: constraint {t!r}: {key!r} must be a non-empty list of strings")
    for key in ("text", "phrase"):
        v = spec.get(key)
        if key in spec and (not isinstance(v, str) or not v.strip()):
            raise UsageError(f"{where}: constraint {t!r}: {key!r} must be a non-empty string")
    return Constraint(type=t, n=n, terms=tuple(spec.get("terms") or ()), keys=tuple(spec.get("keys") or ()),
                      phrase=spec.get("phrase") or "", text=spec.get("text") or "")


def parse_constraints(value: Any, where: str) -> list[Constraint]:
    """A sample's ``constraints`` list (a JSON string of one is accepted, as csv cells hold text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise UsageError(f"{where}: constraints are not valid JSON") from None
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where}: expected a non-empty list of constraints")
    return [parse_constraint(s, f"{where}: constraint {i + 1}") for i, s in enumerate(value)]


# checks --------------------------------------------------------------------------------------------
# Every pattern here runs over a model's response, which may be megabytes without a line break or a space:
# each is linear (no run of whitespace or punctuation is rescanned from each of its characters).
_BULLET = re.compile(r"^[^\S\n]*[-*\u2022]\s+\S", re.MULTILINE)
_FENCE_OPEN = re.compile(r"```[a-zA-Z]*\s*")
_SENTENCE_STOP = re.compile(r"(?<![.!?])[.!?]+(?:\s+|$)")


def count_words(text: str) -> int:
    return sum(1 for tok in text.split() if re.search(r"\w", tok))


def count_sentences(text: str) -> int:
    parts = [p for p in _SENTENCE_STOP.split(text.strip()) if re.search(r"\w", p)]
    return len(parts)


def mentions(text: str, term: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(term.lower()) + r"(?!\w)", text.lower()) is not None


def strip_fence(text: str) -> str:
    """The text without a Markdown code fence around it (```json ... ```), stripped."""
    t = text.strip()
    m = _FENCE_OPEN.match(t)
    if m:
        t = t[m.end():]
    if t.endswith("```"):
        t = t[:-3]
    return t.strip()


def parse_json_object(text: str) -> Any:
    return json.loads(strip_fence(text))


def _json_check(c: Constraint, response: str) -> tuple[bool, str]:
    try:
        obj = parse_json_object(response)
    except (json.JSONDecodeError, ValueError):
        return False, "not valid JSON"
    if not isinstance(obj, dict):
        return False, f"JSON {type(obj).__name__}, not an object"
    missing = [k for k in c.keys if k not in obj]
    return (not missing), (f"missing keys {missing}" if missing else "valid JSON object")


CHECKS: dict[str, Callable[[Constraint, str], tuple[bool, str]]] = {
    "max_words": lambda c, r: (count_words(r) <= c.n, f"{count_words(r)} words"),
    "min_words": lambda c, r: (count_words(r) >= c.n, f"{count_words(r)} words"),
    "max_sentences": lambda c, r: (count_sentences(r) <= c.n, f"{count_sentences(r)} sentences"),
    "include": lambda c, r: (all(mentions(r, t) for t in c.terms), "missing " + repr([t for t in c.terms if not mentions(r, t)])),
    "exclude": lambda c, r: (not any(mentions(r, t) for t in c.terms), "found " + repr([t for t in c.terms if mentions(r, t)])),
    "bullets": lambda c, r: (len(_BULLET.findall(r)) == c.n, f"{len(_BULLET.findall(r))} bullets"),
    "starts_with": lambda c, r: (r.strip().lower().startswith(c.phrase.strip().lower()), f"starts {r.strip()[:30]!r}"),
    "ends_with": lambda c, r: (r.strip().lower().endswith(c.phrase.strip().lower()), f"ends {r.strip()[-30:]!r}"),
    "lowercase": lambda c, r: (r == r.lower(), "lowercase" if r == r.lower() else "has capitals"),
    "uppercase": lambda c, r: (r == r.upper(), "uppercase" if r == r.upper() else "has lowercase letters"),
    "no_commas": lambda c, r: ("," not in r, f"{r.count(',')} commas"),
    "json": _json_check,
}


def check(c: Constraint, response: str) -> tuple[bool | None, str]:
    """(satisfied, detail); ``None`` for a constraint no rule can check."""
    if not c.verifiable:
        return None, "left to a jury"
    ok, detail = CHECKS[c.type](c, response or "")
    return bool(ok), ("ok" if ok and c.type in ("include", "exclude") else detail)


@judge_kinds.register("constraint_rules")
class ConstraintRulesJudge(Judge):
    kind = "constraint_rules"
    batch_size = 4096
    checks_a_judgment = False  # the constraints come from each sample's meta

    def __init__(self, name: str | None = None, meta_field: str = "constraints", **params: Any) -> None:
        super().__init__(name, **params)
        self.meta_field = meta_field

    def judge_one(self, it: JudgeInput) -> Judgment:
        if self.meta_field not in (it.meta or {}):
            return Judgment(error=f"sample {it.sample_id!r} has no meta.{self.meta_field}")
        try:
            constraints = parse_constraints(it.meta[self.meta_field], f"sample {it.sample_id!r}: meta.{self.meta_field}")
        except UsageError as exc:
            return Judgment(error=str(exc))
        checks = []
        for c in constraints:
            ok, detail = check(c, it.response)
            checks.append({"type": c.type, "constraint": c.describe(), "ok": ok, "detail": detail})
        done = [x["ok"] for x in checks if x["ok"] is not None]
        raw = {"checks": checks, "passed": sum(done), "checked": len(done),
               "unverifiable": [x["constraint"] for x in checks if x["ok"] is None]}
        if not done:
            return Judgment(label="n/a", score=None, raw=raw)
        return Judgment(label="pass" if all(done) else "fail", score=sum(done) / len(done), raw=raw)

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        return [self.judge_one(it) for it in items]
