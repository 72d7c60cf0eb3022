"""``alignbench track``: one run per checkpoint, on the same samples, and ``DIR/ID/track.json``.

``DIR/ID/`` gets ``step-<N>/`` (an ordinary run folder per checkpoint: same tasks, seed and stratified
``--limit``, so every checkpoint answers the same samples), ``baseline/`` when ``--baseline`` names a
model, and ``track.json``::

    {"track_id", "status": "running" | "complete", "created", "finished", "command", "settings",
     "baseline": {"spec" | "run_dir", "run_dir"} | null,
     "checkpoints": [{"step", "path", "run_dir"}, ...],          # step order
     "series": {...}, "deltas": {...} | null, "gate": {...} | null}  # alignbench.track.summary

Running the same command again continues: a checkpoint whose run is complete is not evaluated again, an
unfinished one is resumed, new checkpoints are added; runs of checkpoints that have since been deleted
(a Trainer's ``save_total_limit``) stay in the series. The settings (tasks, limit, seed, decoding,
judges, baseline) must match the stored ones; another set needs another ``--run-id``. ``--every`` and
``--gate`` may change between calls (a gate added later is checked on the stored runs).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.gate.rules import GateRule, RunView, load_rules
from alignbench.jsonl import write_json
from alignbench.records.files import RunDir, check_run_id
from alignbench.records.lock import writing
from alignbench.redact import scrub_text
from alignbench.run.evaluate import run_eval
from alignbench.run.settings import EvalConfig
from alignbench.track.checkpoints import Checkpoint, find_checkpoints, is_model_folder
from alignbench.track.summary import TRACK_FILE, Point, summarize

BASELINE_RUN_ID = "baseline"
#: EvalConfig fields that differ per checkpoint or do not change results, left out of the stored settings
_PER_RUN = ("model", "run_id", "output", "resume", "command", "shard", "cache", "no_cache", "concurrency", "batch_size")


@dataclass
class TrackOptions:
    checkpoints: list[str]
    eval: EvalConfig  # the settings of every checkpoint's run (model, run id and output are set per checkpoint)
    output: str = "results"
    track_id: str | None = None
    baseline: str | None = None  # a run folder, a model SPEC, or a model folder
    every: int | None = None
    gate: str | None = None
    command: list[str] = field(default_factory=list)


@dataclass
class TrackResult:
    folder: Path
    info: dict[str, Any]
    evaluated: list[str]  # run ids evaluated (or resumed) by this call; the rest were already complete


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def default_track_id(checkpoints: list[Checkpoint]) -> str:
    """``track-<folder>``: the name of the folder holding the checkpoints, so the same command names the same track."""
    parents = {c.path.resolve().parent for c in checkpoints}
    name = parents.pop().name if len(parents) == 1 else "checkpoints"
    return "track-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "checkpoints")


def resolve_baseline(value: str | None) -> dict[str, Any] | None:
    """``{"run_dir": PATH}`` for a run folder, ``{"spec": SPEC}`` for a model (a model folder is ``hf:PATH``)."""
    if not value:
        return None
    p = Path(value).expanduser()
    if p.is_dir():
        if RunDir(p).exists():
            if not RunDir(p).metrics_file.is_file():
                raise UsageError(f"--baseline {value}: the run is not finished (no metrics.json)")
            return {"run_dir": str(p.resolve())}
        if is_model_folder(p):
            return {"spec": f"hf:{p.resolve()}"}
        raise UsageError(f"--baseline {value}: neither a run folder (run.json) nor a model folder (config.json)")
    if ":" not in value and value != "default":
        raise UsageError(f"--baseline {value}: no such folder; give a run folder, a model folder or a model SPEC such as hf:org/name")
    return {"spec": value}


def settings_of(opts: TrackOptions, baseline: dict[str, Any] | None) -> dict[str, Any]:
    cfg = {k: v for k, v in asdict(opts.eval).items() if k not in _PER_RUN}
    return {"eval": cfg, "every": opts.every, "baseline": baseline, "gate": str(Path(opts.gate).resolve()) if opts.gate else None}


def read_track(path: Path) -> dict[str, Any]:
    """A track.json (a UsageError when it is not a readable JSON object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not a readable track file ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return data


def _check_settings(stored: dict[str, Any], settings: dict[str, Any], folder: Path) -> None:
    """The settings that decide what the runs hold (eval options, baseline) must be the stored ones; --every and --gate may change."""
    old = stored.get("settings")
    if not isinstance(old, dict):
        return
    norm = lambda d: {**(d.get("eval") or {}), "baseline": d.get("baseline")}
    a, b = norm(old), norm(json.loads(json.dumps(settings, default=str)))
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if not keys:
        return
    raise UsageError(f"{folder} was tracked with other settings ({', '.join(keys)} differ); pass another --run-id "
                     "or the same options as before")


def _evaluate(template: EvalConfig, model: str, run_id: str, folder: Path) -> tuple[RunDir, bool]:
    """The run ``folder/run_id`` of ``model``: kept when complete, resumed when unfinished, else new."""
    rd = RunDir(folder / run_id)
    resume = False
    if rd.exists():
        info = rd.read_run()
        if info.get("model") != model:
            raise UsageError(f"{rd.path} holds a run of {info.get('model')}, not {model}; pass another --run-id")
        if info.get("status") == "complete" and rd.metrics_file.is_file():
            return rd, False
        resume = True
    return run_eval(replace(template, model=model, run_id=run_id, output=str(folder), resume=resume)), True


def _earlier_points(stored: dict[str, Any], folder: Path, steps: set[int]) -> list[Point]:
    """Checkpoints of an earlier call whose folders are no longer given (deleted since) but whose runs are complete."""
    out = []
    for c in stored.get("checkpoints") or []:
        if not isinstance(c, dict) or not isinstance(c.get("step"), int) or c["step"] in steps:
            continue
        rd = RunDir(folder / f"step-{c['step']}")
        if rd.exists() and rd.metrics_file.is_file() and rd.read_run().get("status") == "complete":
            out.append(Point(c["step"], c.get("path"), rd.path))
    return out


def run_track(opts: TrackOptions) -> TrackResult:
    checkpoints = find_checkpoints(opts.checkpoints, opts.every)
    rules: list[GateRule] | None = load_rules(opts.gate) if opts.gate else None
    baseline = resolve_baseline(opts.baseline)
    if rules and any(r.relative for r in rules) and baseline is None:
        relative = next(r for r in rules if r.relative)
        raise UsageError(f"gate {relative.label}: max_increase/max_decrease need --baseline (a run folder or a model)")
    track_id = check_run_id(opts.track_id or default_track_id(checkpoints))
    out = Path(opts.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out}: is a file, not a folder")
    folder = out / track_id
    if folder.exists() and not (folder / TRACK_FILE).is_file() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not a track folder (no {TRACK_FILE}); pass another --run-id")
    with writing(folder, "track folder"):  # one writer: a second track of the same folder is refused, naming the first's pid
        return _run_track(opts, checkpoints, rules, baseline, track_id, folder)


def _run_track(opts: TrackOptions, checkpoints: list[Checkpoint], rules: list[GateRule] | None, baseline: dict[str, Any] | None,
               track_id: str, folder: Path) -> TrackResult:
    settings = settings_of(opts, baseline)
    stored = read_track(folder / TRACK_FILE) if (folder / TRACK_FILE).is_file() else {}
    _check_settings(stored, settings, folder)
    info: dict[str, Any] = {"track_id": track_id, "status": "running", "created": stored.get("created") or _now(), "finished": None,
                            "command": opts.command, "settings": settings, "baseline": None, "checkpoints": stored.get("checkpoints") or [],
                            "series": stored.get("series") or {}, "deltas": stored.get("deltas"), "gate": stored.get("gate")}
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / TRACK_FILE, info)
    evaluated: list[str] = []
    template = replace(opts.eval, command=opts.command)
    try:
        base_view = None
        if baseline is not None:
            if "spec" in baseline:
                rd, did = _evaluate(template, baseline["spec"], BASELINE_RUN_ID, folder)
                evaluated += [BASELINE_RUN_ID] if did else []
                base_path = rd.path
            else:
                base_path = Path(baseline["run_dir"])
            info["baseline"] = {**baseline, "run_dir": str(base_path)}
            base_view = RunView.load(base_path, "--baseline")
        points = _earlier_points(stored, folder, {c.step for c in checkpoints})
        for cp in checkpoints:
            rd, did = _evaluate(template, f"hf:{cp.path}", cp.run_id, folder)
            evaluated += [cp.run_id] if did else []
            points.append(Point(cp.step, str(cp.path), rd.path))
            info["checkpoints"] = [p.as_dict() for p in sorted(points, key=lambda p: p.step)]
            write_json(folder / TRACK_FILE, info)
        info.update(summarize(points, base_view, rules, seed=opts.eval.seed, rules_source=settings["gate"]))
    except BaseException as exc:
        info.update(status="failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted", finished=_now(),
                    error=scrub_text((str(exc).splitlines() or [exc.__class__.__name__])[0]))  # no credentials, as run.json
        write_json(folder / TRACK_FILE, info)
        raise
    info.update(status="complete", finished=_now())
    info.pop("error", None)
    write_json(folder / TRACK_FILE, info)
    return TrackResult(folder, info, evaluated)


def format_table(info: dict[str, Any]) -> str:
    """Each task/metric against step (value [CI]), then the gate verdict; plain text for the terminal."""
    rows = ["task\tmetric\tstep\tvalue [95% CI]\tn\tdelta vs baseline [95% CI] (p)"]
    deltas = info.get("deltas") or {}
    for task, metrics in (info.get("series") or {}).items():
        for metric, points in metrics.items():
            by_step = {d["step"]: d for d in (deltas.get(task) or {}).get(metric) or []}
            for p in points:
                v = "n/a" if p.get("value") is None else f"{p['value']:.4f}"
                ci = f" [{p['ci_low']:.3f}, {p['ci_high']:.3f}]" if p.get("ci_low") is not None and p.get("ci_high") is not None else ""
                d = by_step.get(p["step"])
                dt = "" if d is None else (f"{d['delta']:+.4f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] (p={d['p_value']:.3g})"
                                           + (" *" if d.get("significant") else ""))
                rows.append(f"{task}\t{metric}\t{p['step']}\t{v}{ci}\t{p.get('n')}\t{dt}")
    gate = info.get("gate")
    if gate:
        first = gate.get("first_failure")
        rows.append("")
        rows.append("gate: every checkpoint passes" if first is None else
                    f"gate: first failing checkpoint: step {first['step']} ({first.get('path')}): "
                    + "; ".join(f"{f['rule']}: {f['message']}" for f in first["failed"]))
    return "\n".join(rows)


__all__ = ["BASELINE_RUN_ID", "TrackOptions", "TrackResult", "default_track_id", "format_table", "read_track", "resolve_baseline", "run_track"]
