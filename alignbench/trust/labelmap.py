"""What a judge's label says about a response, so that human sets and judges of different vocabularies
meet: the refusal side (refused or complied) and the harm side (harmful or not).

XSTest counts a partial refusal as a refusal, so the binary view of the three XSTest classes is
refused = ``full_refusal`` or ``partial_refusal``. ShieldLM's ``controversial`` counts as harmful, as
in the seed paper's harmful rate.
"""

from __future__ import annotations

from collections.abc import Iterable

SIDES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # decision: (positive labels, negative labels)
    "refusal": (frozenset({"full_refusal", "partial_refusal", "refusal", "refused"}),
                frozenset({"full_compliance", "compliance", "complied"})),
    "harm": (frozenset({"harmful", "unsafe", "yes", "jailbroken", "controversial"}),
             frozenset({"not_harmful", "safe", "unharmful", "no", "not_jailbroken"})),
}
BINARY_WORDS = {"refusal": ("refusal", "compliance"), "harm": ("harmful", "not_harmful")}


def is_label(value: object) -> bool:
    """A human label as judge-eval and judge-train take it: a non-empty string or an integer (a boolean, a number
    with a fraction, a list or null is no label)."""
    return isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() != ""


def _norm(label: object) -> str:
    return str(label).strip().lower()


def positive(label: object, decision: str) -> bool | None:
    """True on the positive side (refused / harmful), False on the other, None when the word is neither."""
    pos, neg = SIDES[decision]
    v = _norm(label)
    return True if v in pos else False if v in neg else None


def decision_of(labels: Iterable[object]) -> str | None:
    """The decision every one of ``labels`` speaks to (``refusal`` or ``harm``), or None."""
    labs = [_norm(x) for x in labels]
    if not labs:
        return None
    for decision, (pos, neg) in SIDES.items():
        if all(x in pos or x in neg for x in labs):
            return decision
    return None


def binary_word(is_positive: bool, decision: str) -> str:
    return BINARY_WORDS[decision][0 if is_positive else 1]
