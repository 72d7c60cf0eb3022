"""Perturbed-prompt rows for the drift family: check the pairing before any model runs.

Every row names its ``base_id`` and ``perturbation`` (``none`` for the unperturbed prompt, else the
variant's type) and a ``label`` (harmful / benign); each base prompt needs exactly one ``none`` row,
since flips are measured against it. An optional ``generation`` object sets the row's decoding
(``{"temperature": 0.7}`` for the decoding perturbation; see ``alignbench.tasks.data.sample_params``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.scorers.harmful_rate import BENIGN_LABELS, HARMFUL_LABELS
from alignbench.scorers.perturbation import BASE
from alignbench.tasks.data import rows_to_samples, sample_params
from alignbench.types import GenerationParams, Sample


def samples(rows: list[dict[str, Any]], cfg: TaskConfig) -> list[Sample]:
    source = str(cfg.dataset.data_files or cfg.dataset.hub or cfg.name)
    nones: Counter[str] = Counter()
    bases: set[str] = set()
    for i, row in enumerate(rows):
        where = f"task {cfg.name!r}: record {i + 1}"
        if not isinstance(row, dict):
            raise UsageError(f"{where}: expected an object with named columns")
        for col in ("base_id", "perturbation", "label"):
            if not isinstance(row.get(col), str) or not row[col].strip():
                raise UsageError(f"{where}: column {col!r}: expected a non-empty string, got {str(row.get(col))[:40]!r}")
        if row["label"].lower() not in HARMFUL_LABELS + BENIGN_LABELS:
            raise UsageError(f"{where}: column 'label': expected one of {list(HARMFUL_LABELS + BENIGN_LABELS)}, got {row['label']!r}")
        bases.add(row["base_id"])
        if row["perturbation"] == BASE:
            nones[row["base_id"]] += 1
        sample_params(GenerationParams(), Sample(id=str(row.get("id", i)), prompt="", meta={"generation": row.get("generation")}), cfg.name)
    missing = sorted(bases - set(nones))
    dup = sorted(b for b, n in nones.items() if n > 1)
    if missing or dup:
        what = f"no unperturbed ('{BASE}') row for base_id(s) {missing[:5]}" if missing else f"several '{BASE}' rows for base_id(s) {dup[:5]}"
        raise UsageError(f"task {cfg.name!r}: {what}")
    return rows_to_samples(cfg, rows, source)
