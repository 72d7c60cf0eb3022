"""Judges are checked before the first model call, and --no-cache keeps every judge out of every cache.

A judge that cannot load or cannot judge (a learned judge whose embedder is missing or whose weights do
not fit it, a judge folder without its weights) stops ``eval`` with one line naming the judge and why,
before the model answers anything; ``--no-cache`` means no cache file is read or written, the judges'
included (LLM juries, safety classifiers, reward models cache their judge-model calls otherwise).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, harm_task, run_main

SHIPPED_CLF = REPO / "judges" / "models" / "refusal_clf"


def _task(folder: Path, n: int = 6) -> Path:
    rows = [{"id": f"s{i}", "prompt": f"Request {i}", "ref": "Sure, here it is.", "label": "harmful" if i % 2 else "benign"}
            for i in range(n)]
    return harm_task(folder, rows, columns="{id: id, references: ref}")


def _eval(tmp_path: Path, *extra: str):
    # fail_after=0: the model fails on its first request, so a run that gets that far is not checked before it
    return run_main("eval", "--model", "dummy", "--model-args", "fail_after=0", "--tasks", str(_task(tmp_path / "t")),
                    "--output", str(tmp_path / "o"), "--run-id", "r", "--no-cache", *extra)


def _clf(tmp_path: Path, spec=None, W=None, drop: str | None = None) -> Path:
    folder = tmp_path / "myclf"
    shutil.copytree(SHIPPED_CLF, folder)
    if spec is not None:
        (folder / "judge.json").write_text(json.dumps(spec(json.loads((folder / "judge.json").read_text()))))
    if W is not None:
        with np.load(folder / "weights.npz") as z:
            np.savez(folder / "weights.npz", W=W(z["W"]), b=z["b"])
    if drop:
        (folder / drop).unlink()
    return folder


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alignbench: error: "), err
    return lines[0]


def test_a_learned_judge_whose_embedder_cannot_load_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    folder = _clf(tmp_path, spec=lambda s: {**s, "embedder": str(tmp_path / "no-such-model")})
    rc, out, err = _eval(tmp_path, "--judges", str(folder))
    line = _one_line(err)
    assert rc == 2 and "judge 'myclf' cannot judge (checked on a fixed input before the run)" in line and "no-such-model" in line
    assert out == "" and not (tmp_path / "o" / "r").exists()


def test_a_learned_judge_whose_weights_do_not_fit_its_embedder_stops_the_run(tmp_path: Path) -> None:
    folder = _clf(tmp_path, W=lambda W: W[:-7])  # seven feature rows fewer than the embedder and the cues give
    rc, _, err = _eval(tmp_path, "--judges", str(folder))
    line = _one_line(err)
    assert rc == 2 and "judge 'myclf' cannot judge" in line and f"weights.npz expects {len(np.load(folder / 'weights.npz')['W'])}" in line
    assert not (tmp_path / "o" / "r").exists()
    (tmp_path / "in.jsonl").write_text(json.dumps({"prompt": "q", "response": "Sure."}) + "\n")
    rc, _, err = run_main("judge", "--judges", str(folder), "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "j.jsonl"))
    assert rc == 2 and "judge 'myclf' cannot judge" in _one_line(err) and not (tmp_path / "j.jsonl").exists()


def test_a_judge_folder_without_its_weights_says_so(tmp_path: Path) -> None:
    folder = _clf(tmp_path, drop="weights.npz")
    rc, _, err = _eval(tmp_path, "--judges", str(folder))
    assert rc == 2 and f"judge folder {folder}: missing weights.npz" in _one_line(err)


def test_a_judge_that_works_passes_the_check_and_the_run_reaches_the_model(tmp_path: Path) -> None:
    rc, _, err = _eval(tmp_path, "--judges", f"{_clf(tmp_path)},bleu,exact_match,rouge1")
    assert rc == 3 and "failing after 0 requests" in err  # the model's own failure: the judges passed their check
    rc, _, err = run_main("eval", "--model", "dummy", "--tasks", str(_task(tmp_path / "t")), "--judges", f"{tmp_path / 'myclf'},bleu",
                          "--output", str(tmp_path / "o"), "--run-id", "ok", "--no-cache")
    assert rc == 0, err
    info = json.loads((tmp_path / "o" / "ok" / "run.json").read_text())
    assert info["judge_model_calls"] == 0 and not info["judge_errors"]


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM cache").fetchone()[0])


def test_no_cache_keeps_every_judge_out_of_every_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caching LLM jury and a caching safety classifier on the dummy model: with --no-cache neither the run's
    cache nor the default one (ALIGNBENCH_CACHE_DIR) gets a row; without it, the judges' calls are cached."""
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "home-cache"))
    (tmp_path / "r.j2").write_text("Rate 1-5.\n{{ prompt }}\n{{ response }}\nEnd with 'VERDICT: <1-5>'.")
    jury = tmp_path / "jury.yaml"
    jury.write_text("name: dj\nkind: llm_rubric\nparams:\n  models: [dummy]\n  template: r.j2\n  scale: '1-5'\n  cache: true\n")
    task = _task(tmp_path / "t")
    args = ["eval", "--model", "dummy", "--tasks", str(task), "--judges", f"{jury},llamaguard", "--judge-model", "llamaguard=dummy",
            "--output", str(tmp_path / "o")]
    default = tmp_path / "home-cache" / "cache.sqlite"
    rc, _, err = run_main(*args, "--run-id", "nc", "--no-cache")
    assert rc == 0, err
    assert _rows(default) == 0 and not list(tmp_path.rglob("*.sqlite"))
    rc, _, err = run_main(*args, "--run-id", "c", "--cache", str(tmp_path / "run-cache.sqlite"))
    assert rc == 0, err
    # --cache PATH: the judges' calls go to PATH with the model's (6 samples: 6 generations + 12 judge calls), none elsewhere
    assert _rows(tmp_path / "run-cache.sqlite") >= 18 and not default.exists()
    rc, _, err = run_main(*args, "--run-id", "d")
    assert rc == 0, err
    assert _rows(default) >= 18  # the default cache: the model's and the judges' calls
