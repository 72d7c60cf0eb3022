"""Options shared by ``eval`` and ``drift``, and their conversion into an ``EvalConfig``."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

from alignbench.backends.base import parse_model_args
from alignbench.errors import UsageError
from alignbench.records.epochs import parse_reducer
from alignbench.run.settings import EvalConfig
from alignbench.run.urial import is_urial


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``, with a one-line error otherwise."""
    what = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0 (``nan`` and ``inf`` parse as floats but are no setting)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def shard(text: str) -> tuple[int, int]:
    i, sep, n = text.partition("/")
    try:
        iv, nv = int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}") from None
    if not sep or nv < 1 or not 0 <= iv < nv:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return iv, nv


def add_run_options(p: argparse.ArgumentParser, tasks_required: bool = True) -> None:
    p.add_argument("--tasks", required=tasks_required, help="task names, groups or YAML files, comma-separated")
    p.add_argument("--model-args", default="", help="backend options k=v,... (e.g. dtype=float32,device=cpu)")
    p.add_argument("--judges", default="", help="extra judges to run on every task, comma-separated")
    p.add_argument("--limit", type=positive_int, help="N samples per task: a deterministic stratified subset, round robin over "
                   "label x category (data order within each), so every label and category is represented")
    p.add_argument("--epochs", type=positive_int, default=1, help="generate N responses per prompt (needs temperature > 0; "
                   "epoch e uses seed --seed + e); samples.jsonl keeps every epoch, CIs cluster by prompt")
    p.add_argument("--reducer", default="mean", help="how a prompt's epochs reduce for 0/1 metrics: mean (default), any, "
                   "at_least_K (e.g. at_least_2); best_of:JUDGE keeps the epoch JUDGE (a reward model) scores highest")
    p.add_argument("--output", default="results", help="folder that gets one sub-folder per run (default: results)")
    p.add_argument("--run-id", help="name of the run folder (default: time + model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=batch_size, default="auto", help="N or auto")
    p.add_argument("--concurrency", type=positive_int, default=8, help="requests in flight for server backends")
    p.add_argument("--max-new-tokens", type=positive_int, help="override the tasks' generation length")
    p.add_argument("--temperature", type=non_negative_float, help="override the tasks' sampling temperature")
    p.add_argument("--system-prompt", help="system prompt TEXT, @FILE to read it from a file, or urial / urial:NAME "
                                           "(a base model aligned in context with URIAL's prompt)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", help="generation cache file (default: ~/.cache/alignbench/cache.sqlite)")
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")
    p.add_argument("--resume", action="store_true", help="continue the run named by --run-id (or the latest unfinished one)")
    p.add_argument("--shard", type=shard, help="run shard I of N (0-based), e.g. 0/4")
    p.add_argument("--data-files", action="append", default=[],
                   help="TASK=PATH,... local data replacing a task's data source (repeatable; a task named twice reads both files)")
    p.add_argument("--reference-run", help="RUN_DIR of the unaligned model: honesty tasks call a question known when it answered correctly")
    p.add_argument("--harm-judge", help="judge deciding harm for the harmful_rate family (default: harm_clf, offline; a safety "
                   "classifier such as llamaguard, shieldlm; none: no harm judge, no harmful_rate)")
    p.add_argument("--refusal-judge", help="judge deciding refusal for the harmful_rate family (default: refusal_clf, or the task's own)")
    p.add_argument("--trust-task-code", action="store_true",
                   help="let task YAMLs run dataset.hook/loader code from outside alignbench's hooks and the task's folder")
    add_judge_model_options(p)


def add_judge_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--judge-model", default="", metavar="JUDGE=SPEC[,...]",
                   help="judge model of a judge, e.g. llamaguard=openai:meta-llama/Llama-Guard-3-8B or shieldlm=hf:/models/shieldlm")
    p.add_argument("--judge-model-args", action="append", default=[], metavar="[JUDGE:]k=v,...",
                   help="backend options of the judge models (all given with --judge-model, or JUDGE's only); repeatable")
    p.add_argument("--trace-index", action=_TraceIndex, dest="judge_model_args", metavar="DIR",
                   help="the index (alignbench trace index) of the trace_shield judge; same as --judge-model-args trace_shield:index=DIR")


class _TraceIndex(argparse.Action):
    """``--trace-index DIR``: adds ``trace_shield:index=DIR`` to ``--judge-model-args``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        if not values or "," in values or "=" in values:
            parser.error(f"--trace-index {values!r}: expected a folder path without ',' or '='")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), f"trace_shield:index={values}"])


def add_log_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log", default="", metavar="wandb|mlflow|tensorboard[,...]",
                   help="also send metrics with their CI bounds, the config and the samples to experiment trackers "
                        "(extras: pip install \"alignbench[wandb]\"; configured by WANDB_*, MLFLOW_* as usual)")


def log_trackers(args: argparse.Namespace) -> list[str]:
    """The trackers ``--log`` names, each package checked before any work (a missing one: exit 2 with the pip command)."""
    from alignbench.integrations.trackers import check_trackers, parse_log

    names = parse_log(getattr(args, "log", "") or "")
    check_trackers(names)
    return names


def parse_judge_models(text: str) -> dict[str, str]:
    """``"llamaguard=openai:X,shieldlm=hf:/m"`` -> ``{"llamaguard": "openai:X", "shieldlm": "hf:/m"}``."""
    out: dict[str, str] = {}
    for part in filter(None, (s.strip() for s in (text or "").split(","))):
        judge, sep, spec = part.partition("=")
        if not sep or not judge.strip() or not spec.strip():
            raise UsageError(f"--judge-model: expected JUDGE=SPEC (e.g. llamaguard=hf:meta-llama/Llama-Guard-3-8B), got {part!r}")
        out[judge.strip()] = spec.strip()
    return out


_JUDGE_PREFIX = re.compile(r"^([A-Za-z0-9_.-]+):(?=[^=]*=)")


def parse_judge_model_args(values: list[str]) -> dict[str, dict[str, Any]]:
    """Each ``[JUDGE:]k=v,...`` -> ``{JUDGE or "": {k: v}}`` ("" = every judge given with --judge-model)."""
    out: dict[str, dict[str, Any]] = {}
    for value in values or []:
        m = _JUDGE_PREFIX.match(value.strip())
        judge, rest = (m.group(1), value.strip()[m.end():]) if m else ("", value.strip())
        try:
            args = parse_model_args(rest)
        except UsageError as exc:
            raise UsageError(str(exc).replace("--model-args", "--judge-model-args", 1)) from None
        out.setdefault(judge, {}).update(args)
    return out


def read_system_prompt(value: str | None) -> str | None:
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"--system-prompt {value}: cannot read ({exc.strerror or exc})") from None


def parse_data_files(text: str | list[str]) -> dict[str, str]:
    """``TASK=PATH,...`` (one string or several, from repeated flags) -> {task: "PATH;PATH2"} in the order given."""
    out: dict[str, str] = {}
    for chunk in [text] if isinstance(text, str) else text:
        for part in filter(None, (s.strip() for s in chunk.split(","))):
            task, sep, path = part.partition("=")
            if not sep or not task or not path:
                raise UsageError(f"--data-files: expected TASK=PATH, got {part!r}")
            out[task] = f"{out[task]};{path}" if task in out else path
    return out


def eval_config(args: argparse.Namespace, model: str, argv: list[str] | None = None, **overrides: Any) -> EvalConfig:
    cfg = EvalConfig(
        model=model,
        tasks=args.tasks,
        model_args=parse_model_args(args.model_args),
        judges=[j.strip() for j in args.judges.split(",") if j.strip()],
        limit=args.limit,
        output=args.output,
        run_id=args.run_id,
        seed=args.seed,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        system_prompt=None if is_urial(args.system_prompt) else read_system_prompt(args.system_prompt),
        urial=args.system_prompt if is_urial(args.system_prompt) else None,
        cache=args.cache,
        no_cache=args.no_cache,
        resume=args.resume,
        shard=args.shard,
        data_files=parse_data_files(args.data_files),
        reference_run=getattr(args, "reference_run", None),
        harm_judge=getattr(args, "harm_judge", None),
        refusal_judge=getattr(args, "refusal_judge", None),
        judge_models=parse_judge_models(getattr(args, "judge_model", "")),
        judge_model_args=parse_judge_model_args(getattr(args, "judge_model_args", [])),
        command=argv or [],
        epochs=args.epochs,
        reducer=parse_reducer(args.reducer),
        trust_task_code=getattr(args, "trust_task_code", False),
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg
