"""BIG-bench multiple-choice data (e.g. HHH alignment) from task.json files or the Hugging Face copy.

``multiple_choice_rows`` is a ``dataset.loader``: it reads whole files because BIG-bench keeps the
prompt format at the top of each task.json, next to ``examples``. Accepted sources:

- BIG-bench ``task.json`` files, or a folder of them (``hhh_alignment/harmless/task.json``, ...):
  examples ``{"input", "target_scores": {answer: score}}``;
- the Hugging Face layout (``HuggingFaceH4/hhh_alignment``: one config per subset, split ``test``;
  rows ``{"input", "targets": {"choices": [...], "labels": [...]}}``), from the hub (all subsets, or
  ``dataset.name``) or from local json/jsonl/parquet exports.

Each example becomes a row: ``id`` (subset-index), ``subset`` (the folder named after a subset, the
task's ``name`` suffix, or the hub config), ``prompt``, ``choices`` (in data order) and ``target``
(indices of the best-scored choices, as BIG-bench's multiple_choice_grade credits them).

The prompt is BIG-bench's zero-shot format (``bigbench.api.json_task.default_format_fn``), which is
also what lm-eval's bigbench tasks use as context before " " + choice:
``task_prefix + example_input_prefix + input [+ choice_prefix + choice ...] + example_output_prefix``
with the task.json's own values or BIG-bench's defaults (``""``, ``"\\nQ: "``, ``"\\n  choice: "``,
``"\\nA: "``, choices appended). BIG-bench appends the choices in a random order; here they are
appended in data order, so runs are reproducible. Rows without a task.json (Hugging Face layout)
do not carry the format: they get the defaults without appended choices, which is what HHH
alignment's task.json files specify.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.tasks.data import load_rows, read_rows

Row = dict[str, Any]
HHH_SUBSETS = ("harmless", "helpful", "honest", "other")
BIGBENCH_DEFAULTS = {"task_prefix": "", "example_input_prefix": "\nQ: ", "example_output_prefix": "\nA: ",
                     "choice_prefix": "\n  choice: ", "append_choices_to_input": True}
HUB_FORMAT = {**BIGBENCH_DEFAULTS, "append_choices_to_input": False}


def format_prompt(text: str, choices: list[str], fmt: dict[str, Any]) -> str:
    """BIG-bench's zero-shot input for one example."""
    body = str(text)
    if fmt["append_choices_to_input"]:
        body += fmt["choice_prefix"] + fmt["choice_prefix"].join(choices)
    return fmt["task_prefix"] + fmt["example_input_prefix"] + body + fmt["example_output_prefix"]


def _choices_and_target(example: Row, where: str) -> tuple[list[str], list[int]]:
    if isinstance(example.get("target_scores"), dict) and example["target_scores"]:
        choices, scores = list(example["target_scores"]), list(example["target_scores"].values())
    elif isinstance(example.get("targets"), dict):
        t = example["targets"]
        choices = t.get("choices").tolist() if hasattr(t.get("choices"), "tolist") else t.get("choices")
        scores = t.get("labels").tolist() if hasattr(t.get("labels"), "tolist") else t.get("labels")
        if not isinstance(choices, list) or not isinstance(scores, list) or len(choices) != len(scores) or not choices:
            raise UsageError(f"{where}: 'targets' needs equal-length non-empty 'choices' and 'labels'")
    else:
        raise UsageError(f"{where}: needs 'target_scores' {{answer: score}} or 'targets' {{choices, labels}}")
    try:
        values = [float(s) for s in scores]
    except (TypeError, ValueError):
        raise UsageError(f"{where}: choice scores must be numbers") from None
    best = max(values)
    return [str(c) for c in choices], [i for i, v in enumerate(values) if v == best]


def _subset_of(path: Path | None, name: Any = None) -> str | None:
    """The HHH subset a file belongs to: a folder on its path, else the task.json name's suffix."""
    if path is not None:
        for part in reversed(path.parent.parts):
            if part in HHH_SUBSETS:
                return part
    if isinstance(name, str):
        tail = name.rsplit("_", 1)[-1]
        if tail in HHH_SUBSETS:
            return tail
    return path.parent.name if path is not None and path.name == "task.json" else None


def _file_examples(path: Path, cfg: TaskConfig) -> tuple[list[Row], dict[str, Any], str | None]:
    """(examples, prompt format, subset) of one local file."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: cannot read as JSON ({exc.__class__.__name__}: {exc})") from None
        if isinstance(data, dict) and "examples" in data:
            if not isinstance(data["examples"], list) or not all(isinstance(e, dict) for e in data["examples"]):
                raise UsageError(f"{path}: 'examples' must be a list of objects")
            fmt = {k: data.get(k, v) for k, v in BIGBENCH_DEFAULTS.items()}
            bad = [k for k, v in fmt.items() if not isinstance(v, bool if k == "append_choices_to_input" else str)]
            if bad:
                raise UsageError(f"{path}: field(s) {bad} have the wrong type")
            return data["examples"], fmt, _subset_of(path, data.get("name"))
    return read_rows(path, cfg.dataset.format, cfg.dataset.encoding), HUB_FORMAT, _subset_of(path)


def _rows(examples: list[Row], fmt: dict[str, Any], subset: str | None, source: str, counters: dict[str, int]) -> list[Row]:
    out = []
    for i, ex in enumerate(examples):
        where = f"{source}: example {i + 1}"
        if not isinstance(ex.get("input"), str):
            raise UsageError(f"{where}: missing string field 'input'")
        choices, target = _choices_and_target(ex, where)
        sub = subset or (ex.get("subset") if isinstance(ex.get("subset"), str) else None)
        key = sub or "example"
        counters[key] = counters.get(key, 0) + 1
        out.append({"id": f"{key}-{counters[key]:03d}", "subset": sub, "input": ex["input"],
                    "prompt": format_prompt(ex["input"], choices, fmt), "choices": choices, "target": target})
    return out


def multiple_choice_rows(cfg: TaskConfig, paths: list[Path]) -> list[Row]:
    """``dataset.loader``: rows with id, subset, prompt, choices, target (see the module docstring)."""
    counters: dict[str, int] = {}
    rows: list[Row] = []
    if paths:
        for p in paths:
            examples, fmt, subset = _file_examples(p, cfg)
            rows += _rows(examples, fmt, subset, str(p), counters)
        return rows
    subsets = [cfg.dataset.name] if cfg.dataset.name else list(HHH_SUBSETS)
    for subset in subsets:
        one = cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"name": subset, "data_files": None, "loader": None})})
        rows += _rows(load_rows(one), HUB_FORMAT, subset, f"hub dataset {cfg.dataset.hub!r} ({subset})", counters)
    return rows
