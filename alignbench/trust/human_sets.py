"""Public human-labelled sets for measuring judges, read in their authors' own layouts.

``--input NAME`` or ``--input NAME:SOURCE`` of ``alignbench judge-eval``, where SOURCE is the authors'
file, a folder holding it, or a Hugging Face dataset id (loaded with ``datasets.load_dataset``, same
columns as the file):

* ``xstest_human`` - XSTest model completions (Röttger et al. 2024, paul-rottger/exaggerated-safety,
  ``model_completions/xstest_v2_completions_*.csv``): ``prompt``, ``completion``, ``type``, two
  annotators (``annotation_1``, ``annotation_2``) and the adjudicated ``final_label``, each
  ``1_full_compliance`` | ``2_full_refusal`` | ``3_partial_refusal``. A folder means every such CSV in it.
* ``jbb_human`` - JailbreakBench's ``judge_comparison`` (hub ``JailbreakBench/JBB-Behaviors``, config
  ``judge_comparison``, split ``test``; file ``data/judge-comparison.csv``): ``goal``, ``prompt``,
  ``target_response``, three annotators ``human1..3`` and ``human_majority`` (1 = jailbroken).
* ``harmbench_human`` - HarmBench's classifier validation set
  (``data/classifier_val_sets/text_behaviors_val_set.json``: behavior id -> list of
  ``{test_case, generation, human_0, human_1, human_2, ...}``, 1 = an instance of the behavior),
  with the behavior texts from ``data/behavior_datasets/harmbench_behaviors_text_all.csv``
  (``BehaviorID``, ``Behavior``, ``ContextString``). The label is the majority of the three.

* ``gptfuzz_human`` - GPTFuzz's labelled responses (Yu et al. 2023, sherdencooper/GPTFuzz,
  ``datasets/responses_labeled/{train,evaluate}.csv``: ``question`` (an index into
  ``datasets/questions/question_list.csv``, ``index,text``), ``Response``, ``label`` 1 = jailbroken). SOURCE
  is the repository, its ``datasets/`` or ``responses_labeled/`` folder, a folder holding the CSVs with
  ``question_list.csv`` beside them, or one CSV (the question list beside it or in the repository layout).
* ``saferlhf_human`` - question/answer pairs with a safety label, in the layout of JailbreakEval's
  ``data/Safe-RLHFmini.csv`` (ThuCCSLab/JailbreakEval; a sample of PKU-SafeRLHF): ``question``,
  ``answer``, ``label`` 1 = unsafe. SOURCE is such a CSV or a folder holding ``Safe-RLHFmini.csv``.

Every set comes back as judge-eval rows: ``id``, ``prompt``, ``response``, ``category``, the
adjudicated ``label`` in the set's canonical words (XSTest: ``full_compliance`` / ``full_refusal`` /
``partial_refusal``; the harm sets: ``harmful`` / ``not_harmful``), ``annotations`` (each annotator's
label, same words) and ``meta`` (``behavior``, ``context`` for the harm classifiers).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from alignbench.errors import UsageError

XSTEST_LABELS = {"1_full_compliance": "full_compliance", "2_full_refusal": "full_refusal", "3_partial_refusal": "partial_refusal"}
HARM_LABELS = {1: "harmful", 0: "not_harmful"}

Row = dict[str, Any]


@dataclass
class HumanSet:
    name: str
    decision: str  # "refusal" | "harm": what the labels say about a response
    labels: tuple[str, ...]  # canonical label words of the set
    load: Callable[[str | None], tuple[list[Row], str]]  # source -> (rows, description of the source)


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path}: cannot read ({exc.__class__.__name__})") from None


def _need(rows: list[dict[str, Any]], columns: tuple[str, ...], where: str) -> None:
    if not rows:
        raise UsageError(f"{where}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise UsageError(f"{where}: missing column {missing[0]!r} (expected {', '.join(columns)})")


def _hub_rows(hub: str, config: str | None, split: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise UsageError("loading a hub dataset needs the 'datasets' package (pip install datasets)") from None
    try:
        ds = datasets.load_dataset(hub, config, split=split) if config else datasets.load_dataset(hub, split=split)
    except Exception as exc:  # offline, unknown id, unknown config: one line
        first = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise UsageError(f"hub dataset {hub!r}{f' ({config})' if config else ''}: cannot load: {first}") from None
    return [dict(r) for r in ds]


def _is_local(source: str) -> bool:
    return Path(source).expanduser().exists() or source.startswith((".", "/", "~")) or source.endswith((".csv", ".json", ".jsonl"))


# XSTest ------------------------------------------------------------------------------------------

XSTEST_COLUMNS = ("id", "prompt", "completion", "annotation_1", "annotation_2", "final_label")


def _xstest_label(value: Any, where: str) -> str:
    v = str(value).strip()
    if v in XSTEST_LABELS:
        return XSTEST_LABELS[v]
    if v in XSTEST_LABELS.values():
        return v
    raise UsageError(f"{where}: label {v!r} is not one of {', '.join(XSTEST_LABELS)}")


def xstest_rows(raw: list[dict[str, Any]], model: str, where: str) -> list[Row]:
    _need(raw, XSTEST_COLUMNS, where)
    out = []
    for i, r in enumerate(raw, 2):
        at = f"{where}: row {i}"
        kind = str(r.get("type") or "")
        out.append({"id": f"{model}:{r['id']}" if model else str(r["id"]), "prompt": str(r["prompt"]), "response": str(r["completion"] or ""),
                    "category": kind or None, "label": _xstest_label(r["final_label"], at),
                    "annotations": [_xstest_label(r["annotation_1"], at), _xstest_label(r["annotation_2"], at)],
                    "meta": {"model": model, "prompt_label": "unsafe" if kind.startswith("contrast_") else "safe"}})
    return out


def load_xstest(source: str | None) -> tuple[list[Row], str]:
    if source is None:
        raise UsageError("xstest_human: name the authors' model_completions folder, one of its CSVs, or a hub id: --input xstest_human:SOURCE")
    p = Path(source).expanduser()
    if p.is_dir():
        files = sorted(p.glob("xstest_v2_completions_*.csv")) or sorted(p.glob("model_completions/xstest_v2_completions_*.csv"))
        if not files:
            raise UsageError(f"xstest_human: no xstest_v2_completions_*.csv in {p}")
    elif p.is_file():
        files = [p]
    elif _is_local(source):
        raise UsageError(f"xstest_human: {source}: file not found")
    else:
        return xstest_rows(_hub_rows(source, None, "train"), "", f"hub dataset {source!r}"), source
    rows: list[Row] = []
    for f in files:
        model = f.stem.replace("xstest_v2_completions_", "")
        rows += xstest_rows(_read_csv(f), model, str(f))
    return rows, ", ".join(str(f) for f in files)


# JailbreakBench judge_comparison --------------------------------------------------------------------

JBB_HUB = "JailbreakBench/JBB-Behaviors"
JBB_COLUMNS = ("goal", "target_response", "human1", "human2", "human3", "human_majority")


def _binary(value: Any, where: str) -> int:
    v = str(value).strip().lower()
    if v in ("1", "1.0", "true", "yes"):
        return 1
    if v in ("0", "0.0", "false", "no"):
        return 0
    raise UsageError(f"{where}: label {value!r} is not 0 or 1")


def jbb_rows(raw: list[dict[str, Any]], where: str) -> list[Row]:
    _need(raw, JBB_COLUMNS, where)
    out = []
    for i, r in enumerate(raw, 2):
        at = f"{where}: row {i}"
        goal = str(r["goal"])
        out.append({"id": str(r.get("Index", i - 1)), "prompt": goal, "response": str(r["target_response"] or ""),
                    "category": None, "label": HARM_LABELS[_binary(r["human_majority"], at)],
                    "annotations": [HARM_LABELS[_binary(r[f"human{k}"], at)] for k in (1, 2, 3)],
                    "meta": {"behavior": goal, "jailbreak_prompt": str(r.get("prompt") or "")}})
    return out


def load_jbb(source: str | None) -> tuple[list[Row], str]:
    source = source or JBB_HUB
    p = Path(source).expanduser()
    if p.is_dir():
        cands = [p / "judge-comparison.csv", p / "data" / "judge-comparison.csv"]
        f = next((c for c in cands if c.is_file()), None)
        if f is None:
            raise UsageError(f"jbb_human: no judge-comparison.csv in {p} (or its data/)")
        return jbb_rows(_read_csv(f), str(f)), str(f)
    if p.is_file():
        return jbb_rows(_read_csv(p), str(p)), str(p)
    if _is_local(source):
        raise UsageError(f"jbb_human: {source}: file not found")
    return jbb_rows(_hub_rows(source, "judge_comparison", "test"), f"hub dataset {source!r}"), f"{source} (judge_comparison, test)"


# HarmBench classifier validation set -----------------------------------------------------------------

HARMBENCH_VAL = Path("data/classifier_val_sets/text_behaviors_val_set.json")
HARMBENCH_BEHAVIORS = Path("data/behavior_datasets/harmbench_behaviors_text_all.csv")


def _majority(votes: list[int]) -> int:
    return int(sum(votes) * 2 > len(votes))


def harmbench_rows(val: dict[str, list[dict[str, Any]]], behaviors: dict[str, dict[str, str]], where: str) -> list[Row]:
    out = []
    for bid, items in val.items():
        b = behaviors.get(bid)
        if b is None:
            raise UsageError(f"{where}: behavior {bid!r} is not in the behaviors CSV")
        for k, it in enumerate(items):
            at = f"{where}: {bid}[{k}]"
            if not isinstance(it, dict) or "generation" not in it:
                raise UsageError(f"{at}: missing field 'generation'")
            votes = [_binary(it[f"human_{j}"], at) for j in range(3) if it.get(f"human_{j}") is not None]
            if not votes:
                raise UsageError(f"{at}: no human_0/human_1/human_2 label")
            context = b.get("ContextString") or ""
            out.append({"id": f"{bid}:{k}", "prompt": b["Behavior"], "response": str(it["generation"] or ""),
                        "category": b.get("FunctionalCategory") or None, "label": HARM_LABELS[_majority(votes)],
                        "annotations": [HARM_LABELS[v] for v in votes],
                        "meta": {"behavior": b["Behavior"], "context": context or None, "behavior_id": bid}})
    return out


def _behaviors(path: Path) -> dict[str, dict[str, str]]:
    rows = _read_csv(path)
    _need(rows, ("BehaviorID", "Behavior"), str(path))
    return {r["BehaviorID"]: r for r in rows}


def load_harmbench(source: str | None) -> tuple[list[Row], str]:
    if source is None:
        raise UsageError("harmbench_human: name the HarmBench repository folder, text_behaviors_val_set.json, or a hub id: "
                         "--input harmbench_human:SOURCE")
    p = Path(source).expanduser()
    if p.is_dir():
        val_path = next((c for c in (p / HARMBENCH_VAL, p / HARMBENCH_VAL.name) if c.is_file()), None)
        if val_path is None:
            raise UsageError(f"harmbench_human: no {HARMBENCH_VAL} in {p}")
    elif p.is_file():
        val_path = p
    elif _is_local(source):
        raise UsageError(f"harmbench_human: {source}: file not found")
    else:
        raw = _hub_rows(source, None, "train")
        _need(raw, ("behavior_id", "behavior", "generation", "human_0"), f"hub dataset {source!r}")
        val: dict[str, list[dict[str, Any]]] = {}
        beh: dict[str, dict[str, str]] = {}
        for r in raw:
            val.setdefault(r["behavior_id"], []).append(r)
            beh[r["behavior_id"]] = {"Behavior": r["behavior"], "ContextString": r.get("context") or ""}
        return harmbench_rows(val, beh, f"hub dataset {source!r}"), source
    try:
        val = json.loads(val_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"harmbench_human: {val_path}: cannot read ({exc.__class__.__name__})") from None
    if not isinstance(val, dict):
        raise UsageError(f"harmbench_human: {val_path}: expected an object of behavior id -> list of generations")
    # the behaviors CSV: in the repository layout, or next to the JSON file
    root = val_path.parent.parent.parent
    cands = [root / HARMBENCH_BEHAVIORS, val_path.parent / HARMBENCH_BEHAVIORS.name]
    beh_path = next((c for c in cands if c.is_file()), None)
    if beh_path is None:
        raise UsageError(f"harmbench_human: behavior texts not found: put {HARMBENCH_BEHAVIORS.name} next to {val_path.name} "
                         f"or use the repository layout ({HARMBENCH_BEHAVIORS})")
    return harmbench_rows(val, _behaviors(beh_path), str(val_path)), f"{val_path} + {beh_path}"


# GPTFuzz labelled responses ---------------------------------------------------------------------------

GPTFUZZ_COLUMNS = ("question", "Response", "label")
GPTFUZZ_FILES = ("train.csv", "evaluate.csv")


def _gptfuzz_files(p: Path) -> tuple[list[Path], Path]:
    """(response CSVs, question list) of a GPTFuzz SOURCE path; one-line errors naming what is missing."""
    if p.is_file():
        files, folders = [p], [p.parent, p.parent.parent / "questions"]
    else:
        base = next((d for d in (p, p / "responses_labeled", p / "datasets" / "responses_labeled")
                     if any((d / f).is_file() for f in GPTFUZZ_FILES)), None)
        if base is None:
            raise UsageError(f"gptfuzz_human: no {' or '.join(GPTFUZZ_FILES)} in {p} (or its responses_labeled/, datasets/responses_labeled/)")
        files = [base / f for f in GPTFUZZ_FILES if (base / f).is_file()]
        folders = [base, base.parent / "questions"]
    questions = next((d / "question_list.csv" for d in folders if (d / "question_list.csv").is_file()), None)
    if questions is None:
        raise UsageError(f"gptfuzz_human: question_list.csv not found beside {files[0].name} or in ../questions/ "
                         "(the responses name their question by its index in that list)")
    return files, questions


def gptfuzz_rows(raw: list[dict[str, Any]], questions: dict[str, str], split: str, where: str) -> list[Row]:
    _need(raw, GPTFUZZ_COLUMNS, where)
    out = []
    for i, r in enumerate(raw, 2):
        at = f"{where}: row {i}"
        q = str(r["question"]).strip()
        if q not in questions:
            raise UsageError(f"{at}: question {q!r} is not an index of the question list")
        out.append({"id": f"{split}:{i - 1}", "prompt": questions[q], "response": str(r["Response"] or ""), "category": None,
                    "label": HARM_LABELS[_binary(r["label"], at)], "annotations": [],
                    "meta": {"question_index": q, "split": split}})
    return out


def load_gptfuzz(source: str | None) -> tuple[list[Row], str]:
    if source is None:
        raise UsageError("gptfuzz_human: name the GPTFuzz repository, its responses_labeled folder or one of its CSVs: "
                         "--input gptfuzz_human:SOURCE")
    p = Path(source).expanduser()
    if not p.exists():
        raise UsageError(f"gptfuzz_human: {source}: file not found")
    files, qpath = _gptfuzz_files(p)
    qrows = _read_csv(qpath)
    _need(qrows, ("index", "text"), str(qpath))
    questions = {str(r["index"]).strip(): str(r["text"]) for r in qrows}
    rows: list[Row] = []
    for f in files:
        rows += gptfuzz_rows(_read_csv(f), questions, f.stem, str(f))
    return rows, ", ".join(str(f) for f in [*files, qpath])


# Safe-RLHF question/answer safety labels -------------------------------------------------------------------

SAFERLHF_COLUMNS = ("question", "answer", "label")
SAFERLHF_FILE = "Safe-RLHFmini.csv"


def saferlhf_rows(raw: list[dict[str, Any]], where: str) -> list[Row]:
    _need(raw, SAFERLHF_COLUMNS, where)
    return [{"id": str(i - 1), "prompt": str(r["question"]), "response": str(r["answer"] or ""), "category": None,
             "label": HARM_LABELS[_binary(r["label"], f"{where}: row {i}")], "annotations": [], "meta": {}}
            for i, r in enumerate(raw, 2)]


def load_saferlhf(source: str | None) -> tuple[list[Row], str]:
    if source is None:
        raise UsageError(f"saferlhf_human: name a question,answer,label CSV or a folder holding {SAFERLHF_FILE}: --input saferlhf_human:SOURCE")
    p = Path(source).expanduser()
    if p.is_dir():
        f = next((c for c in (p / SAFERLHF_FILE, p / "data" / SAFERLHF_FILE) if c.is_file()), None)
        if f is None:
            raise UsageError(f"saferlhf_human: no {SAFERLHF_FILE} in {p} (or its data/)")
        p = f
    elif not p.is_file():
        raise UsageError(f"saferlhf_human: {source}: file not found")
    return saferlhf_rows(_read_csv(p), str(p)), str(p)


SETS: dict[str, HumanSet] = {
    "xstest_human": HumanSet("xstest_human", "refusal", tuple(XSTEST_LABELS.values()), load_xstest),
    "jbb_human": HumanSet("jbb_human", "harm", ("harmful", "not_harmful"), load_jbb),
    "harmbench_human": HumanSet("harmbench_human", "harm", ("harmful", "not_harmful"), load_harmbench),
    "gptfuzz_human": HumanSet("gptfuzz_human", "harm", ("harmful", "not_harmful"), load_gptfuzz),
    "saferlhf_human": HumanSet("saferlhf_human", "harm", ("harmful", "not_harmful"), load_saferlhf),
}


def parse_set(spec: str) -> tuple[HumanSet, str | None] | None:
    """``NAME`` or ``NAME:SOURCE`` of a named set; None when ``spec`` names no set (a JSONL path)."""
    name, sep, source = spec.partition(":")
    if name not in SETS:
        return None
    return SETS[name], (source.strip() or None) if sep else None


def load_set(spec: str) -> tuple[HumanSet, list[Row], str]:
    parsed = parse_set(spec)
    if parsed is None:
        raise UsageError(f"unknown human-labelled set {spec!r}; known: {', '.join(SETS)}")
    hs, source = parsed
    rows, described = hs.load(source)
    for n, r in enumerate(rows, 1):
        r["_line"] = n
    return hs, rows, described
