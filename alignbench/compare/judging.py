"""Judging pairs of responses: a pairwise LLM jury (``llm_pairwise``) or a reward model (``reward_model``).

Each judged unit becomes one ``pairs.jsonl`` line::

    {"a": RUN, "b": RUN, "task", "sample_id", "category", "prompt", "response_a", "response_b",
     "epoch_a"?, "epoch_b"?, "winner": "a" | "b" | "tie" | null, "score": 1 | 0.5 | 0 | null (a's),
     "verdicts": [{"judge": JUROR, "first": "A"|"B"|"tie"|null, "swapped": ..., "label": ..., "error": ...,
                   "text": OUTPUT, "text_swapped": OUTPUT}],
     "scores": {"a": REWARD, "b": REWARD} (reward model), "disagree": bool, "error": null | "why"}

Labels are on a's side: ``A`` = a's response is better. A jury sees every pair in both orders (the
``llm_pairwise`` position swap, forced on here): ``first`` is a juror's verdict with a's response shown
first, ``swapped`` its verdict with the two exchanged (mapped back to a's side), ``label`` the verdict
that counts (the two agree, else ``tie``); ``winner`` is the jury's majority. A reward model scores each
response once (the generation cache keeps the rewards); a wins when its reward is higher by more than
the tie margin. ``disagree``: the jurors' verdicts are not all the same.
"""

from __future__ import annotations

from typing import Any

from alignbench.compare.inputs import CompareRun, Unit
from alignbench.compare.pairs_file import SCORE
from alignbench.errors import UsageError
from alignbench.judges.base import Judge
from alignbench.types import JudgeInput, Judgment, prompt_text

WINNER = {"A": "a", "B": "b", "tie": "tie"}
BASELINE_FIELD = "response_b"


def pairwise_kind(name: str, kind: str, cls: type) -> str:
    """``jury`` or ``reward``: how a judge of class ``cls`` compares two responses; one that cannot is a UsageError."""
    if getattr(cls, "pairwise_by_score", False):
        return "reward"
    if kind == "llm_pairwise":
        return "jury"
    raise UsageError(f"judge {name!r} (kind {kind}) is not pairwise: compare takes an llm_pairwise jury "
                     "(e.g. jury_pairwise) or a reward_model judge (e.g. skywork_reward)")


def compare_kind(judge: Judge) -> str:
    return pairwise_kind(judge.name, judge.kind, type(judge))


def prepare(judge: Judge) -> str:
    """Point a pairwise jury at the other run's response and make it judge both orders."""
    kind = compare_kind(judge)
    if kind == "jury":
        judge.baseline_field = BASELINE_FIELD  # type: ignore[attr-defined]
        judge.needs_references = False  # type: ignore[misc]
        judge.position_swap = True  # type: ignore[attr-defined]
    return kind


def _line(unit: Unit, ra: dict[str, Any], rb: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"a": unit.a, "b": unit.b, "task": unit.task, "sample_id": unit.sample_id, "category": ra.get("category"),
                            "prompt": prompt_text(ra.get("prompt") or ""), "response_a": ra["response"], "response_b": rb["response"]}
    for side, r in (("a", ra), ("b", rb)):
        if r.get("epoch") is not None:
            line[f"epoch_{side}"] = r["epoch"]
    return line


def _jury_line(line: dict[str, Any], jd: Judgment) -> dict[str, Any]:
    raw = jd.raw if isinstance(jd.raw, dict) else {}
    verdicts = []
    for v in raw.get("verdicts") or []:
        verdicts.append({"judge": v.get("judge"), "first": v.get("label_first"), "swapped": v.get("label_swapped"),
                         "label": v.get("label"), "error": v.get("error") or v.get("parse_error"),
                         "text": v.get("text"), "text_swapped": v.get("text_swapped")})
    line["verdicts"] = verdicts
    line["winner"] = None if jd.error else WINNER.get(jd.label)
    line["score"] = None if line["winner"] is None else SCORE[line["winner"]]
    line["disagree"] = len({v["label"] for v in verdicts if v["label"] is not None}) > 1
    line["error"] = jd.error or (None if line["winner"] else f"unexpected label {jd.label!r}")
    return line


def reward_winner(ra: float, rb: float, margin: float) -> str:
    d = ra - rb
    return "tie" if abs(d) <= margin else "a" if d > 0 else "b"


class PairJudging:
    """Judges units of runs with one judge; ``judge_units`` returns their pairs.jsonl lines in order."""

    def __init__(self, judge: Judge, runs: list[CompareRun], tie_margin: float | None = None) -> None:
        self.judge = judge
        self.kind = prepare(judge)
        self.runs = {r.label: r for r in runs}
        self.tie_margin = float(getattr(judge, "tie_margin", 0.0) if tie_margin is None else tie_margin)
        self._rewards: dict[tuple[str, str, str], Judgment] = {}

    def _records(self, u: Unit) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.runs[u.a].records[(u.task, u.sample_id)], self.runs[u.b].records[(u.task, u.sample_id)]

    def judge_units(self, todo: list[Unit]) -> list[dict[str, Any]]:
        return self._jury(todo) if self.kind == "jury" else self._reward(todo)

    def _jury(self, todo: list[Unit]) -> list[dict[str, Any]]:
        items, lines = [], []
        for u in todo:
            ra, rb = self._records(u)
            items.append(JudgeInput(prompt=ra.get("prompt") or "", response=ra["response"], references=None, sample_id=u.sample_id,
                                    category=ra.get("category"), meta={**(ra.get("meta") or {}), BASELINE_FIELD: rb["response"]}))
            lines.append(_line(u, ra, rb))
        return [_jury_line(line, jd) for line, jd in zip(lines, self.judge.judge(items))]

    def _reward(self, todo: list[Unit]) -> list[dict[str, Any]]:
        need: dict[tuple[str, str, str], dict[str, Any]] = {}
        for u in todo:
            for run, rec in zip((u.a, u.b), self._records(u)):
                k = (run, u.task, u.sample_id)
                if k not in self._rewards:
                    need[k] = rec
        keys = list(need)
        items = [JudgeInput(prompt=need[k].get("prompt") or "", response=need[k]["response"], sample_id=k[2],
                            category=need[k].get("category"), meta=dict(need[k].get("meta") or {})) for k in keys]
        self._rewards.update(zip(keys, self.judge.judge(items)))
        out = []
        for u in todo:
            ra, rb = self._records(u)
            line = _line(u, ra, rb)
            ja, jb = self._rewards[(u.a, u.task, u.sample_id)], self._rewards[(u.b, u.task, u.sample_id)]
            line["scores"] = {"a": ja.score, "b": jb.score}
            line["verdicts"] = []
            err = ja.error or jb.error
            line["error"] = None if err is None else f"{u.a if ja.error else u.b}: {err}"
            line["winner"] = None if err else reward_winner(float(ja.score), float(jb.score), self.tie_margin)  # type: ignore[arg-type]
            line["score"] = None if line["winner"] is None else SCORE[line["winner"]]
            line["disagree"] = False
            out.append(line)
        return out
