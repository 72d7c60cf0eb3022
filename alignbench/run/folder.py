"""A run's folder under ``--output``: a new run id, a new folder, or the run ``--resume`` continues."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from alignbench.errors import UsageError
from alignbench.records.files import RunDir, check_run_id
from alignbench.run.settings import EvalConfig


def new_run_id(model: str) -> str:
    """Time, the model's spec as a slug and 4 random hex digits."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")[-40:] or "model"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


def open_run_dir(cfg: "EvalConfig") -> RunDir:
    """The run folder of ``cfg``: a new one (``--run-id`` or a fresh id), or with ``--resume`` the one named
    by ``--run-id`` or else the latest unfinished run of the same model."""
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: is a file, not a folder; name the folder that gets one sub-folder per run")
    if cfg.run_id is not None:
        check_run_id(cfg.run_id)
    if cfg.resume:
        if cfg.run_id:
            rd = RunDir(out / cfg.run_id)
            if not rd.exists():
                raise UsageError(f"--resume: no run {cfg.run_id!r} in {out}")
        else:
            rd = latest_unfinished(out, cfg.model)
        return rd
    run_id = cfg.run_id or new_run_id(cfg.model)
    rd = RunDir(out / run_id)
    if rd.exists():
        raise UsageError(f"run folder {rd.path} already exists; pass --resume to continue it or another --run-id")
    return rd


def latest_unfinished(out: Path, model: str) -> RunDir:
    """The most recently written run of ``model`` in ``out`` that is not complete."""
    candidates = []
    for p in out.glob("*/run.json") if out.is_dir() else []:
        rd = RunDir(p.parent)
        try:
            info = rd.read_run()
        except UsageError:
            continue
        if info.get("status") != "complete" and info.get("model") == model:
            candidates.append((p.stat().st_mtime, rd))
    if not candidates:
        raise UsageError(f"--resume: no unfinished run of {model!r} in {out}; pass --run-id")
    return max(candidates, key=lambda c: c[0])[1]
