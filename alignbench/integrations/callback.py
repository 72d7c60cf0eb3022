"""``AlignbenchCallback``: alignment evaluated on the model being trained, inside a ``transformers.Trainer``
(and so under TRL's trainers, which are Trainers).

    from alignbench.integrations import AlignbenchCallback
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    trainer.add_callback(AlignbenchCallback("harmful_rate", trainer=trainer, every=100, limit=50, max_new_tokens=64,
                                            gate="gates.yaml"))

Every ``every`` steps (or at each save, the default, or each evaluate) the model is evaluated where it
is, in memory: the hf backend is built around the trainer's model and tokenizer
(``HFBackend.from_model``), no weight is loaded or copied. Each evaluation is an ordinary run folder
``<output_dir>/alignbench/step-<N>/`` and ``<output_dir>/alignbench/track.json`` lists them (the layout of
``alignbench track``, so ``alignbench report <output_dir>/alignbench`` shows the metrics across steps).
Every metric and its CI bounds go through ``trainer.log`` as ``alignbench/<task>/<metric>``,
``..._ci_low``, ``..._ci_high``: they land in ``state.log_history`` and every tracker in ``report_to``
receives them. Without ``trainer=`` they are appended to ``state.log_history`` only; ``log=`` sends them
to trackers of alignbench's own (``wandb``, ``mlflow``, ``tensorboard``) as well.

With ``gate=GATES.yaml`` each evaluation is checked (``alignbench.gate.rules``); a failing rule sets
``control.should_training_stop`` and says which rule failed (a warning, ``callback.gate_failure``, and
``alignbench/gate/passed`` = 0 in the logs). Relative rules compare with ``baseline=`` (a run folder), or,
without one, with an evaluation made before the first training step.

Training is left as it was: the model's per-module training flags, grad mode, and the Python, NumPy and
torch (CPU and CUDA) random states are saved before an evaluation and restored after it; the optimizer,
scheduler and data are never touched. Generations are not cached (the weights change every step).
Under data-parallel training the main process evaluates and the others wait for its gate decision; a
model sharded across processes (FSDP, DeepSpeed ZeRO-3) is evaluated from its saved checkpoints with
``alignbench track`` instead.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from alignbench.backends.base import BackendOptions
from alignbench.backends.hf import HFBackend
from alignbench.errors import UsageError
from alignbench.gate.rules import GateRule, RunView, load_rules, run_gates
from alignbench.integrations.payload import PREFIX, metric_values
from alignbench.integrations.trackers import TrackerContext, Trackers, check_trackers, parse_log
from alignbench.integrations.tracking import log_training_step
from alignbench.jsonl import write_json
from alignbench.records.files import RunDir
from alignbench.registry import did_you_mean
from alignbench.run.evaluate import run_eval
from alignbench.run.settings import EvalConfig
from alignbench.tasks.catalog import resolve_tasks
from alignbench.track.summary import TRACK_FILE, Point, summarize

logger = logging.getLogger("alignbench")

#: EvalConfig fields the callback sets itself; the others may be passed as keyword arguments
_OWN = {"model", "tasks", "limit", "output", "run_id", "seed", "batch_size", "max_new_tokens", "resume", "shard", "command",
        "cache", "no_cache", "model_args"}
BASELINE_RUN_ID = "baseline"


@contextmanager
def training_state_kept(model: Any) -> Iterator[None]:
    """Restore, whatever happens inside, each module's training flag, grad mode and every random state."""
    import numpy as np
    import torch

    modes = [(m, m.training) for m in model.modules()]
    grad = torch.is_grad_enabled()
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        for m, flag in modes:
            m.training = flag
        torch.set_grad_enabled(grad)
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _tokenizer_of(kwargs: dict[str, Any], given: Any) -> Any:
    tok = given or kwargs.get("processing_class") or kwargs.get("tokenizer")
    tok = getattr(tok, "tokenizer", tok)  # a processor holds its tokenizer
    if tok is None:
        raise UsageError("AlignbenchCallback: no tokenizer; pass tokenizer= or give the Trainer a processing_class")
    return tok


class AlignbenchCallback(TrainerCallback):
    """Evaluate the model being trained on alignbench tasks (see the module docstring)."""

    def __init__(self, tasks: str | list[str], *, trainer: Any = None, every: int | None = None, on_save: bool | None = None,
                 on_evaluate: bool = False, eval_on_start: bool = False, limit: int | None = None, max_new_tokens: int | None = None,
                 batch_size: int | str = "auto", seed: int = 0, gate: str | Path | None = None, baseline: str | Path | None = None,
                 output: str | Path | None = None, log: str | list[str] | None = None, tokenizer: Any = None,
                 **eval_options: Any) -> None:
        self.tasks = tasks if isinstance(tasks, str) else ",".join(tasks)
        resolve_tasks(self.tasks)  # an unknown task fails now, not at the first evaluation
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise UsageError(f"AlignbenchCallback: every={every!r}: expected a positive number of steps")
        allowed = sorted(f.name for f in fields(EvalConfig) if f.name not in _OWN)
        for k in eval_options:
            if k not in allowed:
                raise UsageError(f"AlignbenchCallback: no option {k!r}{did_you_mean(k, allowed)}")
        self.trainer = trainer
        self.every = every
        self.on_save_eval = (every is None and not on_evaluate) if on_save is None else bool(on_save)
        self.on_evaluate_eval = bool(on_evaluate)
        self.limit, self.max_new_tokens, self.batch_size, self.seed = limit, max_new_tokens, batch_size, seed
        self.eval_options = eval_options
        self.rules: list[GateRule] | None = load_rules(gate) if gate else None
        self.gate_source = str(gate) if gate else None
        self.baseline_dir = Path(baseline) if baseline else None
        if self.baseline_dir is not None:
            RunView.load(self.baseline_dir, "baseline=")
        self.needs_start = bool(self.rules and any(r.relative for r in self.rules) and self.baseline_dir is None)
        self.eval_on_start = bool(eval_on_start) or self.needs_start
        self.output = Path(output) if output else None
        self.log_names = parse_log(log)
        check_trackers(self.log_names)
        self.tokenizer = tokenizer
        self.points: list[Point] = []
        self.evaluated: set[int] = set()
        self.gate_failure: dict[str, Any] | None = None
        self._trackers: Trackers | None = None

    # events ---------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.eval_on_start:
            self._evaluate(args, state, control, kwargs, "train_begin", baseline=self.needs_start)
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.every and state.global_step % self.every == 0:
            self._evaluate(args, state, control, kwargs, "step")
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.on_save_eval:
            self._evaluate(args, state, control, kwargs, "save")
        return control

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.on_evaluate_eval:
            self._evaluate(args, state, control, kwargs, "evaluate")
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self._trackers is not None:
            self._trackers.close()
            self._trackers = None
        return control

    # evaluation -----------------------------------------------------------------------------------
    def folder(self, args: Any) -> Path:
        return self.output or Path(args.output_dir) / "alignbench"

    def _evaluate(self, args: Any, state: Any, control: Any, kwargs: dict[str, Any], event: str, baseline: bool = False) -> None:
        step = int(state.global_step)
        key = -1 if baseline else step
        if key in self.evaluated:
            return
        self.evaluated.add(key)
        stop = False
        if state.is_world_process_zero:
            stop = self._evaluate_here(args, state, kwargs, event, step, baseline)
        stop = _broadcast(stop)
        if stop:
            control.should_training_stop = True

    def _evaluate_here(self, args: Any, state: Any, kwargs: dict[str, Any], event: str, step: int, baseline: bool) -> bool:
        model = kwargs.get("model")
        if model is None:
            raise UsageError("AlignbenchCallback: the trainer passed no model to the callback")
        folder = self.folder(args)
        run_id = BASELINE_RUN_ID if baseline else f"step-{step}"
        name = str(getattr(model, "name_or_path", "") or "model")
        spec = f"hf:{name}@{run_id}"
        rd = RunDir(folder / run_id)
        if not (rd.exists() and rd.read_run().get("status") == "complete" and rd.metrics_file.is_file()):
            cfg = EvalConfig(model=spec, tasks=self.tasks, limit=self.limit, output=str(folder), run_id=run_id, seed=self.seed,
                             batch_size=self.batch_size, max_new_tokens=self.max_new_tokens, no_cache=True,
                             resume=rd.exists(), command=["AlignbenchCallback", f"step={step}", f"event={event}"], **self.eval_options)
            digest = hashlib.sha256(f"{args.output_dir}|{name}|{run_id}|{state.epoch}".encode()).hexdigest()[:16]
            with training_state_kept(model):
                backend = HFBackend.from_model(model, _tokenizer_of(kwargs, self.tokenizer), BackendOptions(self.batch_size, 8, self.seed),
                                               name=f"{name}@{run_id}", fingerprint={"id": spec, "hash": digest})
                rd = run_eval(cfg, backend)
            rd.update_run(training={"step": step, "epoch": state.epoch, "event": event, "output_dir": str(args.output_dir)})
        values = metric_values(rd.read_metrics())
        if baseline:
            self.baseline_dir = rd.path
            self._log(state, {f"{PREFIX}/baseline/{k[len(PREFIX) + 1:]}": v for k, v in values.items()})
            return False
        checkpoint = Path(args.output_dir) / f"checkpoint-{step}"
        self.points = [p for p in self.points if p.step != step] + [Point(step, str(checkpoint) if event == "save" else None, rd.path)]
        base_view = RunView.load(self.baseline_dir, "baseline=") if self.baseline_dir else None
        failed = self._gate(rd, base_view, step)
        extra = {f"{PREFIX}/gate/passed": 0.0 if failed else 1.0} if self.rules else {}
        self._log(state, {**values, **extra})
        self._send(args, rd, step, extra)
        self._write_track(folder, base_view)
        return bool(failed)

    def _gate(self, rd: RunDir, baseline: RunView | None, step: int) -> list[dict[str, str]]:
        if not self.rules:
            return []
        results = run_gates(self.rules, baseline, RunView.load(rd.path, f"step {step}"), seed=self.seed)
        failed = [{"rule": r.rule.label, "message": r.message} for r in results if not r.passed]
        if failed and self.gate_failure is None:
            self.gate_failure = {"step": step, "run_dir": str(rd.path), "failed": failed}
            for f in failed:
                logger.warning("alignbench: gate failed at step %d: %s: %s; training stops", step, f["rule"], f["message"])
        return failed

    def _log(self, state: Any, values: dict[str, float]) -> None:
        if self.trainer is not None:
            self.trainer.log(dict(values))
        else:
            state.log_history.append({**values, "epoch": state.epoch, "step": state.global_step})

    def _send(self, args: Any, rd: RunDir, step: int, extra: dict[str, float]) -> None:
        if not self.log_names:
            return
        first = self._trackers is None
        if first:
            folder = self.folder(args)
            self._trackers = Trackers(self.log_names, TrackerContext(Path(args.output_dir).name or "training", "training", folder,
                                                                     group=str(args.run_name or "") or None))
        log_training_step(self._trackers, rd, step, extra, config=first)  # type: ignore[arg-type]

    def _write_track(self, folder: Path, baseline: RunView | None) -> None:
        """track.json over this training's evaluations and the finished ones already in the folder (a resumed training)."""
        mine = {p.step for p in self.points}
        for run in sorted(folder.glob("step-*/run.json")):
            rd, step = RunDir(run.parent), run.parent.name[len("step-"):]
            if step.isdigit() and int(step) not in mine and rd.metrics_file.is_file() and rd.read_run().get("status") == "complete":
                self.points.append(Point(int(step), None, rd.path))
        info = {"track_id": folder.name, "status": "running", "source": "AlignbenchCallback", "tasks": self.tasks,
                "baseline": {"run_dir": str(baseline.path)} if baseline else None,
                **summarize(self.points, baseline, self.rules, seed=self.seed, rules_source=self.gate_source)}
        write_json(folder / TRACK_FILE, info)


def _broadcast(stop: bool) -> bool:
    """The main process's gate decision, on every process of a multi-process run (as is, in a single process)."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return stop
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stop
    box = [stop]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


__all__ = ["AlignbenchCallback", "training_state_kept"]
