"""Shared fixtures: offline environment, a tiny model, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "ALIGNBENCH_NO_PROGRESS": "1", "TOKENIZERS_PARALLELISM": "false"})
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own generation cache folder, never ~/.cache."""
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared benchmark data not present")
    return SHARED_DATA


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_main(*argv: str) -> CliResult:
    """Run ``alignbench ARGV`` in this process (fast): exit code, stdout and stderr."""
    import contextlib
    import io

    from alignbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 2
    return CliResult(rc, out.getvalue(), err.getvalue())


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m alignbench ARGS`` in a subprocess; returns the completed process (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "alignbench", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def harm_task(folder: Path, rows: list[dict], columns: str = "{id: id}") -> Path:
    """A harmful_rate task over ``rows`` (each with ``label`` harmful/benign) in ``folder``, scored with judges that load
    in no time (refusal_gcg, refusal_xstest, no harm judge): for tests of the run around the judges."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = folder / "t.yaml"
    task.write_text(f"name: t\ndataset:\n  data_files: d.jsonl\n  columns: {columns}\n  meta_columns: [label]\n"
                    "judges: [refusal_gcg]\nscorer: harmful_rate\nscorer_args: {refusal_judge: refusal_xstest, harm_judge: none}\n")
    return task
