"""``cdct_jury``: the CDCT jury (rb125/cdct_framework, ``src/llm_jury.py``, commit 8ed2c57), reproduced.

Each judge model is asked three times per response, once per axis (CC constraint compliance, SA
semantic accuracy, FC functional completeness), with the authors' prompt
(``judges/templates/cdct_jury.j2``), and must answer ``{"score": <float 0-1>}`` (a fenced json block is
accepted, as they accept it). As in their code:

* the prompt states the compression level ``c`` (``meta.level``; 0 = most compressed, 1 = full):
  c < 0.3 "extreme" (under 20 words), c < 0.6 "moderate" (under 50 words), else "minimal" (no
  limit), with the response's word count against that limit;
* each judge position has a role (``roles``, default their three: SA-, CC- and FC-primary) shown in
  the prompt; a judge whose any axis fails to parse is left out of the consensus;
* consensus CC and SA = means weighted by position (``weights``, default CC [0.25, 0.5, 0.25],
  SA [0.5, 0.25, 0.25]; a position without a weight does not count), FC = the plain mean;
  ``agreement_score`` = max(0, 1 - 2 * mean of the three axes' population std over judges); each of
  these and the stds rounded to 4 decimals, as their ``_compute_consensus`` stores them (so the
  scores below are computed from the rounded consensus, as theirs are).

``score`` = ``cdct_score``: their per-level score as ``src/experiment_jury.py`` computes it:
``cc = consensus.get("CC") or consensus.get("FAR")``, the same for SA (``"SAS"``), then 0.4 CC + 0.4 SA
+ 0.2 FC when both are present (FC 0.5 when missing), else 0.0. Python's ``or`` takes a consensus CC or
SA of exactly 0.0 for a missing one, so such a response scores 0.0 whatever its other axes. This looks
like an accident (the ``or`` is there to fall back to the axis names of their earlier jury, FAR and
SAS, "for backwards compatibility"), but it is what their stored scores and published tables were
computed with. ``cdct_score_weighted`` is the plain arithmetic 0.4 CC + 0.4 SA + 0.2 FC (None without
CC or SA). When no judge gave all three axes the judgment is an error and has no score, where the
authors record 0.0.
``raw`` = ``{"verdicts": [{"judge", "CC", "SA", "FC", "texts", "parse_error", "error"}],
"consensus": {"CC", "SA", "FC", "agreement_score", "judge_count"}, "parse_failures", "backend_errors",
"n_judges"}``. Prompt fields: ``meta.context`` (the text the subject model was given; default the
prompt), ``meta.question`` (default the prompt), ``meta.expected_keywords`` (optional list).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from alignbench.judges.base import error_message
from alignbench.judges.jury import LLMRubricJudge, model_answers
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput, Judgment, prompt_text

AXES = ("CC", "SA", "FC")
ROLES = [  # the authors' jury, in their order
    {"display_name": "Qwen3 32B (Semantic Accuracy)", "axis": "semantic_accuracy"},
    {"display_name": "GLM 5 (Constraint Compliance)", "axis": "constraint_compliance"},
    {"display_name": "NVIDIA Nemotron Super 3 120B (Functional Completeness)", "axis": "functional_completeness"},
]
NO_ROLE = {"display_name": "General evaluation", "axis": "general evaluation"}
WEIGHTS = {"CC": [0.25, 0.5, 0.25], "SA": [0.5, 0.25, 0.25]}
SCORE_WEIGHTS = {"CC": 0.4, "SA": 0.4, "FC": 0.2}
_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def parse_score(text: str) -> float:
    """The ``score`` of a ``{"score": x}`` answer (or of the first fenced json block); ValueError otherwise."""
    m = _FENCED.search(text)
    body = m.group(1) if m else text
    try:
        value = json.loads(body.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(value, dict) or value.get("score") is None:
        raise ValueError("no 'score' key")
    try:
        return float(value["score"])
    except (TypeError, ValueError):
        raise ValueError(f"score {value['score']!r} is not a number") from None


def level_band(c: float) -> tuple[str, int | None]:
    """(band of the prompt, expected word limit) of compression level c."""
    if c < 0.3:
        return "extreme", 20
    if c < 0.6:
        return "moderate", 50
    return "minimal", None


def violation_note(response_words: int, limit: int | None) -> str:
    if not limit:
        return "No strict length limit at this compression level"
    ratio = response_words / limit
    if ratio > 2.0:
        return f"⚠ Response is {ratio:.1f}× the expected length"
    if ratio > 1.5:
        return f"⚠ Response exceeds expected length by {(ratio - 1) * 100:.0f}%"
    return "✓ Response length is appropriate"


def consensus(verdicts: list[dict[str, Any]], weights: dict[str, list[float]]) -> dict[str, Any] | None:
    """The authors' consensus over the judges with all three axes parsed; None when there is none."""
    valid = [(i, v) for i, v in enumerate(verdicts) if v["error"] is None and v["parse_error"] is None]
    if not valid:
        return None

    def weighted(axis: str) -> float | None:
        w = weights.get(axis) or []
        pairs = [(w[i], v[axis]) for i, v in valid if i < len(w)]
        total = sum(x for x, _ in pairs)
        return sum(x * s for x, s in pairs) / total if total else None

    def r4(x: float | None) -> float | None:
        return None if x is None else round(float(x), 4)

    stds = [float(np.std([v[a] for _, v in valid])) if len(valid) > 1 else 0.0 for a in AXES]
    return {"CC": r4(weighted("CC")), "SA": r4(weighted("SA")), "FC": r4(float(np.mean([v["FC"] for _, v in valid]))),
            "agreement_score": r4(min(1.0, max(0.0, 1.0 - 2.0 * sum(stds) / 3.0))), "judge_count": len(valid),
            **{f"judge_std_{a}": r4(s) for a, s in zip(AXES, stds)}}


def cdct_score(cons: dict[str, Any]) -> float:
    """experiment_jury.py's per-level score, its rule kept: a CC or SA that is missing *or 0.0* gives 0.0."""
    cc_or_far = cons.get("CC") or cons.get("FAR")
    sa_or_sas = cons.get("SA") or cons.get("SAS")
    if cc_or_far is None or sa_or_sas is None:
        return 0.0
    fc = cons.get("FC", 0.5)
    fc = 0.5 if fc is None else fc
    return cc_or_far * SCORE_WEIGHTS["CC"] + sa_or_sas * SCORE_WEIGHTS["SA"] + fc * SCORE_WEIGHTS["FC"]


def cdct_score_weighted(cons: dict[str, Any]) -> float | None:
    """0.4 CC + 0.4 SA + 0.2 FC as plain arithmetic (a CC of 0.0 counts as 0.0); FC 0.5 when missing."""
    if cons.get("CC") is None or cons.get("SA") is None:
        return None
    fc = cons["FC"] if cons.get("FC") is not None else 0.5
    return SCORE_WEIGHTS["CC"] * cons["CC"] + SCORE_WEIGHTS["SA"] * cons["SA"] + SCORE_WEIGHTS["FC"] * fc


@judge_kinds.register("cdct_jury")
class CdctJuryJudge(LLMRubricJudge):
    kind = "cdct_jury"
    default_scale = "0-1"  # unused: verdicts are JSON scores

    def __init__(self, name: str | None = None, roles: list[dict[str, str]] | None = None,
                 weights: dict[str, list[float]] | None = None, level_field: str = "level", base_dir: str | None = None,
                 **params: Any) -> None:
        params.setdefault("template", "templates/cdct_jury.j2")
        params.setdefault("max_new_tokens", 64)
        super().__init__(name, base_dir=base_dir, **params)
        self.roles = [dict(r) for r in (ROLES if roles is None else roles)]
        self.weights = {k: [float(x) for x in v] for k, v in (WEIGHTS if weights is None else weights).items()}
        self.level_field = level_field

    def role(self, position: int) -> dict[str, str]:
        return {**NO_ROLE, **self.roles[position]} if position < len(self.roles) else dict(NO_ROLE)

    def axis_prompt(self, it: JudgeInput, position: int, axis: str) -> str:
        meta = it.meta or {}
        c = float(meta.get(self.level_field, 1.0))
        band, limit = level_band(c)
        context = str(meta.get("context") or prompt_text(it.prompt))
        response = it.response or ""
        keywords = meta.get("expected_keywords") or []
        return self.render({**self.role(position), "band": band, "level_pct": f"{c:.0%}",
                            "context_words": len(context.split()), "response_words": len(response.split()),
                            "violation_note": violation_note(len(response.split()), limit), "context": context,
                            "keywords_section": f"\nExpected keywords: {', '.join(map(str, keywords))}" if keywords else "",
                            "question": str(meta.get("question") or prompt_text(it.prompt)), "response": response,
                            "metric": axis})

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        backends = self.backends()

        def run(position: int) -> list[str | BaseException]:
            texts = [self.axis_prompt(it, position, a) for it in items for a in AXES]
            reqs = [self.request(t, it) for t, it in zip(texts, (it for it in items for _ in AXES))]
            return model_answers(backends[position], reqs)

        with ThreadPoolExecutor(max_workers=len(backends)) as pool:
            answers = list(pool.map(run, range(len(backends))))
        out = []
        for k in range(len(items)):
            verdicts = [self.axis_verdict(jid, answers[m][k * len(AXES):(k + 1) * len(AXES)])
                        for m, jid in enumerate(self.judge_ids)]
            out.append(self.cdct_judgment(verdicts))
        return out

    def axis_verdict(self, judge_id: str, outputs: list[str | BaseException]) -> dict[str, Any]:
        v: dict[str, Any] = {"judge": judge_id, "CC": None, "SA": None, "FC": None, "texts": {}, "parse_error": None, "error": None}
        problems = []
        for axis, out in zip(AXES, outputs):
            if isinstance(out, BaseException):
                v["error"] = error_message(out)
                continue
            v["texts"][axis] = out
            try:
                v[axis] = parse_score(out)
            except ValueError as exc:
                problems.append(f"{axis}: {exc}")
        v["parse_error"] = "; ".join(problems) or None
        return v

    def cdct_judgment(self, verdicts: list[dict[str, Any]]) -> Judgment:
        raw: dict[str, Any] = {"verdicts": verdicts, "parse_failures": sum(v["parse_error"] is not None for v in verdicts),
                               "backend_errors": sum(v["error"] is not None for v in verdicts), "n_judges": len(verdicts)}
        cons = consensus(verdicts, self.weights)
        raw["consensus"] = cons
        if cons is None:
            why = next((v["parse_error"] or v["error"] for v in verdicts), "no judge")
            return Judgment(raw=raw, error=f"no judge with all three axes from {len(verdicts)} judge(s) "
                                           f"({raw['parse_failures']} unparsable, {raw['backend_errors']} failed): {why}")
        return Judgment(score=cdct_score(cons), raw=raw)
