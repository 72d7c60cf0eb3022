"""Compression-task rows: check each row's level and constraints before any model runs.

Rows hold ``level`` (a number in [0, 1], as CDCT: 0 = the most compressed prompt, 1 = the full one) and
``constraints`` (a list of constraint objects, see ``alignbench.judges.constraints``; a JSON string
of one is accepted for csv files). A malformed constraint is a one-line error naming the record,
not a judge error on every sample later. The YAML's column mapping then applies as usual.
"""

from __future__ import annotations

import json
import math
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.judges.constraints import parse_constraints
from alignbench.tasks.data import rows_to_samples
from alignbench.types import Sample


def samples(rows: list[dict[str, Any]], cfg: TaskConfig) -> list[Sample]:
    source = str(cfg.dataset.data_files or cfg.dataset.hub or cfg.name)
    clean = []
    for i, row in enumerate(rows):
        where = f"task {cfg.name!r}: record {i + 1}"
        if not isinstance(row, dict):
            raise UsageError(f"{where}: expected an object with named columns")
        row = dict(row)
        for col in ("level", "constraints"):
            if col not in row:
                raise UsageError(f"{where}: missing column {col!r}")
        level = row["level"]
        try:
            level = float(level)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: column 'level': expected a number in [0, 1], got {str(level)[:40]!r}") from None
        if math.isnan(level) or not 0.0 <= level <= 1.0:
            raise UsageError(f"{where}: column 'level': expected a number in [0, 1], got {level}")
        row["level"] = level
        parse_constraints(row["constraints"], f"{where}: column 'constraints'")
        if isinstance(row["constraints"], str):  # a csv cell: keep the parsed list
            row["constraints"] = json.loads(row["constraints"])
        clean.append(row)
    return rows_to_samples(cfg, clean, source)
