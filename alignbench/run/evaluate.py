"""The evaluation loop: tasks -> samples -> model -> judges -> per-sample metrics -> run files.

Work is done in chunks; after each chunk its records are appended and flushed to samples.jsonl, so
a killed run keeps everything but the chunk in flight and ``resume`` redoes only what is missing.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from tqdm import tqdm

from alignbench.backends.base import Backend, BackendOptions, load_backend, parse_model_spec
from alignbench.backends.cache import CachedBackend, GenerationCache, default_cache_path
from alignbench.errors import AlignbenchError, UsageError
from alignbench.judges.base import Judge
from alignbench.judges.catalog import builtin_judges, check_judge_model_names, judge_model_overrides
from alignbench.records import lock
from alignbench.records.accounting import generation_fields, judge_model_calls, token_totals
from alignbench.records.epochs import best_of_judge, cluster_of, done_keys, epoch_seed, task_epochs
from alignbench.records.files import RunDir
from alignbench.redact import scrub_text
from alignbench.registry import backends
from alignbench.run.folder import new_run_id, open_run_dir
from alignbench.run.info import judge_hashes, run_info
from alignbench.run.resume import check_resume
from alignbench.run.settings import EvalConfig, PreparedTask
from alignbench.run.task_setup import build_prompt, check_judge_role_flags, select_samples, takes_arg, task_scorer_args
from alignbench.run.urial import STOP as URIAL_STOP
from alignbench.run.urial import load_urial
from alignbench.scorers.base import build_scorer, task_metrics
from alignbench.tasks.catalog import resolve_tasks, task_version_hash
from alignbench.tasks.data import load_samples_for, resolve_data_paths, sample_params
from alignbench.types import GenerationParams, GenerationRequest, JudgeInput, LoglikelihoodRequest, Prompt, Sample, prompt_text


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def prepare_tasks(cfg: EvalConfig) -> list[PreparedTask]:
    """Resolve names, load data and build judges before any model is loaded (fail fast)."""
    catalog = builtin_judges()
    tasks = resolve_tasks(cfg.tasks)
    unknown = sorted(set(cfg.data_files) - {t.name for t in tasks})
    if unknown:
        raise UsageError(f"--data-files names task(s) {unknown} that are not being run")
    judge_cache: dict[str, Judge] = {}

    def judge(name: str) -> Judge:
        if name not in judge_cache:
            # --no-cache: no cache at all, judges' included; --cache PATH: the judges' calls go there too
            judge_cache[name] = catalog.build(name, **judge_model_overrides(name, cfg.judge_models, cfg.judge_model_args),
                                              cache=False if cfg.no_cache else (cfg.cache or True))
        return judge_cache[name]

    planned = []
    for t in tasks:
        if cfg.reference_run and takes_arg(t.scorer, "reference_run"):
            t = t.model_copy(update={"scorer_args": {**t.scorer_args, "reference_run": str(Path(cfg.reference_run).resolve())}})
        override = cfg.data_files.get(t.name)
        samples = select_samples(load_samples_for(t, override, cfg.trust_task_code), t.name, cfg.limit, cfg.shard)
        task_epochs(t, cfg.epochs, cfg.temperature, samples)  # checks --epochs and the cluster field against the task
        scorer = build_scorer(t.scorer, task_scorer_args(t, cfg), t.source or f"task {t.name!r}")
        names = list(dict.fromkeys(t.judges + scorer.required_judges() + cfg.judges))
        planned.append((t, samples, names, scorer, override))
    if cfg.reference_run and not any("reference_run" in p[0].scorer_args for p in planned):
        raise UsageError(f"--reference-run {cfg.reference_run}: none of the tasks ({cfg.tasks}) uses a reference run (the honesty scorer does)")
    check_judge_role_flags(cfg, tasks)
    check_judge_model_names(catalog, cfg.judge_models, cfg.judge_model_args, list(dict.fromkeys(n for p in planned for n in p[2])))
    prepared = []
    for t, samples, names, scorer, override in planned:
        judges = [judge(n) for n in names]
        scorer.check_judges({j.name: j for j in judges})
        if task_epochs(t, cfg.epochs) > 1:
            check_best_of(cfg.reducer, [j.name for j in judges], t.name)
        prepared.append(PreparedTask(t, samples, judges, scorer, resolve_data_paths(t, override, cfg.trust_task_code)))
    return prepared


def check_best_of(reducer: str, judges: list[str], task: str) -> None:
    """A ``best_of:JUDGE`` reducer needs JUDGE among the task's judges (it scores the epochs it picks from)."""
    judge = best_of_judge(reducer)
    if judge is not None and judge not in judges:
        raise UsageError(f"--reducer {reducer}: judge {judge!r} does not run on task {task!r} (add --judges {judge})")


def scorer_notices(prepared: list[PreparedTask]) -> list[str]:
    """The scorers' one-line notes (e.g. a metric not reported and how to get it), one per note."""
    notes: dict[str, list[str]] = {}
    for p in prepared:
        note = p.scorer.notice()
        if note:
            notes.setdefault(note, []).append(p.cfg.name)
    return [f"task{'s' if len(names) > 1 else ''} {', '.join(names)}: {note}" for note, names in notes.items()]


def _chunk_size(backend: Backend, cfg: EvalConfig) -> int:
    pref = getattr(backend, "preferred_chunk", None)
    if isinstance(pref, int) and pref > 0:
        return pref
    bs = cfg.batch_size if isinstance(cfg.batch_size, int) else 16
    return max(bs * 4, cfg.concurrency * 2, 8)


class Evaluator:
    def __init__(self, cfg: EvalConfig, backend: Backend | None = None, cache_fallback: str | None = None) -> None:
        self.cfg = cfg
        self._backend = backend
        self._cache_fallback = cache_fallback  # a cache file only read from (a shard reads the main cache)
        self._urial = load_urial(cfg.urial) if cfg.urial else None

    # main loop ----------------------------------------------------------------------------------
    def run(self) -> RunDir:
        cfg = self.cfg
        if self._backend is None:
            backends.get(parse_model_spec(cfg.model)[0])  # an unknown backend fails before any data is read
        prepared = prepare_tasks(cfg)
        for j in {id(j): j for p in prepared for j in p.judges}.values():
            j.check()  # a judge that is missing, cannot load or cannot judge stops here, before any generation
        run_dir = open_run_dir(self.cfg)
        locked = False
        try:
            if cfg.resume:  # one writer: a second resume of this run is refused before it reads what is done
                lock.acquire(run_dir.path, "run folder")
                locked = True
                # before the model loads: a resume may only add what the stored run is missing
                check_resume(run_dir.read_run(), cfg, {p.cfg.name: task_version_hash(p.cfg, p.data_paths) for p in prepared},
                             judge_hashes(prepared), self._urial.digest if self._urial else None)
            return self._run(prepared, run_dir, locked)
        finally:
            if locked:
                lock.release(run_dir.path)

    def _run(self, prepared: list[PreparedTask], run_dir: RunDir, locked: bool) -> RunDir:
        cfg = self.cfg
        backend = self._backend or load_backend(cfg.model, cfg.model_args, BackendOptions(cfg.batch_size, cfg.concurrency, cfg.seed))
        if not locked:  # a new run: its folder is taken now, and must still be free
            try:
                lock.acquire(run_dir.path, "run folder")
            except BaseException:
                backend.close()
                raise
            try:
                if run_dir.exists():
                    backend.close()
                    raise UsageError(f"run folder {run_dir.path} already exists; pass --resume to continue it or another --run-id")
                return self._evaluate(prepared, run_dir, backend)
            finally:
                lock.release(run_dir.path)
        return self._evaluate(prepared, run_dir, backend)

    def _evaluate(self, prepared: list[PreparedTask], run_dir: RunDir, backend: Backend) -> RunDir:
        cfg = self.cfg
        cache = None if cfg.no_cache else GenerationCache(cfg.cache or default_cache_path(), fallback=self._cache_fallback)
        model = CachedBackend(backend, cache)
        if cfg.resume:
            dropped = run_dir.repair()
            info = run_dir.update_run(status="running", resumed=_now(), torn_bytes_dropped=dropped)
        else:
            info = run_info(cfg, run_dir, backend, prepared, self._task_params, self._urial)
            run_dir.write_run(info)
        done = done_keys(run_dir.records())
        started = time.time()
        try:
            for p in prepared:
                for epoch in range(task_epochs(p.cfg, cfg.epochs)):
                    todo = [s for s in p.samples if (p.cfg.name, s.id, epoch) not in done]
                    self._run_task(p, todo, model, run_dir, _chunk_size(backend, cfg), epoch)
            metrics, judge_errors = self._aggregate(prepared, run_dir)
            judge_calls = judge_model_calls(list({id(j): j for p in prepared for j in p.judges}.values()))  # before they close
        except BaseException as exc:
            msg = scrub_text(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)  # no credentials in run.json
            status = "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            run_dir.update_run(status=status, finished=_now(), error=msg, model_calls=model.model_calls)
            raise
        finally:
            backend.close()
            for j in {id(j): j for p in prepared for j in p.judges}.values():
                j.close()
            if cache is not None:
                cache.close()
        run_dir.write_metrics(metrics)
        run_dir.update_run(status="complete", finished=_now(), model_calls=model.model_calls,
                           judge_model_calls=judge_calls, tokens=token_totals(run_dir.records()),
                           wall_s=round(time.time() - started, 3), judge_errors=judge_errors, notices=scorer_notices(prepared))
        return run_dir

    def _run_task(self, p: PreparedTask, todo: list[Sample], model: CachedBackend, run_dir: RunDir, chunk: int, epoch: int = 0) -> None:
        desc = p.cfg.name if task_epochs(p.cfg, self.cfg.epochs) == 1 else f"{p.cfg.name} epoch {epoch + 1}"
        chunks = [todo[start : start + chunk] for start in range(0, len(todo), chunk)]
        # a context manager, so the bar is closed (its line ended) before an error propagates to the one-line message
        with tqdm(total=len(p.samples), initial=len(p.samples) - len(todo), desc=desc, file=sys.stderr,
                  disable=os.environ.get("ALIGNBENCH_NO_PROGRESS") == "1", dynamic_ncols=True) as bar:
            if p.cfg.output_type == "multiple_choice":
                for batch in chunks:
                    self._write(p, batch, self._multiple_choice(p, batch, model), run_dir, bar)
            else:
                self._generate_chunks(p, chunks, model, run_dir, bar, epoch)

    def _prompt(self, p: PreparedTask, s: Sample, chat: bool | None = None) -> Prompt:
        """The prompt as sent; with URIAL, the task's prompt as plain text inside the URIAL prompt."""
        if self._urial:
            return self._urial.wrap(prompt_text(build_prompt(p.cfg, s, "", chat=False)))
        return build_prompt(p.cfg, s, self.cfg.system_prompt, chat=chat)

    def _write(self, p: PreparedTask, batch: list[Sample], records: list[dict[str, Any]], run_dir: RunDir, bar: Any) -> None:
        self._judge_and_score(p, batch, records)
        run_dir.append(records)
        bar.update(len(batch))

    def _record(self, p: PreparedTask, s: Sample, prompt: Prompt, epoch: int = 0) -> dict[str, Any]:
        rec = {"task": p.cfg.name, "sample_id": s.id, "category": s.category, "prompt": prompt, "response": None,
               "references": s.references, "target": s.target, "meta": s.meta, "judgments": {}, "metrics": {},
               "cached": False, "latency_s": 0.0}
        if p.cfg.cluster:
            rec["cluster"] = cluster_of(p.cfg, s)
        if task_epochs(p.cfg, self.cfg.epochs) > 1:
            rec["epoch"] = epoch
        return rec

    def _generate_chunks(self, p: PreparedTask, chunks: list[list[Sample]], model: CachedBackend, run_dir: RunDir, bar: Any,
                         epoch: int = 0) -> None:
        """Generate, judge and write chunk after chunk. A ``pipelined`` backend (a server) gets the next
        chunk's requests before this chunk is judged, so its requests keep flowing across chunks. If
        generation fails, every sample already answered (in this chunk or the next) is judged and written
        before the error goes up: nothing finished is lost, with or without the cache."""
        ahead = 1 if getattr(model, "pipelined", False) else 0
        queue: deque[tuple[list[Sample], list[Prompt], Any]] = deque()
        rest = iter(chunks)

        def submit() -> None:
            batch = next(rest, None)
            if batch is not None:
                queue.append((batch, *self._submit_generation(p, batch, model, epoch)))

        for _ in range(ahead + 1):
            submit()
        try:
            while queue:
                batch, prompts, handle = queue[0]
                try:
                    gens = handle.result()
                except AlignbenchError as exc:
                    queue.popleft()
                    answered = [(batch, prompts, getattr(exc, "done", {}))] + [(b, pr, h.abort()) for b, pr, h in queue]
                    queue.clear()
                    self._write_answered(p, answered, run_dir, epoch)
                    raise
                queue.popleft()
                if ahead:
                    submit()
                self._write(p, batch, self._generation_records(p, batch, prompts, gens, epoch), run_dir, bar)
                if not ahead:
                    submit()
        finally:
            for _, _, h in queue:  # interrupted: stop what is still in flight
                h.abort()

    def _task_params(self, p: PreparedTask, epoch: int = 0) -> GenerationParams:
        g = p.cfg.generation
        return GenerationParams(max_new_tokens=self.cfg.max_new_tokens or g.max_new_tokens,
                                temperature=g.temperature if self.cfg.temperature is None else self.cfg.temperature,
                                top_p=g.top_p, stop=tuple(g.stop) + (URIAL_STOP if self._urial else ()),
                                seed=epoch_seed(self.cfg.seed, epoch))

    def _submit_generation(self, p: PreparedTask, batch: list[Sample], model: CachedBackend, epoch: int = 0) -> tuple[list[Prompt], Any]:
        params = self._task_params(p, epoch)
        prompts = [self._prompt(p, s) for s in batch]
        return prompts, model.submit_generate([GenerationRequest(prompt=pr, params=sample_params(params, s, p.cfg.name),
                                                                 task=p.cfg.name, sample_id=s.id) for s, pr in zip(batch, prompts)])

    def _generation_records(self, p: PreparedTask, batch: list[Sample], prompts: list[Prompt], gens: list[Any],
                            epoch: int = 0) -> list[dict[str, Any]]:
        records = []
        for s, pr, gen in zip(batch, prompts, gens):
            rec = self._record(p, s, pr, epoch)
            text = self._urial.clean(gen.text) if self._urial else gen.text
            rec.update(response=text, cached=gen.cached, latency_s=round(gen.latency_s, 4), **generation_fields(gen))
            records.append(rec)
        return records

    def _write_answered(self, p: PreparedTask, answered: list[tuple[list[Sample], list[Prompt], dict[int, Any]]], run_dir: RunDir,
                        epoch: int = 0) -> None:
        """Judge and write the samples of failed chunks that did get an answer (best effort: the failure is what gets reported)."""
        batch = [s for b, _, done in answered for i, s in enumerate(b) if i in done]
        prompts = [pr[i] for b, pr, done in answered for i in range(len(b)) if i in done]
        gens = [done[i] for b, _, done in answered for i in range(len(b)) if i in done]
        if not batch:
            return
        records = self._generation_records(p, batch, prompts, gens, epoch)
        try:
            self._judge_and_score(p, batch, records)
        except Exception:  # noqa: BLE001 - a judge that fails now would hide the first error
            return
        run_dir.append(records)

    def _multiple_choice(self, p: PreparedTask, batch: list[Sample], model: CachedBackend) -> list[dict[str, Any]]:
        """Score every choice by log P(" " + choice | context); the response is the most likely choice."""
        contexts: list[str] = []
        reqs: list[LoglikelihoodRequest] = []
        for s in batch:
            if not s.choices:
                raise UsageError(f"task {p.cfg.name!r}: sample {s.id!r} has no choices (multiple_choice task)")
            ctx = str(self._prompt(p, s, chat=False))
            contexts.append(ctx)
            reqs += [LoglikelihoodRequest(context=ctx, continuation=" " + c) for c in s.choices]
        t0 = time.time()
        results = model.loglikelihood(reqs)
        per = (time.time() - t0) / max(len(batch), 1)
        records = []
        start = 0
        for s, ctx in zip(batch, contexts):
            mine = results[start : start + len(s.choices or [])]
            start += len(mine)
            lls = [r.logprob for r in mine]
            best = max(range(len(lls)), key=lls.__getitem__)
            rec = self._record(p, s, ctx)
            rec.update(response=s.choices[best], choices=s.choices, loglikelihoods=lls, is_greedy=[r.is_greedy for r in mine],
                       choice_tokens=[r.num_tokens for r in mine], cached=all(r.cached for r in mine), latency_s=round(per, 4))
            records.append(rec)
        return records

    def _judge_and_score(self, p: PreparedTask, batch: list[Sample], records: list[dict[str, Any]]) -> None:
        inputs = [JudgeInput(prompt=s.prompt, response=r["response"] or "", references=s.references, sample_id=s.id,
                             category=s.category, meta=s.meta) for s, r in zip(batch, records)]
        for j in p.judges:
            for r, jd in zip(records, j.judge(inputs)):
                r["judgments"][j.name] = jd.as_dict()
        for s, r in zip(batch, records):
            try:
                r["metrics"] = p.scorer.score(s, r)
            except (TypeError, ValueError, KeyError, IndexError) as exc:  # data or scorer_args the scorer cannot use
                msg = str(exc).splitlines()[0] if str(exc) else ""
                raise UsageError(f"task {p.cfg.name!r}: sample {s.id!r}: scorer {p.cfg.scorer or 'judge_scores'!r} failed "
                                 f"({exc.__class__.__name__}: {msg[:200]})") from None

    def _aggregate(self, prepared: list[PreparedTask], run_dir: RunDir) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
        metrics: dict[str, Any] = {}
        errors: dict[str, dict[str, int]] = {}
        for p in prepared:
            metrics[p.cfg.name], counts = task_metrics(run_dir.records(p.cfg.name), p.scorer, seed=self.cfg.seed,
                                                       reducer=self.cfg.reducer)
            if counts:
                errors[p.cfg.name] = counts
        return metrics, errors


def run_eval(cfg: EvalConfig, backend: Backend | None = None) -> RunDir:
    return Evaluator(cfg, backend).run()


__all__ = ["EvalConfig", "Evaluator", "run_eval", "AlignbenchError", "new_run_id", "prepare_tasks"]
