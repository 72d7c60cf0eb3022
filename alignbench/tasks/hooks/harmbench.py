"""HarmBench text behaviors from the authors' CSV files or the Hugging Face copy, in one layout.

``behavior_rows`` is a ``dataset.loader``. The authors' files (``harmbench_behaviors_text_*.csv``)
already have the columns the task maps: ``BehaviorID``, ``Behavior``, ``FunctionalCategory``
(standard / contextual / copyright), ``SemanticCategory`` and ``ContextString``. The hub copy
(``walledai/HarmBench``) splits them into one config per functional category with other names
(``prompt``, ``category``, ``context``; no ids), so its rows are renamed into the CSV layout, with
``BehaviorID`` = ``CONFIG-INDEX``. Either way the YAML's ``filter`` and prompt template then apply
to the same columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.tasks.data import load_rows, read_rows

Row = dict[str, Any]
HUB_CONFIGS = ("standard", "contextual", "copyright")


def _from_hub(row: Row, config: str, index: int) -> Row:
    return {
        "BehaviorID": f"{config}-{index}",
        "Behavior": row.get("prompt"),
        "FunctionalCategory": config,
        "SemanticCategory": row.get("category") or config,
        "ContextString": row.get("context") or "",
    }


def behavior_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    if paths:
        rows: list[Row] = []
        for p in paths:
            rows.extend(read_rows(p, cfg.dataset.format, cfg.dataset.encoding))
        return rows
    configs = [cfg.dataset.name] if cfg.dataset.name else list(HUB_CONFIGS)
    out: list[Row] = []
    for config in configs:
        one = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"name": config, "data_files": None, "loader": None})})
        out += [_from_hub(r, config, i) for i, r in enumerate(load_rows(one))]
    return out
