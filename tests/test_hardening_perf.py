"""Speed contracts that do not need a stopwatch: work that must not happen, and work that must overlap."""

from __future__ import annotations

import time

from alignbench.backends.base import BackendOptions
from alignbench.backends.cache import CachedBackend, GenerationCache
from alignbench.backends.dummy import DummyBackend
from alignbench.types import GenerationRequest


class CountingBackend(DummyBackend):
    """A backend whose fingerprint costs a round trip (like a server's /v1/models), counted."""

    def __init__(self) -> None:
        super().__init__("", BackendOptions())
        self.fingerprints = 0

    def fingerprint(self):
        self.fingerprints += 1
        time.sleep(0.01)
        return super().fingerprint()


def test_cached_backend_asks_for_the_fingerprint_only_when_it_needs_a_key(tmp_path) -> None:
    reqs = [GenerationRequest(prompt=f"p{i}") for i in range(3)]
    b = CountingBackend()
    wrapped = CachedBackend(b, None)
    assert b.fingerprints == 0  # building the wrapper costs nothing (an LLM jury builds several at once)
    assert [g.text for g in wrapped.generate(reqs)] == [g.text for g in b.generate(reqs)]
    assert b.fingerprints == 0 and wrapped.model_calls == 3  # without a cache there are no keys to make

    b2 = CountingBackend()
    cache = GenerationCache(tmp_path / "c.sqlite")
    cached = CachedBackend(b2, cache)
    assert b2.fingerprints == 0
    cached.generate(reqs)
    cached.generate(reqs)
    assert b2.fingerprints == 1 and cached.model_calls == 3  # asked once, then reused; the second call was all hits
    cache.close()


def test_identical_requests_are_sent_once_per_run(tmp_path) -> None:
    """Two tasks sharing requests (like TruthfulQA mc1 and mc2 sharing choices): each distinct request reaches
    the model once, with and without a cache, and every sample still gets its answer."""
    import json

    from alignbench.cli import main

    rows = [{"id": str(i), "q": f"Question {i % 3}?", "choices": ["yes", "no", f"maybe {i % 2}"], "target": 0} for i in range(6)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("mc_a", "mc_b"):
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\noutput_type: multiple_choice\nprompt: {{chat: false}}\n"
                                               "dataset: {data_files: d.jsonl, columns: {id: id, prompt: q, choices: choices, target: target}}\n")
    tasks = f"{tmp_path / 'mc_a.yaml'},{tmp_path / 'mc_b.yaml'}"
    distinct = len({(f"Question {i % 3}?", c) for i in range(6) for c in ["yes", "no", f"maybe {i % 2}"]})
    for run_id, cache in (("nc", ["--no-cache"]), ("c", ["--cache", str(tmp_path / "c.sqlite")])):
        assert main(["eval", "--model", "dummy", "--tasks", tasks, "--output", str(tmp_path / "o"), "--run-id", run_id, *cache]) == 0
        info = json.loads((tmp_path / "o" / run_id / "run.json").read_text())
        assert info["model_calls"] == distinct == 3 * 4  # 3 questions x (yes, no, maybe 0, maybe 1) instead of 2 x 6 x 3
        recs = [json.loads(x) for x in (tmp_path / "o" / run_id / "samples.jsonl").read_text().splitlines()]
        assert len(recs) == 12 and all(len(r["loglikelihoods"]) == 3 for r in recs)
        by = {(r["task"], r["sample_id"]): r["loglikelihoods"] for r in recs}
        assert all(by[("mc_a", s)] == by[("mc_b", s)] for s in map(str, range(6)))
    nc = [json.loads(x)["loglikelihoods"] for x in (tmp_path / "o/nc/samples.jsonl").read_text().splitlines()]
    c = [json.loads(x)["loglikelihoods"] for x in (tmp_path / "o/c/samples.jsonl").read_text().splitlines()]
    assert nc == c


def test_replay_answers_are_never_shared_between_tasks_through_the_cache(tmp_path) -> None:
    """replay answers by (task, sample id): two tasks with the same prompt must each get their own stored answer."""
    import json

    from alignbench.cli import main

    (tmp_path / "d.jsonl").write_text('{"id": "1", "prompt": "same prompt"}\n')
    for t in ("ta", "tb"):
        (tmp_path / f"{t}.yaml").write_text(f"name: {t}\ndataset: {{data_files: d.jsonl, columns: {{id: id}}}}\n")
    (tmp_path / "stored.jsonl").write_text('{"task": "ta", "sample_id": "1", "response": "answer A"}\n'
                                           '{"task": "tb", "sample_id": "1", "response": "answer B"}\n')
    for run_id in ("r1", "r2"):  # the second run with a warm cache
        assert main(["eval", "--model", f"replay:{tmp_path / 'stored.jsonl'}", "--tasks", f"{tmp_path / 'ta.yaml'},{tmp_path / 'tb.yaml'}",
                     "--output", str(tmp_path / "o"), "--run-id", run_id, "--cache", str(tmp_path / "c.sqlite")]) == 0
        recs = {json.loads(x)["task"]: json.loads(x)["response"] for x in (tmp_path / "o" / run_id / "samples.jsonl").read_text().splitlines()}
        assert recs == {"ta": "answer A", "tb": "answer B"}
