"""``alignbench drift``: compare two runs, or run base and tuned models and compare them.

Writes ``DIR/<drift_id>/``:

* ``drift.json``: ``drift_id``, ``created``, ``seed``, ``base`` / ``tuned`` (run folder, run id,
  model, fingerprint, status) and ``tasks``: per task ``n_base``, ``n_tuned``, ``n_paired``,
  ``metrics`` (per-sample metric -> paired delta record with ``by_category``), ``flips`` (binary
  metric -> counts of ``0->1`` / ``1->0``) and ``task_metrics`` (task-level metrics compared
  unpaired); ``token_shift`` is the profile summary when it was computed;
* ``flips.jsonl``: one line per flipped (task, binary metric, sample) with prompt and both responses;
* ``token_shift.json``: the token-shift profile (``alignbench.drift.token_shift``), when computed.
"""

from __future__ import annotations

import random
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alignbench.backends.base import BackendOptions, load_backend, parse_model_spec
from alignbench.drift.compare import Side, compare_runs, load_side, select_tasks
from alignbench.drift.token_shift import ShiftItem, supports_token_shift, token_shift_profile
from alignbench.errors import UsageError
from alignbench.jsonl import write_json, write_lines
from alignbench.records.files import check_run_id
from alignbench.registry import backends
from alignbench.run.evaluate import run_eval
from alignbench.run.settings import EvalConfig

DRIFT_FILE = "drift.json"
FLIPS_FILE = "flips.jsonl"
TOKEN_SHIFT_FILE = "token_shift.json"


@dataclass
class TokenShiftOptions:
    samples: int = 0  # per task; 0 = off
    max_new_tokens: int = 64


def new_drift_id(base: str, tuned: str) -> str:
    slug = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-")[-30:] or "run"  # noqa: E731
    return f"drift-{time.strftime('%Y%m%d-%H%M%S')}-{slug(base)}-vs-{slug(tuned)}"


def drift_dir(output: str | Path, drift_id: str, overwrite: bool = False) -> Path:
    check_run_id(drift_id)
    path = Path(output) / drift_id
    if (path / DRIFT_FILE).exists() and not overwrite:
        raise UsageError(f"drift folder {path} already exists; pass another --run-id")
    return path


def shift_items(side: Side, tasks: list[str], n: int, seed: int) -> list[ShiftItem]:
    """A seeded random sample of ``n`` generated (not multiple-choice) prompts per task."""
    items: list[ShiftItem] = []
    for t in tasks:
        recs = [r for r in side.records[t].values() if not r.get("choices") and r.get("prompt")]
        pick = random.Random(f"{seed}:{t}").sample(recs, min(n, len(recs)))
        items += [ShiftItem(t, str(r["sample_id"]), r["prompt"]) for r in pick]
    return items


def _backend_args(side: Side) -> dict[str, Any]:
    return dict((side.info.get("config") or {}).get("model_args") or {})


def compute_token_shift(base: Side, tuned: Side, tasks: list[str], opts: TokenShiftOptions, seed: int,
                        base_args: dict[str, Any] | None = None, tuned_args: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The profile, or None (with a note on stderr) when a backend cannot score token distributions."""
    specs = {"base": str(base.info.get("model")), "tuned": str(tuned.info.get("model"))}
    for who, spec in specs.items():
        if not supports_token_shift(backends.get(parse_model_spec(spec)[0])):
            print(f"alignbench: note: token-shift profile skipped: the {who} backend of {spec!r} cannot score full "
                  "token distributions (use hf)", file=sys.stderr)
            return None
    items = shift_items(tuned, tasks, opts.samples, seed)
    if not items:
        print("alignbench: note: token-shift profile skipped: no generated samples to score", file=sys.stderr)
        return None
    options = BackendOptions(seed=seed)
    tuned_model = load_backend(specs["tuned"], tuned_args if tuned_args is not None else _backend_args(tuned), options)
    try:
        base_model = load_backend(specs["base"], base_args if base_args is not None else _backend_args(base), options)
        try:
            return token_shift_profile(base_model, tuned_model, items, max_new_tokens=opts.max_new_tokens, seed=seed)
        finally:
            base_model.close()
    finally:
        tuned_model.close()


def write_drift(path: Path, base: Side, tuned: Side, tasks: list[str], seed: int,
                token_shift: dict[str, Any] | None) -> dict[str, Any]:
    task_section, flips = compare_runs(base, tuned, tasks, seed=seed)
    report = {"drift_id": path.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": seed,
              "base": base.summary, "tuned": tuned.summary, "tasks": task_section, "token_shift": None}
    path.mkdir(parents=True, exist_ok=True)
    if token_shift is not None:
        write_json(path / TOKEN_SHIFT_FILE, token_shift)
        report["token_shift"] = {k: v for k, v in token_shift.items() if k not in ("samples", "by_task")}
        report["token_shift"]["file"] = TOKEN_SHIFT_FILE
    write_lines(path / FLIPS_FILE, flips)
    write_json(path / DRIFT_FILE, report)
    return report


def drift_runs(run_a: str, run_b: str, output: str, drift_id: str | None, tasks: list[str] | None, seed: int,
               token_shift: TokenShiftOptions, groups: dict[str, list[str]] | None = None) -> tuple[Path, dict[str, Any]]:
    """Compare two finished runs (A = base, B = tuned)."""
    base, tuned = load_side(run_a), load_side(run_b)
    for side in (base, tuned):
        if side.info.get("status") != "complete":
            print(f"alignbench: warning: run {side.path} is {side.info.get('status')!r}, not complete; comparing the samples it has",
                  file=sys.stderr)
    chosen = select_tasks(base, tuned, tasks, groups)
    path = drift_dir(output, drift_id or new_drift_id(base.path.name, tuned.path.name))
    shift = compute_token_shift(base, tuned, chosen, token_shift, seed) if token_shift.samples else None
    return path, write_drift(path, base, tuned, chosen, seed, shift)


def drift_models(base_cfg: EvalConfig, tuned_cfg: EvalConfig, drift_id: str, token_shift: TokenShiftOptions) -> tuple[Path, dict[str, Any]]:
    """Evaluate base and tuned on the same tasks, samples and seed, then compare them."""
    if base_cfg.seed != tuned_cfg.seed:
        raise UsageError("base and tuned runs must share --seed")
    path = drift_dir(base_cfg.output, drift_id, overwrite=base_cfg.resume)
    base_rd = run_eval(replace(base_cfg, run_id=f"{drift_id}-base"))
    tuned_rd = run_eval(replace(tuned_cfg, run_id=f"{drift_id}-tuned"))
    base, tuned = load_side(base_rd.path), load_side(tuned_rd.path)
    chosen = select_tasks(base, tuned, None)
    shift = None
    if token_shift.samples:
        shift = compute_token_shift(base, tuned, chosen, token_shift, base_cfg.seed, base_cfg.model_args, tuned_cfg.model_args)
    return path, write_drift(path, base, tuned, chosen, base_cfg.seed, shift)


def format_table(report: dict[str, Any]) -> str:
    """The stdout table: one line per task and metric."""
    lines = ["task\tmetric\tbase\ttuned\tdelta [95% CI]\tp\tn\tflips 0->1/1->0"]
    f = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
    for task, entry in report["tasks"].items():
        for m, d in entry["metrics"].items():
            ci = f" [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]" if d.get("ci_low") is not None else ""
            delta = "-" if d["delta"] is None else f"{d['delta']:+.4f}{ci}"
            p = "-" if d["p_value"] is None else f"{d['p_value']:.4g}"
            fl = f"{d['b01']}/{d['b10']}" if d["test"] == "mcnemar_exact" else "-"
            lines.append(f"{task}\t{m}\t{f(d['a'])}\t{f(d['b'])}\t{delta}\t{p}\t{d['n']}\t{fl}")
        for m, d in entry["task_metrics"].items():
            ci = f" [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]" if d.get("ci_low") is not None else ""
            delta = "-" if d["delta"] is None else f"{d['delta']:+.4f}{ci}"
            lines.append(f"{task}\t{m}\t{f(d['a'])}\t{f(d['b'])}\t{delta}\t-\t{d['n_a']}/{d['n_b']}\t-")
    ts = report.get("token_shift")
    if ts:
        share = lambda k: f"{ts[k]['value']:.3f}" if ts[k]["value"] is not None else "-"  # noqa: E731
        lines.append(f"token_shift\tunshifted/marginal/shifted\t{share('unshifted')}/{share('marginal')}/{share('shifted')}"
                     f"\tKL {share('kl_mean')}\t-\t{ts['n_positions']}\t-")
    return "\n".join(lines)
