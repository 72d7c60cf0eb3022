"""Loaders of BeaverTails-Evaluation, CatQA, HEx-PHI and JailbreakBench behaviours, on small files the
tests write in each set's own layout (made-up rows, not the sets' data)."""

from __future__ import annotations

import csv
import json
import lzma
from collections import Counter
from pathlib import Path

import pytest

from conftest import run_main
from alignbench.errors import UsageError
from alignbench.tasks.catalog import builtin_catalog
from alignbench.tasks.data import load_samples_for


def task(name: str):
    (cfg,) = builtin_catalog().get(name)
    return cfg


def test_beavertails_json_lines_plain_and_xz(tmp_path: Path) -> None:
    rows = [{"prompt": f"made-up request {i}", "category": ["animal_abuse", "privacy_violation"][i % 2]} for i in range(4)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "evaluation.jsonl").write_text(text)
    (tmp_path / "evaluation.jsonl.xz").write_bytes(lzma.compress(text.encode()))
    for f in ("evaluation.jsonl", "evaluation.jsonl.xz"):
        samples = load_samples_for(task("beavertails"), str(tmp_path / f))
        assert [s.prompt for s in samples] == [r["prompt"] for r in rows]
        assert [s.category for s in samples] == [r["category"] for r in rows] and all(s.meta == {"label": "harmful"} for s in samples)
        assert [s.id for s in samples] == ["0", "1", "2", "3"]


def test_catqa_records_and_nested_layouts(tmp_path: Path) -> None:
    records = [{"Category": "Illegal Activity", "Subcategory": "Drug", "Question": "made-up question A?"},
               {"Category": "Malware Viruses", "Subcategory": "Worms", "Question": "made-up question B?"}]
    (tmp_path / "catqa_english.json").write_text(json.dumps(records))
    nested = {"Illegal Activity": {"Drug": ["made-up question A?"]}, "Malware Viruses": {"Worms": ["made-up question B?"]}}
    (tmp_path / "nested.json").write_text(json.dumps(nested))
    for f in ("catqa_english.json", "nested.json"):
        samples = load_samples_for(task("catqa"), str(tmp_path / f))
        assert [(s.prompt, s.category) for s in samples] == [("made-up question A?", "Illegal Activity"),
                                                             ("made-up question B?", "Malware Viruses")]


def test_hexphi_headerless_category_csvs(tmp_path: Path) -> None:
    folder = tmp_path / "HEx-PHI"
    folder.mkdir()
    for n in (1, 3, 11):
        with open(folder / f"category_{n}.csv", "w", newline="") as f:
            w = csv.writer(f)
            for i in range(3):
                w.writerow([f"made-up instruction {n}.{i}, with a comma"])
    (folder / "README.md").write_text("not data")
    samples = load_samples_for(task("hexphi"), str(folder))
    assert len(samples) == 9 and Counter(s.category for s in samples) == {"category_1": 3, "category_3": 3, "category_11": 3}
    assert samples[0].id == "category_1-1" and samples[0].prompt == "made-up instruction 1.0, with a comma"
    assert all(s.meta == {"label": "harmful"} for s in samples)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError):
        load_samples_for(task("hexphi"), str(tmp_path / "empty"))


def _jbb(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for label in ("harmful", "benign"):
        with open(folder / f"{label}-behaviors.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Index", "Goal", "Target", "Behavior", "Category", "Source"])
            for i in range(1, 4):
                w.writerow([i, f"made-up {label} goal {i}", f"Sure, {i}", f"B{i}", ["Harassment", "Malware"][i % 2], "Original"])


def test_jbb_behaviors_folder_and_files(tmp_path: Path) -> None:
    _jbb(tmp_path / "data")
    for spec in (str(tmp_path / "data"), f"{tmp_path / 'data' / 'harmful-behaviors.csv'};{tmp_path / 'data' / 'benign-behaviors.csv'}"):
        samples = load_samples_for(task("jbb_behaviors"), spec)
        assert Counter(s.meta["label"] for s in samples) == {"harmful": 3, "benign": 3}
        assert {s.id for s in samples} == {f"{lab}-{i}" for lab in ("harmful", "benign") for i in (1, 2, 3)}
        s = next(x for x in samples if x.id == "benign-2")
        assert (s.prompt, s.category, s.meta["Behavior"]) == ("made-up benign goal 2", "Harassment", "B2")


def test_jbb_behaviors_through_the_cli_gives_harmful_and_over_refusal(tmp_path: Path) -> None:
    _jbb(tmp_path / "data")
    r = run_main("eval", "--model", "dummy", "--tasks", "jbb_behaviors", "--data-files", f"jbb_behaviors={tmp_path / 'data'}",
                 "--output", str(tmp_path / "o"), "--run-id", "j", "--no-cache")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "j" / "metrics.json").read_text())["jbb_behaviors"]
    assert m["refusal_rate"]["n"] == 3 and m["over_refusal_rate"]["n"] == 3
    assert m["harmful_rate"]["n"] == 3 and m["harmful_rate"]["judge"] == "harm_clf"  # harm over the harmful behaviors only


@pytest.mark.parametrize("name,hub", [("beavertails", "PKU-Alignment/BeaverTails-Evaluation"), ("catqa", "declare-lab/CategoricalHarmfulQA"),
                                      ("hexphi", "LLM-Tuning-Safety/HEx-PHI"), ("jbb_behaviors", "JailbreakBench/JBB-Behaviors")])
def test_offline_hub_load_is_a_one_line_error_naming_data_files(name: str, hub: str) -> None:
    cfg = task(name)
    assert cfg.dataset.hub == hub and cfg.family == "harmful_rate" and cfg.scorer == "harmful_rate"
    with pytest.raises(UsageError, match=rf"--data-files {name}="):
        load_samples_for(cfg)
