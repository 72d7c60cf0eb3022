"""What ``eval --resume`` checks before it appends to a run: the same settings, so it only adds what is missing.

A resumed run appends to samples.jsonl and rewrites metrics.json from every record there. If a setting
that changes what a sample is (its data, prompt, decoding, judges, or which samples run) differed from
the stored run's, the file would mix two runs under one run.json. So each such setting must equal the
value run.json's ``config`` stored, and every task and judge must still hash as it did; otherwise the
resume is a one-line usage error that names the stored value.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any

from alignbench.errors import UsageError

# The EvalConfig fields that change what a sample is. A new such setting only adds its name here; a run
# stored before the field existed counts as having had the field's default. (``--tasks`` is checked by the
# tasks it resolved to and their hashes, so a different spelling of the same tasks still resumes.)
SAMPLE_SETTINGS: tuple[str, ...] = (
    "model", "model_args", "data_files", "limit", "shard", "seed",
    "max_new_tokens", "temperature", "system_prompt", "urial", "judges", "reference_run", "epochs",
    "harm_judge", "refusal_judge", "judge_models", "judge_model_args",
)


def _json(value: Any) -> Any:
    """The value as run.json holds it (tuples become lists, secrets masked)."""
    from alignbench.run.provenance import scrub

    return json.loads(json.dumps(scrub(value), default=str))


def _show(value: Any) -> str:
    return "(not set)" if value is None else json.dumps(value, ensure_ascii=False)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _runtime_args(model: str) -> frozenset[str]:
    from alignbench.backends.base import parse_model_spec
    from alignbench.registry import backends

    name = parse_model_spec(model)[0]
    return getattr(backends.get(name), "runtime_args", frozenset()) if name in backends else frozenset()


def check_resume(stored: dict[str, Any], cfg: Any, task_hashes: dict[str, str], judge_hashes: dict[str, str],
                 urial_digest: str | None = None) -> None:
    """Raise a UsageError unless ``cfg`` (an EvalConfig) may append to the run described by ``stored`` (run.json);
    ``urial_digest``: the sha256 of the URIAL prompt this resume would use."""
    run = stored.get("run_id", "?")
    config = stored.get("config")
    if not isinstance(config, dict):
        raise UsageError(f"--resume: run {run}'s run.json has no stored config to check the settings against; start a new --run-id")
    defaults = {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default) for f in fields(cfg)}
    runtime = _runtime_args(cfg.model)
    for name in SAMPLE_SETTINGS:
        now = _json(getattr(cfg, name, defaults.get(name)))
        then = config.get(name, _json(defaults.get(name)))
        if name == "model_args" and isinstance(now, dict) and isinstance(then, dict):  # threads, timeouts, retries may differ
            now, then = ({k: v for k, v in d.items() if k not in runtime} for d in (now, then))
        if now != then:
            raise UsageError(f"--resume: run {run} was made with {_flag(name)} {_show(then)}, not {_show(now)}; "
                             "resume with the run's settings (it may only add what is missing) or start a new --run-id")
    stored_tasks = stored.get("tasks") if isinstance(stored.get("tasks"), dict) else {}
    if list(stored_tasks) != list(task_hashes):
        raise UsageError(f"--resume: run {run} was made with --tasks {','.join(stored_tasks) or '(none)'}, not "
                         f"{','.join(task_hashes)}; resume with the run's settings (it may only add what is missing) or start a new --run-id")
    for name, digest in task_hashes.items():
        was = (stored_tasks.get(name) or {}).get("hash")
        if was is not None and was != digest:
            raise UsageError(f"--resume: task {name!r} changed since run {run} was made (its YAML or data hashed {was}, now {digest}); "
                             "start a new --run-id")
    stored_judges = stored.get("judges") if isinstance(stored.get("judges"), dict) else {}
    for name, digest in judge_hashes.items():
        was = (stored_judges.get(name) or {}).get("hash")
        if name in stored_judges and was != digest:
            raise UsageError(f"--resume: judge {name!r} changed since run {run} was made (its YAML hashed {was}, now {digest}); "
                             "start a new --run-id")
    if urial_digest is not None:
        was = stored["urial"].get("sha256") if isinstance(stored.get("urial"), dict) else None
        if was != urial_digest:
            why = (f"its URIAL prompt hashed {was[:12]}, this one {urial_digest[:12]} (another version of the file)" if was
                   else "its run.json records no URIAL prompt digest, so the prompt it was made with cannot be checked")
            raise UsageError(f"--resume: run {run} was made with another URIAL prompt ({why}); start a new --run-id")
