"""Non-AmbigQA rows as Alignment for Honesty builds them (``data/evaluation_data/process_evaluation_dataset.py``).

From the hub (``ambig_qa``, config ``light``, splits train and validation): keep the questions whose
only annotation is ``singleAnswer``; ``question_id`` = the AmbigQA id, ``answers`` = that annotation's
answers. A local file (the authors' ``nonambigqa.jsonl``) is read as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.tasks.data import read_rows

SPLITS = ("train", "validation")


def single_answer_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        ann = row.get("annotations") or {}
        types, answers = list(ann.get("type") or []), list(ann.get("answer") or [])
        if len(types) != 1 or types[0] != "singleAnswer" or len(answers) != 1:
            continue
        refs = [str(a) for a in answers[0]]
        out.append({"question_id": str(row["id"]), "question": row["question"], "answers": refs, "gold_answer": refs[0]})
    return out


def nonambigqa_rows(cfg: TaskConfig, paths: list[Path]) -> list[dict[str, Any]]:
    if paths:
        return [row for p in paths for row in read_rows(p, cfg.dataset.format)]
    try:
        import datasets

        rows = [dict(r) for split in SPLITS for r in datasets.load_dataset(cfg.dataset.hub, cfg.dataset.name, split=split)]
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UsageError(f"task {cfg.name!r}: cannot load hub dataset {cfg.dataset.hub!r} ({first[:200]}); "
                         f"offline, pass --data-files {cfg.name}=nonambigqa.jsonl") from None
    return single_answer_rows(rows)
