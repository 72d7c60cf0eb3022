"""LLM juries: strict verdict parsing, aggregation, raw contract, and several judges served by a real
local OpenAI-compatible server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from alignbench.backends.base import Backend
from alignbench.errors import BackendError, UsageError
from alignbench.judges._verdicts import Scale, VerdictError, parse_aspects, parse_verdict
from alignbench.judges.catalog import JudgeCatalog, builtin_judges
from alignbench.registry import judge_kinds
from alignbench.stats.jury_agreement import jury_agreement
from alignbench.types import Generation, JudgeInput, prompt_text

from openai_server import OpenAIServer, Reply

FIVE = Scale.parse("1-5")
YESNO = Scale.parse({"yes": 1.0, "no": 0.0})


@pytest.mark.parametrize("text,scale,label", [
    ("Reasoning...\nVERDICT: 4", FIVE, "4"), ("**VERDICT:** **5**", FIVE, "5"), ("VERDICT: 3/5", FIVE, "3"),
    ("VERDICT: [2].", FIVE, "2"), ('{"verdict": 1}', FIVE, "1"), ('```json\n{"Verdict": "yes"}\n```', YESNO, "yes"),
    ("fine\nverdict: YES", YESNO, "yes"), ("VERDICT: no\nVERDICT: no", YESNO, "no"),
])
def test_parse_verdict_accepts(text: str, scale: Scale, label: str) -> None:
    assert parse_verdict(text, scale) == label


@pytest.mark.parametrize("text,scale,why", [
    ("I think it is a 4.", FIVE, "no 'VERDICT"), ("VERDICT: 6", FIVE, "not on the scale 1-5"),
    ("VERDICT: 4.5", FIVE, "not on the scale"), ("VERDICT: 4/10", FIVE, "not on the scale"),
    ("VERDICT: 4\nVERDICT: 2", FIVE, "conflicting"), ("VERDICT: maybe", YESNO, "not on the scale yes|no"),
    ("", YESNO, "empty"), ('{"answer": "yes"}', YESNO, "without a 'verdict' key"), ('{"verdict": true}', YESNO, "not on the scale"),
])
def test_parse_verdict_rejects(text: str, scale: Scale, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_verdict(text, scale)


def test_parse_aspects_lines_and_json() -> None:
    aspects = ["helpfulness", "clarity"]
    assert parse_aspects("x\nVERDICT helpfulness: 4\nVERDICT **Clarity**: 2", aspects, FIVE) == {"helpfulness": "4", "clarity": "2"}
    assert parse_aspects('{"helpfulness": {"reason": "ok", "score": 5}, "clarity": 3}', aspects, FIVE) == {"helpfulness": "5", "clarity": "3"}
    with pytest.raises(VerdictError, match="no verdict for aspect"):
        parse_aspects("VERDICT helpfulness: 4", aspects, FIVE)
    with pytest.raises(VerdictError, match="conflicting"):
        parse_aspects("VERDICT helpfulness: 4\nVERDICT clarity: 2\nVERDICT clarity: 3", aspects, FIVE)
    with pytest.raises(VerdictError, match="not on the scale"):
        parse_aspects("VERDICT helpfulness: 4\nVERDICT clarity: 9", aspects, FIVE)


def test_scale_specs() -> None:
    assert Scale.parse({"min": 1, "max": 3}).labels == ("1", "2", "3")
    assert Scale.parse(["A", "B"]).scores == (None, None)
    with pytest.raises(TypeError, match="quote yes/no"):
        Scale.parse({True: 1.0, False: 0.0})
    with pytest.raises(TypeError, match="LOW-HIGH"):
        Scale.parse("five")


# a scripted in-process backend -----------------------------------------------------------------------

class Scripted(Backend):
    name = "scripted"

    def __init__(self, target: str, options=None, **model_args: Any) -> None:
        super().__init__(target, options, **model_args)
        self.script: Callable[[str, str], str] = model_args.get("script") or (lambda m, p: "VERDICT: yes")

    def generate(self, requests):
        if self.target == "broken":
            raise BackendError("scripted backend 'broken' is down")
        return [Generation(text=self.script(self.target, prompt_text(r.prompt))) for r in requests]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    import alignbench.judges.jury as jury

    made: list[Scripted] = []

    def load(spec, model_args=None, options=None):
        b = Scripted(spec.partition(":")[2], options, **(model_args or {}))
        made.append(b)
        return b

    monkeypatch.setattr(jury, "load_backend", load)
    return made


TEMPLATES = Path(__file__).resolve().parent.parent / "judges"


def rubric(**params: Any):
    params.setdefault("template", "templates/constraints.j2")
    params.setdefault("base_dir", str(TEMPLATES))
    params.setdefault("cache", False)
    return judge_kinds.get("llm_rubric")(name="jury", **params)


def items(n: int = 1) -> list[JudgeInput]:
    return [JudgeInput(f"Question {i}?", f"Answer {i}.", meta={"constraints": ["Be brief."]}, sample_id=str(i)) for i in range(n)]


def test_majority_label_mean_score_and_raw_contract(scripted) -> None:
    answers = {"a": "VERDICT: yes", "b": "VERDICT: no", "c": "ok\nVERDICT: yes"}
    j = rubric(models=["s:a", "s:b", "s:c"], scale={"yes": 1.0, "no": 0.0}, aggregation="mean",
               model_args={"script": lambda m, p: answers[m]})
    out = j.judge(items(2))
    for jd in out:
        assert jd.error is None and jd.label == "yes" and jd.score == pytest.approx(2 / 3)
        assert jd.raw["parse_failures"] == 0 and jd.raw["n_judges"] == 3
        assert [v["judge"] for v in jd.raw["verdicts"]] == ["s:a", "s:b", "s:c"]
        assert [v["label"] for v in jd.raw["verdicts"]] == ["yes", "no", "yes"]
        assert [v["score"] for v in jd.raw["verdicts"]] == [1.0, 0.0, 1.0]
        assert all(set(v) >= {"judge", "label", "score", "text", "parse_error"} for v in jd.raw["verdicts"])
    # majority aggregation: score of the majority label
    j = rubric(models=["s:a", "s:b", "s:c"], scale={"yes": 1.0, "no": 0.0}, model_args={"script": lambda m, p: answers[m]})
    assert j.judge(items())[0].score == 1.0


def test_parse_failures_are_counted_not_dropped(scripted) -> None:
    answers = {"a": "VERDICT: no", "b": "I refuse to give a verdict", "c": "VERDICT: yes", "d": "VERDICT: no"}
    j = rubric(models=["s:a", "s:b", "s:c", "s:d"], scale={"yes": 1.0, "no": 0.0}, aggregation="mean",
               model_args={"script": lambda m, p: answers[m]})
    jd = j.judge(items())[0]
    assert jd.raw["parse_failures"] == 1
    bad = jd.raw["verdicts"][1]
    assert bad["label"] is None and bad["score"] is None and "no 'VERDICT" in bad["parse_error"]
    assert bad["text"] == "I refuse to give a verdict"
    assert jd.label == "no" and jd.score == pytest.approx(1 / 3)  # mean over the 3 parsed verdicts


def test_all_failed_sets_error_and_keeps_raw(scripted) -> None:
    j = rubric(models=["s:a", "s:broken"], model_args={"script": lambda m, p: "no verdict here"}, scale={"yes": 1, "no": 0})
    jd = j.judge(items())[0]
    assert jd.label is None and jd.score is None
    assert "no usable verdict from 2 judge(s) (1 unparsable, 1 failed)" in jd.error
    assert jd.raw["parse_failures"] == 1 and jd.raw["backend_errors"] == 1
    assert "is down" in jd.raw["verdicts"][1]["error"]


def test_tie_goes_to_first_scale_label(scripted) -> None:
    answers = {"a": "VERDICT: no", "b": "VERDICT: yes"}
    j = rubric(models=["s:a", "s:b"], scale={"yes": 1.0, "no": 0.0}, model_args={"script": lambda m, p: answers[m]})
    jd = j.judge(items())[0]
    assert jd.label == "yes" and jd.raw["tie"] is True


def test_multi_aspect_rubric(scripted) -> None:
    def script(m: str, p: str) -> str:
        base = {"a": 4, "b": 2, "c": 4}[m]
        return "\n".join(f"VERDICT {a}: {base + (1 if a == 'safety' else 0)}"
                         for a in ["helpfulness", "clarity", "factuality", "depth", "engagement", "safety"])

    j = builtin_judges().config("jury_rubric")
    params = dict(j.params, models=["s:a", "s:b", "s:c"], model_args={"script": script}, cache=False, models_env=None,
                  base_dir=str(TEMPLATES))
    judge = judge_kinds.get("llm_rubric")(name="jury_rubric", **params)
    jd = judge.judge(items())[0]
    assert jd.error is None and jd.label is None
    assert jd.raw["aspects"]["helpfulness"] == {"label": "4", "score": pytest.approx(10 / 3), "n": 3, "tie": False}
    assert jd.raw["aspects"]["safety"]["score"] == pytest.approx(13 / 3)
    assert jd.score == pytest.approx((5 * 10 / 3 + 13 / 3) / 6)
    assert jd.raw["verdicts"][1]["aspects"]["depth"] == {"label": "2", "score": 2.0}


def test_pairwise_position_swap(scripted) -> None:
    def script(m: str, p: str) -> str:
        a = p.split("[Response A]")[1].split("[Response B]")[0].strip()
        if m == "fair":
            return "VERDICT: A" if a.startswith("Answer") else "VERDICT: B"
        if m == "biased":
            return "VERDICT: A"  # always the first position: inconsistent across orders -> tie
        return "VERDICT: A" if a.startswith("Answer") else "garbled"

    j = judge_kinds.get("llm_pairwise")(name="pw", models=["s:fair", "s:biased", "s:half"], template="templates/pairwise.j2",
                                        base_dir=str(TEMPLATES), cache=False, aggregation="mean", model_args={"script": script})
    jd = j.judge([JudgeInput("Q?", "Answer one.", ["Baseline reply."])])[0]
    fair, biased, half = jd.raw["verdicts"]
    assert (fair["label"], fair["consistent"], fair["label_swapped"]) == ("A", True, "A")
    assert (biased["label"], biased["consistent"], biased["label_swapped"]) == ("tie", False, "B")
    assert half["label"] is None and "swapped order" in half["parse_error"]
    assert jd.raw["parse_failures"] == 1
    # one A and one tie: a tied majority goes to the label listed first in the scale (A, B, tie); mean score (1 + 0.5) / 2
    assert (jd.label, jd.raw["tie"]) == ("A", True) and jd.score == pytest.approx(0.75)
    assert judge_kinds.get("llm_pairwise")(name="pw", models=["s:x"], template="templates/pairwise.j2", base_dir=str(TEMPLATES),
                                           cache=False).judge([JudgeInput("Q", "r")])[0].error.endswith("needs references and the sample has none")


def test_models_env_and_per_model_args(scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_JURY", "s:x, s:y")
    j = rubric(models=["s:a"], models_env="MY_JURY", scale={"yes": 1, "no": 0},
               model_args={"s:x": {"script": lambda m, p: "VERDICT: yes"}, "s:y": {"script": lambda m, p: "VERDICT: no"}})
    jd = j.judge(items())[0]
    assert [v["judge"] for v in jd.raw["verdicts"]] == ["s:x", "s:y"]
    assert [v["label"] for v in jd.raw["verdicts"]] == ["yes", "no"]


def test_bad_configs_are_one_line_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ prompt }} {% if %}")
    cases = {
        "a.yaml": ("params: {models: [], template: t.j2}", "has no judge models: list backend specs under params.models"),
        "b.yaml": ("params: {models: [dummy], template: missing.j2}", "cannot read"),
        "c.yaml": ("params: {models: [dummy], template: t.j2}", "t.j2' line 1"),
        "d.yaml": ("params: {models: [dummy], template: t.j2, aggregation: vote}", "aggregation must be"),
        "e.yaml": ("params: {models: [dummy], template: t.j2, scale: {yes: 1, no: 0}}", "quote yes/no"),
    }
    for fname, (params, why) in cases.items():
        d = tmp_path / fname[0]
        d.mkdir()
        (d / "t.j2").write_text("{{ prompt }} {% if %}" if fname == "c.yaml" else "{{ prompt }}")
        (d / fname).write_text(f"name: j{fname[0]}\nkind: llm_rubric\n{params}\n")
        with pytest.raises(UsageError, match=why):
            JudgeCatalog([d]).build(f"j{fname[0]}")


def test_template_variable_missing_is_reported(scripted, tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ prompt }} {{ meta.rubric }}\nVERDICT: <yes|no>")
    j = judge_kinds.get("llm_rubric")(name="j", models=["s:a"], template="t.j2", base_dir=str(tmp_path), cache=False,
                                      scale={"yes": 1, "no": 0})
    jd = j.judge([JudgeInput("q", "r")])[0]
    assert "rubric" in jd.error


# several judges on a real local OpenAI-compatible server ------------------------------------------

VERDICTS = {  # sample -> (judge-a, judge-b, judge-c) raw outputs; None = malformed
    0: ("VERDICT: yes", "VERDICT: yes", "VERDICT: yes"),
    1: ("VERDICT: yes", "VERDICT: no", "VERDICT: no"),
    2: ("Looks fine.\nVERDICT: no", "VERDICT: no", "**VERDICT: no**"),
    3: ("VERDICT: yes", "I cannot decide.", "VERDICT: yes"),
    4: ("VERDICT: no", "VERDICT: yes", "VERDICT: perhaps"),
    5: ("VERDICT: yes", "VERDICT: yes", "VERDICT: no"),
}


def test_jury_end_to_end_on_local_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    judges = ["judge-a", "judge-b", "judge-c"]

    def handler(req) -> str:
        i = int(req.text.split("[Response]")[1].split("Answer")[1].split(".")[0])
        return VERDICTS[i][judges.index(req.model)]

    with OpenAIServer(handler, models=judges, delay=0.05) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("ALIGNBENCH_JURY_MODELS", ",".join(f"openai:{m}" for m in judges))
        j = builtin_judges().build("jury_constraints")
        out = j.judge(items(6))
        j.close()
        chat = srv.completion_requests()
        assert len(chat) == 18 and {r.model for r in chat} == set(judges)
        assert srv.max_in_flight >= 3  # the three judges' requests overlap
        assert "Be brief." in chat[0].messages[-1]["content"]
    assert [jd.raw["parse_failures"] for jd in out] == [0, 0, 0, 1, 1, 0]
    assert [jd.label for jd in out] == ["yes", "no", "no", "yes", "yes", "yes"]  # tie (sample 4) -> first label
    assert [jd.score for jd in out] == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # majority aggregation
    assert out[4].raw["tie"] is True and "perhaps" in out[4].raw["verdicts"][2]["parse_error"]
    assert out[3].raw["verdicts"][1]["text"] == "I cannot decide."
    records = [{"judgments": {"jury_constraints": jd.as_dict()}} for jd in out]
    agreement = jury_agreement(records, "jury_constraints")
    complete = [r for r in VERDICTS.values() if all(x.replace("*", "").strip().split("VERDICT: ")[-1] in ("yes", "no") for x in r)]
    labels = [[x.replace("*", "").split("VERDICT: ")[-1] for x in r] for r in complete]
    table, _ = aggregate_raters(np.array(labels))
    assert agreement["fleiss_kappa"] == pytest.approx(sm_fleiss(table)) and agreement["n"] == 4
    assert agreement["parse_failures"] == 2 and agreement["judges"] == [f"openai:{m}" for m in judges]


def test_jury_server_error_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIServer(lambda req: "VERDICT: yes" if req.model != "judge-b" else Reply(status=400, json={"error": {"message": "bad"}})) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("ALIGNBENCH_JURY_MODELS", "openai:judge-a,openai:judge-b")
        j = builtin_judges().build("jury_constraints")
        jd = j.judge(items())[0]
        j.close()
    assert jd.label == "yes" and jd.raw["backend_errors"] == 1 and jd.raw["verdicts"][1]["error"]


# one juror's failing requests on a real local server --------------------------------------------

BAD = 3  # the item whose prompt judge-b's server rejects


def _item_of(req) -> int:  # from the body: ``req.text`` is filled in only when the server routes the request
    return int(req.messages[-1]["content"].split("Question ")[1].split("?")[0])


def _asked(srv: OpenAIServer, model: str, item: int | None = None) -> list:
    return [r for r in srv.completion_requests() if r.model == model and (item is None or _item_of(r) == item)]


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.005)


def _server_jury(srv: OpenAIServer, monkeypatch: pytest.MonkeyPatch, **params: Any):
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return rubric(models=["openai:judge-a", "openai:judge-b"], scale={"yes": 1.0, "no": 0.0}, **params)


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("concurrency", [1, 8])
def test_one_rejected_prompt_fails_only_its_own_verdict(monkeypatch: pytest.MonkeyPatch, cache: bool, concurrency: int) -> None:
    """judge-b's server rejects item 3 with a 400. concurrency 1: the requests go one by one, so items
    0-2 are answered, 3 fails, 4-7 are still waiting for the slot (cancelled before they were sent):
    exactly 8 requests (none of the answered ones is sent again). concurrency 8: all 8 are in flight and
    the server holds every other answer until that item is asked again, and rejects item 3 only once
    all 8 arrived: the 7 cancelled ones are each sent once more, 8 + 7 = 15 requests."""
    held = concurrency == 8

    def handler(req) -> Any:
        if req.model == "judge-a":
            return "VERDICT: yes"
        i = _item_of(req)
        if i == BAD:
            if held:
                _wait(lambda: len(_asked(srv, "judge-b")) >= 8)
            return Reply(status=400, json={"error": {"message": "This model's maximum context length is 16 tokens"}})
        if held and len(_asked(srv, "judge-b", i)) == 1:
            _wait(lambda: len(_asked(srv, "judge-b", i)) >= 2)  # answers only a request nobody waits for any more
        return "VERDICT: no"

    with OpenAIServer(handler, models=["judge-a", "judge-b"]) as srv:
        j = _server_jury(srv, monkeypatch, cache=cache, concurrency=concurrency)
        out = j.judge(items(8))
        j.close()
        assert len(_asked(srv, "judge-a")) == 8
        assert len(_asked(srv, "judge-b", BAD)) == 1  # a rejection is neither retried nor sent again
        assert len(_asked(srv, "judge-b")) == (15 if held else 8)
        assert all(len(_asked(srv, "judge-b", i)) == (2 if held else 1) for i in range(8) if i != BAD)
    for i, jd in enumerate(out):
        a, b = jd.raw["verdicts"]
        assert (a["label"], a["error"]) == ("yes", None)
        if i == BAD:
            assert b["label"] is None and "HTTP 400" in b["error"] and "maximum context length" in b["error"]
            assert jd.raw["backend_errors"] == 1 and jd.label == "yes"
        else:
            assert (b["label"], b["text"], b["error"]) == ("no", "VERDICT: no", None)
            assert jd.raw["backend_errors"] == 0


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("status", [500, 400])
def test_a_juror_failing_every_request_is_not_asked_again_and_again(monkeypatch: pytest.MonkeyPatch, cache: bool,
                                                                    status: int) -> None:
    """Every judge-b request fails. 500 is retried (2 retries): the first request out of retries ends
    the round, it answered nothing, so nothing is sent again: at most 8 x (1 + 2) = 24 requests (sending
    the cancelled ones again, round after round, would be >= 8 + 7 + ... + 1 = 36 plus the retries).
    400 is the server rejecting each request: the cancelled ones get one more round, which answers
    nothing either: at most 8 + 7 = 15."""

    def handler(req) -> Any:
        if req.model == "judge-a":
            return "VERDICT: yes"
        return Reply(status=status, json={"error": {"message": f"judge-b fails with {status}"}})

    with OpenAIServer(handler, models=["judge-a", "judge-b"]) as srv:
        j = _server_jury(srv, monkeypatch, cache=cache, model_args={"max_retries": 2, "backoff": 0.01, "max_backoff": 0.02})
        out = j.judge(items(8))
        j.close()
        assert len(_asked(srv, "judge-a")) == 8
        sent = len(_asked(srv, "judge-b"))
        assert (3 <= sent <= 24) if status == 500 else (8 <= sent <= 15)
    for jd in out:
        a, b = jd.raw["verdicts"]
        assert (a["label"], a["error"]) == ("yes", None)
        assert b["label"] is None and f"HTTP {status}" in b["error"] and f"judge-b fails with {status}" in b["error"]
        assert jd.raw["backend_errors"] == 1


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_generate_each_maps_a_failure_to_every_request_that_shares_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      cache: bool) -> None:
    """Identical requests are sent once; a rejection of that one request is every copy's answer."""
    from alignbench.backends.base import load_backend
    from alignbench.backends.cache import CachedBackend, GenerationCache
    from alignbench.types import GenerationParams, GenerationRequest

    def handler(req) -> Any:
        return Reply(status=400, json={"error": {"message": "too long"}}) if "bad" in req.text else f"ok {req.text}"

    with OpenAIServer(handler) as srv:
        store = GenerationCache(tmp_path / "c.sqlite") if cache else None
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        b = CachedBackend(load_backend("openai:judge", {"base_url": srv.base_url}), store)
        prompts = ["x0", "bad", "x0", "bad", "x1"]
        out = b.generate_each([GenerationRequest(prompt=p, params=GenerationParams(max_new_tokens=8)) for p in prompts])
        b.backend.close()
        assert sum(r.text == "bad" for r in srv.completion_requests()) == 1
    assert [o.text if not isinstance(o, BaseException) else None for o in out] == ["ok x0", None, "ok x0", None, "ok x1"]
    assert out[1] is out[3] and "HTTP 400: too long" in str(out[1])
    if store is not None:
        store.close()


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_cached_verdicts_do_not_count_as_answers_of_a_juror_that_is_down(monkeypatch: pytest.MonkeyPatch, cache: bool) -> None:
    """Items 0-3 are judged while judge-b is up; then it fails every request (500, no retries). Judging
    items 0-7, 0-3 come from the cache (or this run's memo) and 4-7 are sent: the server fails the first
    once all 4 arrived and holds the rest until asked again. The round got no answer from the model
    (hits are not answers), so the 3 cancelled requests are not sent again: exactly 4 requests."""
    down = False

    def handler(req) -> Any:
        if req.model == "judge-a" or not down:
            return "VERDICT: yes"
        i = _item_of(req)
        if i == 4:
            _wait(lambda: len(_asked(srv, "judge-b")) >= 4)
        else:
            _wait(lambda: len(_asked(srv, "judge-b", i)) >= 2, timeout=2.0)
        return Reply(status=500, json={"error": {"message": "judge-b is down"}})

    with OpenAIServer(handler, models=["judge-a", "judge-b"]) as srv:
        j = _server_jury(srv, monkeypatch, cache=cache, model_args={"max_retries": 0})
        j.judge(items(4))
        srv.reset()
        down = True
        out = j.judge(items(8))
        j.close()
        assert len(_asked(srv, "judge-b")) == 4 and len(_asked(srv, "judge-a")) == 4
    assert [jd.raw["verdicts"][1]["label"] for jd in out] == ["yes"] * 4 + [None] * 4
    assert all("judge-b is down" in jd.raw["verdicts"][1]["error"] for jd in out[4:])
