"""Small real runs for the compare tests: the eval loop on ``replay`` files of stored answers.

``make_runs(folder, lengths)`` writes one generation task of ``n`` prompts and, per run name, a replay
file whose answer to prompt i has ``lengths[name](i)`` words; every run is a complete run folder made
by ``run_eval`` (judge ``exact_match``, no cache). A pairwise jury YAML pointing at the project's
pairwise template (``jury_yaml``) lets a test choose the jurors and switch the cache off.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from alignbench.judges.catalog import builtin_judges
from alignbench.run.evaluate import run_eval
from alignbench.run.settings import EvalConfig


def write_task(folder: Path, n: int, name: str = "open", judges: str = "exact_match") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i:02d}", "prompt": f"Question {i}: explain topic {i}.", "answer": "x", "category": "even" if i % 2 == 0 else "odd"}
            for i in range(n)]
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    y = folder / f"{name}.yaml"
    y.write_text(f"name: {name}\ndataset:\n  data_files: {name}.jsonl\n  columns: {{id: id, category: category, references: answer}}\n"
                 f"judges: [{judges}]\n", encoding="utf-8")
    return y


def answer(i: int, words: int) -> str:
    return " ".join(["word"] * max(words, 1)) + f" (answer {i})."


def make_runs(folder: Path, lengths: dict[str, Callable[[int], int]], n: int = 12, tasks: tuple[str, ...] = ("open",)) -> list[Path]:
    """One run per name in ``lengths``; returns the run folders in that order."""
    paths = []
    ymls = [write_task(folder / "tasks", n, t) for t in tasks]
    for name, length in lengths.items():
        replay = folder / f"replay-{name}.jsonl"
        replay.write_text("".join(json.dumps({"task": t, "sample_id": f"q{i:02d}", "response": answer(i, length(i))}) + "\n"
                                  for t in tasks for i in range(n)), encoding="utf-8")
        cfg = EvalConfig(model=f"replay:{replay}", tasks=",".join(str(y) for y in ymls), output=str(folder / "runs"), run_id=name,
                         no_cache=True, command=["alignbench", "eval"])
        paths.append(run_eval(cfg).path)
    return paths


def jury_yaml(folder: Path, models: list[str], name: str = "len_jury", cache: bool = False) -> Path:
    """A pairwise jury of ``models`` (backend specs) on the project's pairwise template."""
    template = Path(builtin_judges().config("jury_pairwise").source).parent / "templates" / "pairwise.j2"
    y = folder / f"{name}.yaml"
    y.write_text(f"name: {name}\nkind: llm_pairwise\nparams:\n  models: {json.dumps(models)}\n  template: {template}\n"
                 f"  aggregation: majority\n  cache: {str(cache).lower()}\n  concurrency: 8\n", encoding="utf-8")
    return y


def longer_wins(req) -> str:
    """A judge that prefers the longer response (ties on equal length)."""
    a = req.text.split("[Response A]")[1].split("[Response B]")[0].strip()
    b = req.text.split("[Response B]")[1].split("First explain")[0].strip()
    verdict = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
    return f"Comparing lengths.\nVERDICT: {verdict}"


def first_wins(req) -> str:
    """A judge that always prefers the response shown first."""
    return "VERDICT: A"
