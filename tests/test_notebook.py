"""notebooks/analysis.ipynb runs top to bottom on real runs and shows the expected tables."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO
from runs_factory import make_run, write_task

NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return (output.get("data") or {}).get("text/plain", "")


def this_python_kernel(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook's ``python3`` kernel runs in this test's interpreter: a kernelspec under ``root``, first on
    JUPYTER_PATH. (Left to the search, ``python3`` may name a kernelspec of the machine's base Python or of a
    user's own Jupyter, which need not hold alignbench's dependencies.)"""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                                  "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(root))


def test_notebook_is_clean_in_git() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    nbformat.validate(nbformat.reads(NOTEBOOK.read_text(encoding="utf-8"), as_version=4))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert any("ALIGNBENCH_RUNS" in "".join(c["source"]) for c in code)


def test_notebook_executes_on_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = write_task(tmp_path / "task", n=40)
    out = tmp_path / "runs"
    make_run(task, out, "before", 0.9)
    make_run(task, out, "after", 0.4)
    metrics = {rid: json.loads((out / rid / "metrics.json").read_text())["hr"] for rid in ("before", "after")}
    # a finished compare of the two runs (a tiny reward model, in process) beside them, and one left unfinished
    from alignbench.cli import main
    from tiny_model import build_tiny_reward_model

    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rm = build_tiny_reward_model(tmp_path / "rm", seed=3)
    assert main(["compare", str(out / "before"), str(out / "after"), "--judge", "skywork_reward", "--judge-model",
                 f"skywork_reward={rm}", "--output", str(out), "--run-id", "cmp"]) == 0
    cmp = json.loads((out / "cmp" / "compare.json").read_text())
    (out / "cmp-unfinished").mkdir()
    (out / "cmp-unfinished" / "compare.json").write_text(json.dumps({**cmp, "status": "running"}))
    monkeypatch.setenv("ALIGNBENCH_RUNS", str(out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    this_python_kernel(tmp_path / "jupyter", monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.time()
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    elapsed = time.time() - started
    outputs = {i: c.outputs for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert not [o for outs in outputs.values() for o in outs if o.output_type == "error"]
    texts = ["\n".join(_text(o) for o in outs) for outs in outputs.values()]
    assert any("2 run(s), 1 task(s), 80 sample rows from " + str(out) in t for t in texts)
    pivot = next(t for t in texts if "run_id" in t and "after" in t and "before" in t and "harmful_rate" in t)
    row = next(line for line in pivot.splitlines() if "harmful_rate" in line)
    # one row per (task, metric), runs as columns (sorted by run id: after, before)
    assert [float(x) for x in row.split()[-2:]] == pytest.approx(
        [metrics["after"]["harmful_rate"]["value"], metrics["before"]["harmful_rate"]["value"]], abs=5e-5)
    rec = metrics["after"]["harmful_rate"]
    assert any(f"{rec['value']:.3f} [{rec['ci_low']:.3f}, {rec['ci_high']:.3f}] (n={rec['n']})" in t for t in texts)
    pngs = [o for outs in outputs.values() for o in outs if "image/png" in (o.get("data") or {})]
    assert len(pngs) >= 3  # harm bars + two category plots
    assert any("refusal_xstest" in t and "0 / 40" in t for t in texts)
    # the judges behind the numbers: each judged metric with its judge and, for a carded judge, the corrected rate
    judged = next(t for t in texts if "metric value(s) decided by a judge" in t)
    for rid in ("before", "after"):
        rec = metrics[rid]["refusal_rate"]
        line = next(x for x in judged.splitlines() if " refusal_rate " in x and f" {rid} " in x)
        assert "refusal_xstest" in line and f"{rec['value']:.4f} [{rec['ci_low']:.4f}, {rec['ci_high']:.4f}]" in line
        fixed = rec["corrected"]  # refusal_xstest has a card: the corrected rate stands beside the raw one
        assert f"{fixed['value']:.4f} [{fixed['ci_low']:.4f}, {fixed['ci_high']:.4f}]" in line
        assert f"{rec['judge_validity']['sensitivity']['value']:.3f} / {rec['judge_validity']['specificity']['value']:.3f}" in line
    # the ranking: the finished compare only, its Bradley-Terry ratings as compare.json has them
    assert any(f"1 finished compare folder(s) under {out}" in t for t in texts)
    ranking = next(t for t in texts if "compare_id" in t and "skywork_reward" in t)
    for run, r in cmp["overall"]["bradley_terry"].items():
        assert any(run in x and f"{r['rating']:.1f}" in x for x in ranking.splitlines())
    print(f"notebook executed in {elapsed:.1f} s")
