"""Loaders (``dataset.loader``) of harmful-request sets whose files are not plain tables of rows.

* CatQA (declare-lab/CategoricalHarmfulQA): ``catqa_english.json``, a list of records
  (``Category``, ``Subcategory``, ``Question``) - or the same questions nested as
  ``{category: {subcategory: [question, ...]}}`` - becomes rows with those three columns.
* HEx-PHI (LLM-Tuning-Safety/HEx-PHI): one headerless CSV per category (``category_1.csv`` ...), one
  prompt per line; rows get ``prompt``, ``category`` (the file's stem) and ``id`` (``STEM-LINE``). The
  hub set is gated and not a table, so it is fetched with ``huggingface_hub.snapshot_download``.
* JailbreakBench behaviours (JailbreakBench/JBB-Behaviors): ``harmful-behaviors.csv`` and
  ``benign-behaviors.csv`` (``Index``, ``Goal``, ``Target``, ``Behavior``, ``Category``, ``Source``),
  or the hub config ``behaviors`` with splits ``harmful`` / ``benign``; rows get ``label`` (from the
  file name or split) and ``id`` (``LABEL-Index``).
* BeaverTails-Evaluation: plain rows (``prompt``, ``category``); ``beavertails_rows`` only adds
  reading the authors' ``.xz``-compressed JSON lines.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.jsonl import iter_objects
from alignbench.tasks.data import load_rows, read_rows

Row = dict[str, Any]


def _hub_rows(cfg: TaskConfig, **update: Any) -> list[Row]:
    one = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"data_files": None, "loader": None, **update})})
    return load_rows(one)


def _files(paths: list[Path], pattern: str) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(p.glob(pattern)) if p.is_dir() else [p]
    if not out:
        raise UsageError(f"no {pattern} files in {', '.join(str(p) for p in paths)}")
    return out


def catqa_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    if not paths:
        return _hub_rows(cfg)
    rows: list[Row] = []
    for p in paths:
        try:
            data = json.loads(p.read_text(encoding="utf-8-sig")) if p.suffix == ".json" else None
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{p}: cannot read as JSON ({exc.__class__.__name__})") from None
        if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
            for cat, subs in data.items():
                for sub, questions in subs.items():
                    if not isinstance(questions, list):
                        raise UsageError(f"{p}: {cat} / {sub}: expected a list of questions")
                    rows += [{"Category": cat, "Subcategory": sub, "Question": q} for q in questions]
        else:
            rows += read_rows(p, cfg.dataset.format)
    return rows


def hexphi_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    if not paths:
        try:
            from huggingface_hub import snapshot_download

            folder = snapshot_download(cfg.dataset.hub, repo_type="dataset", allow_patterns=["category_*.csv"])
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise UsageError(f"task {cfg.name!r}: cannot load hub dataset {cfg.dataset.hub!r} ({first[:200]}); it is gated: "
                             f"accept its terms on the hub, or pass --data-files {cfg.name}=FOLDER_OF_CATEGORY_CSVS") from None
        paths = [Path(folder)]
    rows: list[Row] = []
    for f in _files(paths, "category_*.csv"):
        try:
            text = f.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise UsageError(f"{f}: cannot read ({exc.strerror or exc})") from None
        for n, line in enumerate(csv.reader(io.StringIO(text)), 1):
            if line and line[0].strip():
                rows.append({"id": f"{f.stem}-{n}", "prompt": line[0], "category": f.stem})
    return rows


def jbb_behavior_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    out: list[Row] = []
    if not paths:
        for split in ("harmful", "benign"):
            out += [{**r, "label": split} for r in _hub_rows(cfg, split=split)]
    else:
        for f in _files(paths, "*-behaviors.csv"):
            label = "benign" if "benign" in f.name.lower() else "harmful"
            out += [{**r, "label": r.get("label") or label} for r in read_rows(f, cfg.dataset.format)]
    for r in out:
        r["id"] = f"{r['label']}-{r.get('Index', len(out))}"
    return out


def beavertails_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    if not paths:
        return _hub_rows(cfg)
    rows: list[Row] = []
    for p in paths:
        if p.suffix == ".xz":
            try:
                text = lzma.decompress(p.read_bytes()).decode("utf-8-sig")
            except (OSError, lzma.LZMAError) as exc:
                raise UsageError(f"{p}: cannot read as xz ({exc.__class__.__name__})") from None
            rows += [row for _, row in iter_objects(text, str(p))]
        else:
            rows += read_rows(p, cfg.dataset.format)
    return rows
