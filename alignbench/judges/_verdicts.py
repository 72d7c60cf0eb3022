"""Strict parsing of LLM-judge verdicts.

A judge model must end its answer with a verdict line ``VERDICT: <value>`` (for multi-aspect rubrics
one line per aspect, ``VERDICT <aspect>: <value>``) or answer with a JSON object
(``{"verdict": <value>}``, or ``{"<aspect>": <value> | {"score": <value>}, ...}``). Anything else -
no verdict, conflicting verdict lines, a value outside the scale, a missing aspect - raises
``VerdictError`` with the reason; the caller records it as a parse failure. Nothing is guessed or
defaulted.

Values are matched after removing markdown emphasis, quotes, brackets and a trailing full stop,
case-insensitively, against the scale: an integer range (``"1-5"``: the value must be a whole number
in range, ``4/5`` allowed) or named labels (``[yes, no]`` or ``{yes: 1.0, no: 0.0}`` with scores).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class VerdictError(ValueError):
    """The judge's output holds no valid verdict; the message says why (one line)."""


@dataclass(frozen=True)
class Scale:
    """The values a verdict may take and the score of each."""

    labels: tuple[str, ...]
    scores: tuple[float | None, ...]
    numeric: bool = False  # an integer range: the label is the number as text

    @classmethod
    def parse(cls, spec: Any) -> "Scale":
        """``"1-5"`` | ``{"min": 1, "max": 5}`` | ``[label, ...]`` | ``{label: score, ...}``."""
        if isinstance(spec, str):
            m = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*", spec)
            if not m:
                raise TypeError(f"scale {spec!r}: expected 'LOW-HIGH' (e.g. '1-5'), a list of labels or a label->score mapping")
            lo, hi = int(m.group(1)), int(m.group(2))
            return cls.range(lo, hi)
        if isinstance(spec, dict) and set(spec) == {"min", "max"}:
            return cls.range(int(spec["min"]), int(spec["max"]))
        labels = list(spec) if isinstance(spec, (dict, list, tuple)) else []
        if any(isinstance(x, bool) for x in labels):
            raise TypeError(f"scale {spec!r}: a label is a boolean; quote yes/no/true/false labels in YAML ('yes')")
        if isinstance(spec, dict) and spec:
            try:
                scores = tuple(None if v is None else float(v) for v in spec.values())
            except (TypeError, ValueError):
                raise TypeError(f"scale {spec!r}: label scores must be numbers") from None
            return cls(tuple(str(k) for k in spec), scores)
        if isinstance(spec, (list, tuple)) and spec and all(isinstance(x, (str, int)) for x in spec):
            return cls(tuple(str(x) for x in spec), tuple(None for _ in spec))
        raise TypeError(f"scale {spec!r}: expected 'LOW-HIGH', a list of labels or a label->score mapping")

    @classmethod
    def range(cls, lo: int, hi: int) -> "Scale":
        if hi <= lo:
            raise TypeError(f"scale {lo}-{hi}: the upper end must be above the lower end")
        return cls(tuple(str(i) for i in range(lo, hi + 1)), tuple(float(i) for i in range(lo, hi + 1)), numeric=True)

    def describe(self) -> str:
        return f"{self.labels[0]}-{self.labels[-1]}" if self.numeric else "|".join(self.labels)

    def score(self, label: str) -> float | None:
        return self.scores[self.labels.index(label)]

    def match(self, value: Any) -> str:
        """The scale label that ``value`` names; VerdictError otherwise."""
        if isinstance(value, bool):
            raise VerdictError(f"verdict {value!r} is not on the scale {self.describe()}")
        if isinstance(value, (int, float)) and self.numeric:
            if float(value) != int(value):
                raise VerdictError(f"verdict {value!r} is not a whole number on the scale {self.describe()}")
            value = str(int(value))
        text = clean_value(str(value))
        if self.numeric:
            m = re.fullmatch(r"(-?\d+)(?:\s*/\s*(\d+))?", text)
            if m and (m.group(2) is None or m.group(2) == self.labels[-1]) and m.group(1) in self.labels:
                return m.group(1)
        else:
            for label in self.labels:
                if text.lower() == label.lower():
                    return label
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise VerdictError(f"verdict {shown!r} is not on the scale {self.describe()}")


def clean_value(text: str) -> str:
    """Strip markdown emphasis, quotes, brackets, and a trailing full stop around a verdict value."""
    t = text.strip()
    prev = None
    while prev != t:
        prev = t
        t = t.strip().strip("*_`'\"").strip()
        if len(t) >= 2 and t[0] + t[-1] in ("[]", "()", "<>", "{}"):
            t = t[1:-1]
        t = t.rstrip(".")
    return t.strip()


# Linear over any answer: each pattern takes its line to the end and the rest is cut in code, so no run of blanks
# is rescanned from each of its characters. ``VERDICT: value`` lines; ``VERDICT aspect: value`` lines.
_VERDICT_LINE = re.compile(r"^[ \t>#*_-]*verdict[*_ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_ASPECT_HEAD = re.compile(r"^[ \t>#*_-]*verdict[ \t]+[*_`'\"]*(?=[A-Za-z])(.*)$", re.IGNORECASE | re.MULTILINE)
_ASPECT_NAME = re.compile(r"[A-Za-z][\w -]*")


def aspect_lines(text: str) -> list[tuple[str, str]]:
    """(aspect name, value) of every ``VERDICT aspect: value`` line: the name (letters, digits, ``_``, ``-`` and
    spaces, optionally quoted or bold) ends at the line's first colon, the value is the rest of the line."""
    out = []
    for rest in _ASPECT_HEAD.findall(text):
        colon = rest.find(":")
        if colon < 0:
            continue
        name = rest[:colon].rstrip(" \t").rstrip("*_`'\"")
        if _ASPECT_NAME.fullmatch(name):
            out.append((name, rest[colon + 1:].strip(" \t")))
    return out


def _json_object(text: str) -> dict[str, Any] | None:
    t = text.strip()
    if len(t) >= 6 and t.startswith("```") and t.endswith("```"):  # a fenced block: ```json ... ```
        t = t[3:-3]
        if t[:4].lower() == "json":
            t = t[4:]
        t = t.strip()
    if not (t.startswith("{") and t.endswith("}")):
        return None
    try:
        obj = json.loads(t)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def parse_verdict(text: str, scale: Scale) -> str:
    """The scale label of a single-verdict answer."""
    if not text or not text.strip():
        raise VerdictError("empty judge output")
    values = [v.rstrip(" \t") for v in _VERDICT_LINE.findall(text)]
    if not values:
        obj = _json_object(text)
        if obj is not None:
            keys = [k for k in obj if str(k).lower() == "verdict"]
            if len(keys) != 1:
                raise VerdictError("JSON answer without a 'verdict' key")
            return scale.match(obj[keys[0]])
        raise VerdictError("no 'VERDICT: <value>' line")
    labels = {scale.match(v) for v in values}
    if len(labels) > 1:
        raise VerdictError(f"{len(values)} conflicting VERDICT lines ({', '.join(sorted(labels))})")
    return labels.pop()


def parse_aspects(text: str, aspects: list[str], scale: Scale) -> dict[str, str]:
    """Scale labels per aspect of a multi-aspect answer; every aspect must be given exactly once."""
    if not text or not text.strip():
        raise VerdictError("empty judge output")
    wanted = {a.lower(): a for a in aspects}
    found: dict[str, set[str]] = {}
    lines = aspect_lines(text)
    if lines:
        for name, value in lines:
            key = name.strip().lower()
            if key in wanted:
                found.setdefault(wanted[key], set()).add(scale.match(value))
    else:
        obj = _json_object(text)
        if obj is None:
            raise VerdictError("no 'VERDICT <aspect>: <value>' lines")
        for k, v in obj.items():
            key = str(k).strip().lower()
            if key in wanted:
                if isinstance(v, dict):
                    inner = [x for x in v if str(x).lower() in ("score", "rating", "verdict")]
                    if len(inner) != 1:
                        raise VerdictError(f"aspect {wanted[key]!r}: object without a 'score'")
                    v = v[inner[0]]
                found.setdefault(wanted[key], set()).add(scale.match(v))
    missing = [a for a in aspects if a not in found]
    if missing:
        raise VerdictError(f"no verdict for aspect(s) {', '.join(missing)}")
    conflicting = [a for a in aspects if len(found[a]) > 1]
    if conflicting:
        raise VerdictError(f"conflicting verdicts for aspect(s) {', '.join(conflicting)}")
    return {a: next(iter(found[a])) for a in aspects}
