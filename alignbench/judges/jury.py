"""LLM juries: several judge models grade each response with a rubric prompt (kinds ``llm_rubric`` and
``llm_pairwise``).

Params (both kinds):

* ``models``: backend specs of the judges (``openai:NAME``, ``hf:PATH``, ``dummy``, ...), called
  through ``alignbench.backends.load_backend``; ``models_env``: name of an environment variable that,
  when set, replaces ``models`` (comma-separated specs), so a named jury can be pointed at other
  judges without editing its YAML.
* ``model_args``: backend options for every model, or ``{spec: {...}}`` per model.
* ``template``: Jinja2 file relative to the YAML's folder (``templates/*.j2``). Variables: ``prompt``
  (the user's request as text), ``response``, ``references`` (list), ``reference`` (the first),
  ``meta``, ``category``, ``constraints`` (``meta.constraints`` or else the references, as a list of
  strings), ``aspects``, ``scale`` (e.g. ``1-5`` or ``yes|no``), ``labels``; pairwise adds
  ``response_a`` and ``response_b``. ``system``: optional system message.
* ``scale``: ``"1-5"``, ``[label, ...]`` or ``{label: score}``; ``aspects``: list of aspect names for
  a multi-aspect rubric (one call per judge returns all aspects).
* ``aggregation``: ``majority`` (score = score of the majority label) or ``mean`` (score = mean of
  the judges' scores). The label is always the majority label; a tie goes to the tied label listed
  first in the scale (``raw["tie"]`` is true).
* ``max_new_tokens`` (512), ``temperature`` (0.0), ``concurrency`` (requests in flight per model),
  ``cache`` (true: judge calls go through the generation cache, so a re-run asks nothing again).

All models' requests of a batch are issued together (one thread per model, each backend keeps
its own requests in flight), so server backends overlap. A request that fails fails only its own
verdict (``CachedBackend.generate_each``).

Verdicts are parsed strictly (``alignbench.judges._verdicts``). ``Judgment.raw`` (a contract that
``alignbench.stats.jury_agreement.jury_agreement`` and scorers read)::

    {"verdicts": [{"judge": SPEC, "label": ..., "score": ..., "text": OUTPUT, "parse_error": null | "why",
                   "error": null | "backend error", "aspects": {aspect: {"label", "score"}} (multi-aspect)}, ...],
     "parse_failures": N, "backend_errors": N, "n_judges": K, "aggregation": "majority" | "mean",
     "tie": bool, "aspects": {aspect: {"label": majority, "score": aggregate, "n": parsed}} (multi-aspect)}

``Judgment.label`` is the majority label (None for multi-aspect rubrics), ``score`` the aggregate
over the parsed verdicts (multi-aspect: mean of the aspects' aggregates). When no verdict parsed,
``Judgment.error`` says so and ``raw`` keeps every output.

``llm_pairwise`` compares the response (A) with a baseline (B): ``references[0]``, or
``meta[baseline_field]``. Labels ``A`` (the response is better), ``B``, ``tie`` with scores 1, 0,
0.5. With ``position_swap: true`` every judge also sees the two in swapped order; its verdict counts
only when both orders agree, otherwise it is ``tie`` (``raw`` of the verdict keeps ``label_first``, the
verdict in the original order, ``text_swapped`` and ``label_swapped``, mapped back to the response's side).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alignbench.backends.base import Backend, BackendOptions, load_backend
from alignbench.backends.cache import cache_setting
from alignbench.errors import UsageError
from alignbench.judges._verdicts import Scale, VerdictError, parse_aspects, parse_verdict
from alignbench.judges.base import Judge, error_message
from alignbench.registry import judge_kinds
from alignbench.types import GenerationParams, GenerationRequest, JudgeInput, Judgment, prompt_text


def model_answers(backend: Any, reqs: list[GenerationRequest]) -> list[str | BaseException]:
    """One model's outputs for ``reqs`` in order, a failed request's exception in its place
    (``CachedBackend.generate_each``: one bad prompt fails only its own verdict)."""
    return [g if isinstance(g, BaseException) else g.text for g in backend.generate_each(reqs)]


@judge_kinds.register("llm_rubric")
class LLMRubricJudge(Judge):
    kind = "llm_rubric"
    batch_size = 64
    default_scale: Any = "1-5"

    def __init__(self, name: str | None = None, models: list[str] | None = None, model_args: dict[str, Any] | None = None,
                 template: str | None = None, base_dir: str | None = None, scale: Any = None,
                 aspects: list[str] | None = None, aggregation: str = "majority", system: str | None = None,
                 max_new_tokens: int = 512, temperature: float = 0.0, concurrency: int = 8, cache: bool | str = True,
                 models_env: str | None = None, **params: Any) -> None:
        super().__init__(name, **params)
        env = os.environ.get(models_env, "").strip() if models_env else ""
        self.models = [m.strip() for m in env.split(",") if m.strip()] if env else list(models or [])
        if not self.models:
            hint = f"set {models_env}=openai:MODEL1,openai:MODEL2,... or " if models_env else ""
            raise UsageError(f"judge {self.name!r} has no judge models: {hint}list backend specs under params.models in a copy of its YAML")
        if not all(isinstance(m, str) and m for m in self.models):
            raise TypeError("'models' must be a non-empty list of backend specs, e.g. [openai:judge-a, openai:judge-b]")
        if template is None:
            raise TypeError("'template' is required (a Jinja2 file relative to the judge's YAML folder)")
        if aggregation not in ("majority", "mean"):
            raise TypeError(f"aggregation must be 'majority' or 'mean', got {aggregation!r}")
        self.scale = Scale.parse(self.default_scale if scale is None else scale)
        if aggregation == "mean" and any(s is None for s in self.scale.scores):
            raise TypeError("aggregation 'mean' needs a numeric scale ('1-5' or {label: score})")
        self.aspects = list(aspects or [])
        self.aggregation = aggregation
        self.system = system
        self.params_gen = GenerationParams(max_new_tokens=int(max_new_tokens), temperature=float(temperature))
        self.concurrency = int(concurrency)
        self.cache = cache_setting(cache)
        self.model_args = self._per_model_args(model_args or {})
        # a model listed twice (e.g. with different args) still gets a distinct judge id
        counts: Counter[str] = Counter()
        self.judge_ids = []
        for m in self.models:
            counts[m] += 1
            self.judge_ids.append(m if counts[m] == 1 else f"{m}#{counts[m]}")
        self.template_path = Path(base_dir or ".") / template
        self._template = self._load_template()
        self._backends: list[Any] | None = None
        self._caches: list[Any] = []

    # setup --------------------------------------------------------------------------------------
    def _per_model_args(self, model_args: dict[str, Any]) -> list[dict[str, Any]]:
        if model_args and all(k in self.models for k in model_args) and all(isinstance(v, dict) for v in model_args.values()):
            return [dict(model_args.get(m) or {}) for m in self.models]
        return [dict(model_args) for _ in self.models]

    def _load_template(self) -> Any:
        import jinja2

        try:
            text = self.template_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TypeError(f"template {str(self.template_path)!r}: cannot read ({exc.strerror or exc})") from None
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        try:
            return env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TypeError(f"template {str(self.template_path)!r} line {exc.lineno}: {exc.message}") from None

    @property
    def model_calls(self) -> int:
        """Calls the judge models answered (cache hits not counted)."""
        return sum(b.model_calls for b in self._backends or [])

    def backends(self) -> list[Any]:
        """The judge models' backends (cached through the generation cache unless ``cache: false``), built once."""
        if self._backends is None:
            from alignbench.backends.cache import CachedBackend, GenerationCache, cache_file

            built: list[Any] = []
            try:
                for spec, args in zip(self.models, self.model_args):
                    b: Backend = load_backend(spec, args, BackendOptions(concurrency=self.concurrency))
                    cache = GenerationCache(path) if (path := cache_file(self.cache)) is not None else None
                    if cache is not None:
                        self._caches.append(cache)
                    built.append(CachedBackend(b, cache))
            except Exception:
                for b in built:
                    b.backend.close()
                raise
            self._backends = built
        return self._backends

    # prompts ------------------------------------------------------------------------------------
    def context(self, it: JudgeInput) -> dict[str, Any]:
        meta = dict(it.meta or {})
        refs = [str(r) for r in (it.references or [])]
        constraints = meta.get("constraints")
        if constraints is None:
            constraints = refs
        elif not isinstance(constraints, list):
            constraints = [constraints]
        constraints = [c.get("text") or str(c) if isinstance(c, dict) else str(c) for c in constraints]
        return {"prompt": prompt_text(it.prompt), "response": it.response or "", "references": refs,
                "reference": refs[0] if refs else None, "meta": meta, "category": it.category, "constraints": constraints,
                "aspects": self.aspects, "scale": self.scale.describe(), "labels": list(self.scale.labels)}

    def render(self, ctx: dict[str, Any]) -> str:
        import jinja2

        try:
            return self._template.render(**ctx)
        except jinja2.UndefinedError as exc:
            raise UsageError(f"template {self.template_path}: {exc.message}") from None

    def request(self, text: str, it: JudgeInput) -> GenerationRequest:
        msgs = ([{"role": "system", "content": self.system}] if self.system else []) + [{"role": "user", "content": text}]
        return GenerationRequest(prompt=msgs, params=self.params_gen, task=f"judge:{self.name}", sample_id=it.sample_id)

    def prompts(self, it: JudgeInput) -> list[str]:
        """The judge prompt(s) of one item: one for a rubric, two (original, swapped) for swapped pairwise."""
        return [self.render(self.context(it))]

    # calls --------------------------------------------------------------------------------------
    def ask(self, texts: list[str], owners: list[JudgeInput]) -> list[list[str | BaseException]]:
        """Send every prompt to every model at once; per model, the outputs in order (a failed request's
        exception in its place, see ``model_answers``)."""
        backends = self.backends()
        reqs = [self.request(t, it) for t, it in zip(texts, owners)]

        with ThreadPoolExecutor(max_workers=len(backends)) as pool:
            return list(pool.map(lambda b: model_answers(b, reqs), backends))

    # parsing and aggregation --------------------------------------------------------------------
    def verdict(self, judge_id: str, outputs: list[str | BaseException]) -> dict[str, Any]:
        out = outputs[0]
        v: dict[str, Any] = {"judge": judge_id, "label": None, "score": None, "text": None, "parse_error": None, "error": None}
        if isinstance(out, BaseException):
            v["error"] = error_message(out)
            return v
        v["text"] = out
        try:
            if self.aspects:
                per = parse_aspects(out, self.aspects, self.scale)
                v["aspects"] = {a: {"label": lab, "score": self.scale.score(lab)} for a, lab in per.items()}
                scores = [x["score"] for x in v["aspects"].values() if x["score"] is not None]
                v["score"] = sum(scores) / len(scores) if len(scores) == len(per) else None
            else:
                v["label"] = parse_verdict(out, self.scale)
                v["score"] = self.scale.score(v["label"])
        except VerdictError as exc:
            v["parse_error"] = str(exc)
        return v

    def aggregate(self, labels: list[str], scores: list[float | None]) -> tuple[str | None, float | None, bool]:
        """(majority label, aggregate score, tie?) of parsed verdicts."""
        if not labels:
            return None, None, False
        counts = Counter(labels)
        top = max(counts.values())
        tied = [lab for lab in self.scale.labels if counts.get(lab) == top]
        label = tied[0]
        if self.aggregation == "majority":
            score = self.scale.score(label)
        else:
            nums = [s for s in scores if s is not None]
            score = sum(nums) / len(nums) if nums else None
        return label, score, len(tied) > 1

    def judgment(self, verdicts: list[dict[str, Any]]) -> Judgment:
        ok = [v for v in verdicts if v["parse_error"] is None and v["error"] is None]
        raw: dict[str, Any] = {"verdicts": verdicts, "parse_failures": sum(v["parse_error"] is not None for v in verdicts),
                               "backend_errors": sum(v["error"] is not None for v in verdicts), "n_judges": len(verdicts),
                               "aggregation": self.aggregation, "tie": False}
        if self.aspects:
            per: dict[str, Any] = {}
            for a in self.aspects:
                lab, sc, tie = self.aggregate([v["aspects"][a]["label"] for v in ok], [v["aspects"][a]["score"] for v in ok])
                per[a] = {"label": lab, "score": sc, "n": len(ok), "tie": tie}
            raw["aspects"] = per
            label = None
            vals = [p["score"] for p in per.values() if p["score"] is not None]
            score = sum(vals) / len(vals) if ok and len(vals) == len(per) else None
        else:
            label, score, raw["tie"] = self.aggregate([v["label"] for v in ok], [v["score"] for v in ok])
        if not ok:
            why = next((v["parse_error"] or v["error"] for v in verdicts), "no judge")
            return Judgment(raw=raw, error=f"no usable verdict from {len(verdicts)} judge(s) "
                                           f"({raw['parse_failures']} unparsable, {raw['backend_errors']} failed): {why}")
        return Judgment(label=label, score=score, raw=raw)

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        per_item = [self.prompts(it) for it in items]
        texts = [t for ps in per_item for t in ps]
        owners = [it for it, ps in zip(items, per_item) for _ in ps]
        answers = self.ask(texts, owners)  # [model][prompt]
        out = []
        pos = 0
        for ps in per_item:
            verdicts = [self.verdict(jid, answers[m][pos:pos + len(ps)]) for m, jid in enumerate(self.judge_ids)]
            pos += len(ps)
            out.append(self.judgment(verdicts))
        return out

    checks_a_judgment = False  # a judgment is a call to every juror: ``load`` builds them and asks their servers instead

    def load(self) -> None:
        """Build every juror's backend and ask it for its model's fingerprint (a server answers its model list; a
        local model's files are read), so a juror that cannot be built or reached stops a run before it starts."""
        from alignbench.errors import AlignbenchError

        for jid, b in zip(self.judge_ids, self.backends()):
            try:
                b.backend.fingerprint()
            except AlignbenchError as exc:
                msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise UsageError(f"judge {self.name!r}: juror {jid!r} cannot be reached ({msg})") from None

    def close(self) -> None:
        for b in self._backends or []:
            b.backend.close()
        for c in self._caches:
            c.close()
        self._backends, self._caches = None, []


PAIR_SWAP = {"A": "B", "B": "A", "tie": "tie"}


@judge_kinds.register("llm_pairwise")
class LLMPairwiseJudge(LLMRubricJudge):
    kind = "llm_pairwise"
    default_scale = {"A": 1.0, "B": 0.0, "tie": 0.5}

    def __init__(self, name: str | None = None, position_swap: bool = True, baseline_field: str | None = None,
                 base_dir: str | None = None, **params: Any) -> None:
        super().__init__(name, base_dir=base_dir, **params)
        if set(self.scale.labels) != {"A", "B", "tie"}:
            raise TypeError(f"llm_pairwise scale must have the labels A, B and tie, got {list(self.scale.labels)}")
        if self.aspects:
            raise TypeError("llm_pairwise does not take 'aspects'")
        self.position_swap = bool(position_swap)
        self.baseline_field = baseline_field
        self.needs_references = baseline_field is None

    def baseline(self, it: JudgeInput) -> str:
        if self.baseline_field is None:
            return str((it.references or [""])[0])
        value = (it.meta or {}).get(self.baseline_field)
        if value is None:
            raise UsageError(f"judge {self.name!r}: sample {it.sample_id!r} has no meta field {self.baseline_field!r}")
        return str(value)

    def prompts(self, it: JudgeInput) -> list[str]:
        ctx = self.context(it)
        base = self.baseline(it)
        out = [self.render({**ctx, "response_a": ctx["response"], "response_b": base})]
        if self.position_swap:
            out.append(self.render({**ctx, "response_a": base, "response_b": ctx["response"]}))
        return out

    def verdict(self, judge_id: str, outputs: list[str | BaseException]) -> dict[str, Any]:
        v = super().verdict(judge_id, outputs[:1])
        if not self.position_swap:
            return v
        w = super().verdict(judge_id, outputs[1:2])
        v["text_swapped"] = w["text"]
        v["label_swapped"] = PAIR_SWAP[w["label"]] if w["label"] is not None else None
        if w["error"] is not None and v["error"] is None:
            v["error"] = f"swapped order: {w['error']}"
        elif w["parse_error"] is not None and v["error"] is None:
            v["parse_error"] = (f"{v['parse_error']}; " if v["parse_error"] else "") + f"swapped order: {w['parse_error']}"
        v["label_first"] = v["label"]  # the verdict in the original order, before the swap decides
        if v["parse_error"] is None and v["error"] is None:
            v["consistent"] = v["label"] == v["label_swapped"]
            if not v["consistent"]:
                v["label"] = "tie"
            v["score"] = self.scale.score(v["label"])
        else:
            v["label"] = v["score"] = None
        return v
