"""``alignbench compare``: the files it writes and how a killed compare continues.

``OUTPUT/<id>/`` gets:

- ``pairs.jsonl``: one line per (pair of runs, shared sample), appended and flushed chunk by chunk as
  judgments finish (``alignbench.compare.judging`` gives the fields);
- ``compare.json``: the runs, the judge, the settings, and at the end ``overall`` and ``by_task``
  summaries (``alignbench.compare.summary``), ``status`` ``running`` until then ``complete``.

The id defaults to a hash of the runs, the judge and the pair mode, so the same command names the same
folder. An existing folder is refused unless ``--resume`` (keep its judged lines, judge the rest and the pairs
whose judgment failed; the settings must match, each run's identity included: a run made again under the
same id is refused with the reason) or ``--overwrite``. One process writes a compare folder at a time (the
lock file ``OUTPUT/.<id>.lock``); a second is refused with the first one's pid.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbench import __version__
from alignbench.compare.inputs import CompareRun, Unit, load_runs, run_pairs, units
from alignbench.compare.judging import PairJudging
from alignbench.compare.pairs_file import PAIRS_FILE, append_pairs, line_key, read_pairs, rewrite_pairs
from alignbench.compare.summary import BT_BASE, BT_SCALE, ELO_K, ELO_ROUNDS, PSEUDO_COUNT, summarize_lines
from alignbench.errors import UsageError
from alignbench.jsonl import write_json
from alignbench.judges.base import Judge
from alignbench.judges.catalog import judge_version_hash
from alignbench.records import lock
from alignbench.records.files import check_run_id
from alignbench.run.provenance import scrub_argv
from alignbench.stats.intervals import BOOTSTRAP_RESAMPLES

COMPARE_FILE = "compare.json"
CHUNK = 32  # units judged between two flushes of pairs.jsonl


@dataclass
class CompareOptions:
    runs: list[str]
    output: str = "results"
    compare_id: str | None = None
    pairs: str = "all"
    seed: int = 0
    tie_margin: float | None = None
    resume: bool = False
    overwrite: bool = False
    allow_incomplete: bool = False  # compare failed or unfinished runs on the samples they have
    command: list[str] | None = None


def default_id(run_ids: list[str], judge: str, pairs: str) -> str:
    digest = hashlib.sha256(json.dumps([run_ids, judge, pairs]).encode()).hexdigest()[:10]
    return f"compare-{re.sub(r'[^A-Za-z0-9._-]+', '-', judge)}-{digest}"


def _settings(runs: list[Any], judge: Judge, kind: str, opts: CompareOptions, margin: float | None) -> dict[str, Any]:
    cfg = getattr(judge, "definition", None)
    return {"runs": [r.describe() for r in runs], "judge": judge.name, "judge_kind": judge.kind,
            "judge_hash": judge_version_hash(cfg) if cfg is not None else None, "compare": kind, "pairs": opts.pairs,
            "tie_margin": margin, "seed": opts.seed, "allow_incomplete": opts.allow_incomplete}


def _check_runs(folder: Path, old: Any, new: list[dict[str, Any]]) -> None:
    """The runs a compare continues must be the ones it judged: the same folders (resolved), each with the same
    identity; a run made again under the same id is refused with what changed."""
    old_runs = old if isinstance(old, list) else []
    if [r.get("path") if isinstance(r, dict) else None for r in old_runs] != [r["path"] for r in new]:
        was = ", ".join(str(r.get("path")) if isinstance(r, dict) else "?" for r in old_runs) or "(none)"
        raise UsageError(f"--resume: {folder} compared the runs {was}, not {', '.join(r['path'] for r in new)}; "
                         "pass --overwrite to start again or another --run-id")
    for then, now in zip(old_runs, new):
        before = then.get("identity") if isinstance(then.get("identity"), dict) else {}
        for field, what in (("created", "created"), ("model_fingerprint", "model fingerprint"), ("responses", "responses hash")):
            if before.get(field) != now["identity"].get(field):
                raise UsageError(f"--resume: run {now['path']} changed since {folder} judged it (its {what} was "
                                 f"{before.get(field)!r}, now {now['identity'].get(field)!r}): its kept judgments would judge "
                                 "responses it no longer holds; pass --overwrite to judge it again")


def _folder(opts: CompareOptions, compare_id: str, settings: dict[str, Any]) -> tuple[Path, list[dict[str, Any]]]:
    """The compare folder, ready to append to, and the lines kept from an interrupted compare."""
    check_run_id(compare_id)
    folder = Path(opts.output) / compare_id
    meta = folder / COMPARE_FILE
    if folder.exists() and opts.overwrite:
        if meta.is_file() or (folder / PAIRS_FILE).is_file():
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise UsageError(f"--overwrite: {folder} is not a compare folder (no {COMPARE_FILE}); not removing it")
    if meta.is_file() and not opts.resume:
        raise UsageError(f"compare folder {folder} already exists; pass --resume to continue it or --overwrite to start again")
    kept: list[dict[str, Any]] = []
    if meta.is_file():
        try:
            before = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{meta}: cannot read ({exc.__class__.__name__}); pass --overwrite to start again") from None
        old = before.get("settings") if isinstance(before, dict) else None
        _check_runs(folder, (old or {}).get("runs"), settings["runs"])
        for k, v in settings.items():
            if k != "runs" and (old or {}).get(k, False if k == "allow_incomplete" else None) != v:
                raise UsageError(f"--resume: {folder} was made with another {k} ({(old or {}).get(k)!r}, now {v!r}); "
                                 "pass --overwrite to start again or another --run-id")
        kept = read_pairs(folder / PAIRS_FILE, cut_torn=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--output {opts.output}: cannot create {folder} ({exc.strerror or exc})") from None
    return folder, kept


@dataclass
class Plan:
    """The runs, pairs and units of a compare, checked before any judge model loads."""

    runs: list[CompareRun]
    pairs: list[tuple[CompareRun, CompareRun]]
    units: list[Unit]
    skipped: dict[str, int]


def plan(opts: CompareOptions) -> Plan:
    runs = load_runs(opts.runs, opts.allow_incomplete)
    pairs = run_pairs(runs, opts.pairs)
    todo, skipped = units(pairs)
    return Plan(runs, pairs, todo, skipped)


def compare_runs(judge: Judge, opts: CompareOptions, planned: Plan | None = None) -> tuple[Path, dict[str, Any]]:
    """Judge every pair of runs on their shared samples; returns the folder and compare.json."""
    p = planned or plan(opts)
    runs, pairs, todo_all, skipped = p.runs, p.pairs, p.units, p.skipped
    judging = PairJudging(judge, runs, opts.tie_margin)
    margin = judging.tie_margin if judging.kind == "reward" else None
    settings = _settings(runs, judge, judging.kind, opts, margin)
    compare_id = opts.compare_id or default_id([r.run_id for r in runs], judge.name, opts.pairs)
    check_run_id(compare_id)
    with lock.writing(Path(opts.output) / compare_id, "compare folder"):  # one writer per compare folder
        return _compare(judging, opts, compare_id, settings, runs, pairs, todo_all, skipped, judge)


def _compare(judging: PairJudging, opts: CompareOptions, compare_id: str, settings: dict[str, Any], runs: list[CompareRun],
             pairs: list[tuple[CompareRun, CompareRun]], todo_all: list[Unit], skipped: dict[str, int],
             judge: Judge) -> tuple[Path, dict[str, Any]]:
    folder, kept = _folder(opts, compare_id, settings)
    wanted = {u.key for u in todo_all}
    done = {line_key(ln): ln for ln in kept}
    if any(k not in wanted for k in done):
        raise UsageError(f"--resume: {folder / PAIRS_FILE} holds pairs these runs do not share; pass --overwrite to start again")
    info: dict[str, Any] = {"compare_id": compare_id, "status": "running", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            "command": scrub_argv(opts.command) if opts.command else opts.command,
                            "alignbench_version": __version__, "settings": settings,
                            "pairs": [[a.label, b.label] for a, b in pairs], "units": len(todo_all), "skipped": skipped,
                            "bradley_terry": {"pseudo_count": PSEUDO_COUNT, "resamples": BOOTSTRAP_RESAMPLES, "base": BT_BASE,
                                              "scale": BT_SCALE},
                            "elo": {"rounds": ELO_ROUNDS, "k": ELO_K, "seed": opts.seed}}
    write_json(folder / COMPARE_FILE, info)
    # a pair whose judgment failed (no verdict: a request error, an unparsable answer) is judged again: its line
    # leaves pairs.jsonl (it holds no verdict, only the error) so that each pair keeps one line
    failed = {k for k, ln in done.items() if ln.get("winner") is None}
    if failed:
        rewrite_pairs(folder / PAIRS_FILE, [ln for k, ln in done.items() if k not in failed])
    todo = [u for u in todo_all if u.key not in done or u.key in failed]
    if done:
        again = f" ({len(failed)} failed before, judged again)" if failed else ""
        print(f"alignbench: resuming {folder}: {len(done) - len(failed)} pair(s) already judged, {len(todo)} to go{again}",
              file=sys.stderr)
    _judge_all(judging, todo, folder / PAIRS_FILE)
    lines = read_pairs(folder / PAIRS_FILE)
    by_key = {line_key(ln): ln for ln in lines}
    ordered = [by_key[u.key] for u in todo_all if u.key in by_key]
    info.update(summarize_lines(ordered, [(a.label, b.label) for a, b in pairs], opts.seed))
    info.update(status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), judged=len(ordered),
                failed=sum(ln.get("winner") is None for ln in ordered), judge_model_calls=getattr(judge, "model_calls", None))
    write_json(folder / COMPARE_FILE, info)
    return folder, info


def _judge_all(judging: PairJudging, todo: list[Unit], path: Path) -> None:
    from tqdm import tqdm

    with tqdm(total=len(todo), desc="compare", file=sys.stderr, disable=not todo) as bar:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            append_pairs(path, judging.judge_units(chunk))
            bar.update(len(chunk))


def format_table(info: dict[str, Any]) -> str:
    """The overall ranking and the pairs, as plain text for the terminal."""
    ov = info.get("overall") or {}
    bt, elo = ov.get("bradley_terry") or {}, ov.get("elo") or {}
    order = sorted(bt, key=lambda m: -(bt[m]["rating"] if bt[m]["rating"] is not None else -1e18))

    def num(x: Any) -> str:
        return "n/a" if x is None else f"{x:.1f}"

    rows = ["run\tbt_rating [95% CI]\telo"]
    for m in order:
        r = bt[m]
        rows.append(f"{m}\t{num(r['rating'])} [{num(r['ci_low'])}, {num(r['ci_high'])}]\t{num(elo.get(m))}")
    rows.append("")
    rows.append("a\tb\twins\tties\tlosses\twin_rate [95% CI]")
    for p in ov.get("pairs") or []:
        wr = "n/a" if p["win_rate"] is None else f"{p['win_rate']:.3f} [{p['ci_low']:.3f}, {p['ci_high']:.3f}]"
        rows.append(f"{p['a']}\t{p['b']}\t{p['wins']}\t{p['ties']}\t{p['losses']}\t{wr}")
    flips = ov.get("position_flips")
    if flips and flips.get("share") is not None:
        rows.append(f"\nposition flips: {flips['flipped']}/{flips['verdicts']} verdicts ({flips['share']:.1%})")
    agree = ov.get("agreement")
    if agree and agree.get("fleiss_kappa") is not None:
        rows.append(f"jury agreement: Fleiss' kappa {agree['fleiss_kappa']:.3f} over {agree['n']} pairs")
    return "\n".join(rows)
