"""``--limit N``: a deterministic stratified subset, so every label and category is represented.

Samples are grouped into strata by (label, category) (``meta.label``, ``Sample.category``; a missing
one is its own value), strata in the order they first appear in the data and samples in data order
within each. The subset takes one sample from each stratum in turn (round robin) until it holds N,
and keeps data order. The same data and N always give the same subset, and the first N samples of
a data set with one stratum are exactly its first N.
"""

from __future__ import annotations

from alignbench.types import Sample


def stratum_of(sample: Sample) -> tuple[str | None, str | None]:
    label = sample.meta.get("label") if isinstance(sample.meta, dict) else None
    return (None if label is None else str(label), sample.category)


def stratified_limit(samples: list[Sample], limit: int | None) -> list[Sample]:
    """At most ``limit`` samples, round robin over (label, category) strata, in data order."""
    if limit is None or limit >= len(samples):
        return list(samples)
    strata: dict[tuple[str | None, str | None], list[int]] = {}
    for i, s in enumerate(samples):
        strata.setdefault(stratum_of(s), []).append(i)
    queues = list(strata.values())
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        for q in queues:
            if depth < len(q) and len(chosen) < limit:
                chosen.append(q[depth])
        depth += 1
    return [samples[i] for i in sorted(chosen)]


__all__ = ["stratified_limit", "stratum_of"]
