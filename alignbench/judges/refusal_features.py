"""Refusal phrase features for learned refusal judges: what the string-match judges see, as numbers.

Eight values per response: XSTest's own opening match (``xstest_strmatch``), the ``refusal_xstest``
verdict one-hot (full / partial refusal), a refusal phrase anywhere, a pivot to helping ("however,
here is ..."), log(1 + words) / 6, and fewer than 30 / 80 words (a refusal that stops short).
"""

from __future__ import annotations

import math

import numpy as np

from alignbench.judges.refusal import _PIVOT_RE, XSTEST_REFUSAL_PHRASES, XSTEST_STRMATCH_OPENINGS, normalize, xstest_label

N_PHRASE_FEATURES = 8


def phrase_features(response: str) -> list[float]:
    text = normalize(response)
    label, _ = xstest_label(response)
    words = len(response.split())
    return [float(response.lower().strip().startswith(XSTEST_STRMATCH_OPENINGS)), float(label == "full_refusal"),
            float(label == "partial_refusal"), float(any(p in text for p in XSTEST_REFUSAL_PHRASES)),
            float(_PIVOT_RE.search(text) is not None), math.log1p(words) / 6, float(words < 30), float(words < 80)]


def phrase_matrix(responses: list[str]) -> np.ndarray:
    return np.asarray([phrase_features(r) for r in responses], dtype=np.float32).reshape(len(responses), N_PHRASE_FEATURES)
