"""alignbench compare: pairwise judging of runs, win rates, Bradley-Terry / Elo ratings, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from alignbench.cli import main
from alignbench.compare import summary
from alignbench.results import load_compare
from alignbench.stats.ratings import bradley_terry

from compare_factory import first_wins, jury_yaml, longer_wins, make_runs
from openai_server import OpenAIServer

LENGTHS = {"short": lambda i: 2, "medium": lambda i: 5 + i % 3, "long": lambda i: 12}


def _lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]


def _only(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return tmp_path


def test_jury_prefers_longer_answers_ranking_flips_and_agreement(env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    runs = make_runs(env, LENGTHS)
    jury = jury_yaml(env, ["openai:len-a", "openai:len-b", "openai:first"])
    with OpenAIServer(lambda r: first_wins(r) if r.model == "first" else longer_wins(r)) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        assert main(["compare", *map(str, runs), "--judge", str(jury), "--output", str(env / "cmp")]) == 0
        assert len(srv.completion_requests()) == 3 * 12 * 3 * 2  # pairs x samples x jurors x both orders
    folder = _only(env / "cmp")
    info = json.loads((folder / "compare.json").read_text())
    lines = _lines(folder)
    assert info["status"] == "complete" and len(lines) == 36 and info["failed"] == 0
    assert {(ln["a"], ln["b"]) for ln in lines} == {("short", "medium"), ("short", "long"), ("medium", "long")}
    line = next(ln for ln in lines if (ln["a"], ln["b"], ln["sample_id"]) == ("short", "long", "q03"))
    assert line["response_a"].startswith("word word (") and line["response_b"].count("word") == 12
    assert [(v["first"], v["swapped"], v["label"]) for v in line["verdicts"]] == [("B", "B", "B"), ("B", "B", "B"), ("A", "B", "tie")]
    assert line["winner"] == "b" and line["score"] == 0.0 and line["disagree"] is True
    assert line["verdicts"][0]["text"] == "Comparing lengths.\nVERDICT: B" and line["verdicts"][2]["text_swapped"] == "VERDICT: A"
    ov = info["overall"]
    assert [(p["a"], p["b"], p["wins"], p["ties"], p["losses"]) for p in ov["pairs"]] == \
        [("short", "medium", 0, 0, 12), ("short", "long", 0, 0, 12), ("medium", "long", 0, 0, 12)]
    assert ov["pairs"][0]["win_rate"] == 0.0 and ov["pairs"][0]["ci_method"] == "wilson" and 0.2 < ov["pairs"][0]["ci_high"] < 0.3
    bt = ov["bradley_terry"]
    assert sorted(bt, key=lambda m: -bt[m]["rating"]) == ["long", "medium", "short"]
    assert sorted(ov["elo"], key=lambda m: -ov["elo"][m]) == ["long", "medium", "short"]
    # the always-first juror flips every one of its 36 verdicts, favouring the first position; the others never flip
    assert ov["position_flips"] == {"verdicts": 108, "flipped": 36, "share": pytest.approx(1 / 3), "favoured_first": 36, "favoured_second": 0}
    # Fleiss' kappa by hand: every unit is rated (B|A, B|A, tie): P_i = 1/3, P_e = (2/3)^2 + (1/3)^2 = 5/9
    assert ov["agreement"]["fleiss_kappa"] == pytest.approx((1 / 3 - 5 / 9) / (1 - 5 / 9))
    assert ov["agreement"]["disagreements"] == 36 and set(info["by_task"]) == {"open"}
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("long\t")
    df = load_compare(folder)
    wr = df[(df.metric == "win_rate") & df.task.isna()].set_index(["run", "opponent"])["value"]
    assert wr[("medium", "long")] == 0.0
    assert df[(df.metric == "position_flip_share") & df.task.isna()]["value"].item() == pytest.approx(1 / 3)
    assert set(df.columns) == {"compare_id", "judge", "task", "run", "opponent", "metric", "value", "ci_low", "ci_high", "n"}


def _independent_bt(lines: list[dict], models: list[str], pseudo: float) -> np.ndarray:
    """Bradley-Terry by a binomial GLM (logistic regression without intercept) in statsmodels: log-strengths."""
    import statsmodels.api as sm

    X, y, w = [], [], []
    idx = {m: i for i, m in enumerate(models)}

    def game(i: int, j: int, win: float, weight: float) -> None:
        x = np.zeros(len(models))
        x[i], x[j] = 1.0, -1.0
        X.append(x[1:])  # the first model is the reference (log-strength 0)
        y.append(win)
        w.append(weight)

    for ln in lines:
        i, j = idx[ln["a"]], idx[ln["b"]]
        game(i, j, 1.0, ln["score"])
        game(i, j, 0.0, 1.0 - ln["score"])
    for i in range(len(models)):
        for j in range(i + 1, len(models)):
            game(i, j, 1.0, pseudo / 2)
            game(i, j, 0.0, pseudo / 2)
    keep = [k for k, x in enumerate(w) if x > 0]
    fit = sm.GLM(np.array(y)[keep], np.array(X)[keep], family=sm.families.Binomial(), freq_weights=np.array(w)[keep]).fit(tol=1e-12)
    beta = np.concatenate([[0.0], fit.params])
    return beta - beta.mean()


def test_bradley_terry_equals_logistic_regression_and_bootstrap_resamples_samples() -> None:
    rng = np.random.default_rng(3)
    models = ["m0", "m1", "m2", "m3"]
    true = np.array([0.0, 0.5, 1.0, -0.7])
    lines = []
    for s in range(60):
        for i in range(4):
            for j in range(i + 1, 4):
                p = 1 / (1 + np.exp(true[j] - true[i]))
                u = rng.random()
                score = 0.5 if abs(u - p) < 0.05 else float(u < p)
                lines.append({"a": models[i], "b": models[j], "task": "t", "sample_id": f"s{s}", "score": score,
                              "winner": {1.0: "a", 0.0: "b", 0.5: "tie"}[score]})
    for pseudo in (0.0, 1.0):
        got = summary.bradley_terry(lines, models, seed=0, pseudo_count=pseudo, resamples=200)
        log_p = np.log([got[m]["strength"] for m in models])
        assert log_p == pytest.approx(_independent_bt(lines, models, pseudo), abs=1e-6)
        for m in models:
            assert got[m]["ci_low"] < got[m]["rating"] < got[m]["ci_high"]
    # the matrix fit agrees with the comparison-list fit of alignbench.stats.ratings
    comps = [(ln["a"], ln["b"], ln["a"] if ln["winner"] == "a" else ln["b"] if ln["winner"] == "b" else "tie") for ln in lines]
    ref = bradley_terry(comps)
    got = summary.bradley_terry(lines, models, seed=0, pseudo_count=0.0, resamples=50)
    assert [got[m]["strength"] for m in models] == pytest.approx([ref[m] for m in models], rel=1e-8)
    # the bootstrap resamples samples: when all of a sample's games move together, a sample-level resample
    # of 60 units is wider than the game-level spread would suggest for 360 games; here we check its seeding
    again = summary.bradley_terry(lines, models, seed=0, pseudo_count=1.0, resamples=200)
    other = summary.bradley_terry(lines, models, seed=1, pseudo_count=1.0, resamples=200)
    assert again == summary.bradley_terry(lines, models, seed=0, pseudo_count=1.0, resamples=200)
    assert again["m1"]["ci_low"] != other["m1"]["ci_low"]


def test_pairs_baseline_and_per_task(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_runs(env, LENGTHS, n=4, tasks=("t1", "t2"))
    jury = jury_yaml(env, ["openai:len-a"], cache=True)
    with OpenAIServer(longer_wins) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        argv = ["compare", *map(str, runs), "--judge", str(jury), "--output", str(env / "cmp"), "--pairs", "baseline"]
        assert main(argv) == 0
        # 2 pairs x 4 samples x 2 orders: the two tasks hold the same prompts and answers, so the cache asks once
        assert len(srv.completion_requests()) == 2 * 4 * 2
        srv.reset()
        assert main(argv + ["--overwrite"]) == 0  # judged again from scratch: every judge call comes from the cache
        assert srv.completion_requests() == []
    info = json.loads((_only(env / "cmp") / "compare.json").read_text())
    assert info["pairs"] == [["medium", "short"], ["long", "short"]]
    assert [(p["a"], p["wins"], p["n"]) for p in info["overall"]["pairs"]] == [("medium", 8, 8), ("long", 8, 8)]
    assert set(info["by_task"]) == {"t1", "t2"} and info["by_task"]["t1"]["pairs"][0]["n"] == 4
    assert info["overall"]["agreement"] is None  # one juror


def test_killed_compare_resumes_without_rejudging(env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    runs = make_runs(env, LENGTHS, n=24)
    jury = jury_yaml(env, ["openai:len-a", "openai:len-b"])
    argv = ["compare", *map(str, runs), "--judge", str(jury), "--output", str(env / "cmp")]
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    with OpenAIServer(longer_wins, delay=0.05) as srv:
        child_env["OPENAI_BASE_URL"] = srv.base_url
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        proc = subprocess.Popen([sys.executable, "-m", "alignbench", *argv], env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        pairs = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((env / "cmp").glob("*/pairs.jsonl"))
            if found and len(found[0].read_bytes().splitlines()) >= 32:
                pairs = found[0]
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert pairs is not None, proc.stderr.read().decode()[-2000:]
        kept = len(_lines(pairs.parent))
        assert 32 <= kept < 72 and json.loads((pairs.parent / "compare.json").read_text())["status"] == "running"
        # without --resume the folder is refused; with it only the missing pairs are judged
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--resume" in err and err.count("\n") == 1
        srv.reset()
        assert main(argv + ["--resume"]) == 0
        assert len(srv.completion_requests()) == (72 - kept) * 2 * 2  # units left x jurors x orders
    lines = _lines(pairs.parent)
    assert len(lines) == 72 and len({(ln["a"], ln["b"], ln["sample_id"]) for ln in lines}) == 72
    info = json.loads((pairs.parent / "compare.json").read_text())
    assert info["status"] == "complete" and info["overall"]["n"] == 72


def test_bad_input_is_one_line_exit_2(env: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_runs(env, {"short": lambda i: 2, "long": lambda i: 9}, n=3)
    other = make_runs(env / "other", {"solo": lambda i: 3}, n=3, tasks=("another",))
    jury = jury_yaml(env, ["openai:len-a"])
    cases = [
        (["compare", str(runs[0]), "--judge", str(jury)], "at least two runs"),
        (["compare", str(runs[0]), str(other[0]), "--judge", str(jury)], "share no samples"),
        (["compare", *map(str, runs), "--judge", "refusal_gcg"], "is not pairwise"),
        (["compare", *map(str, runs), "--judge", "jury_pairwise"], "has no judge models"),
        (["compare", *map(str, runs), "--judge", "skywork_reward", "--judge-model", f"skywork_reward={env / 'nope'}"], "does not exist"),
        (["compare", str(runs[0]), str(runs[0]), "--judge", str(jury)], "given twice"),
        (["compare", *map(str, runs), "--judge", "skywork_reward", "--judge-model", "skywork_reward=openai:rm"], "in-process"),
        (["compare", *map(str, runs), "--judge", str(jury), "--tie-margin", "0.5"], "reward-model judges"),
    ]
    monkeypatch.delenv("ALIGNBENCH_JURY_MODELS", raising=False)
    monkeypatch.delenv("ALIGNBENCH_REWARD_MODEL", raising=False)
    for argv, why in cases:
        assert main(argv + ["--output", str(env / "cmp")]) == 2, argv
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1, (argv, err)
    assert not (env / "cmp").exists()  # nothing was started


def test_failed_judgments_are_kept_counted_and_left_out_of_the_ratings(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_runs(env, {"short": lambda i: 2, "long": lambda i: 9}, n=5)
    jury = jury_yaml(env, ["openai:len-a"])

    def handler(req):
        return "I cannot decide." if "topic 1." in req.text else longer_wins(req)  # no verdict line: a parse failure

    with OpenAIServer(handler) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        assert main(["compare", *map(str, runs), "--judge", str(jury), "--output", str(env / "cmp"), "--run-id", "f"]) == 0
    lines = _lines(env / "cmp" / "f")
    bad = [ln for ln in lines if ln["sample_id"] == "q01"]
    assert len(lines) == 5 and len(bad) == 1 and bad[0]["winner"] is None and "no usable verdict" in bad[0]["error"]
    info = json.loads((env / "cmp" / "f" / "compare.json").read_text())
    assert info["failed"] == 1 and info["overall"]["n"] == 4
    assert info["overall"]["pairs"] == [{**info["overall"]["pairs"][0], "n": 4, "wins": 0, "losses": 4, "failed": 1}]


def test_resume_judges_failed_pairs_again_and_keeps_one_line_each(env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from openai_server import Reply

    runs = make_runs(env, {"short": lambda i: 2, "long": lambda i: 9}, n=5)
    jury = jury_yaml(env, ["openai:len-a"])
    argv = ["compare", *map(str, runs), "--judge", str(jury), "--output", str(env / "cmp"), "--run-id", "r"]
    broken = {"on": True}

    def handler(req):  # a request error (not cached) for one sample while broken
        if broken["on"] and "topic 1." in req.text:
            return Reply(status=400, json={"error": {"message": "bad request", "type": "invalid_request_error", "code": 400}})
        return longer_wins(req)

    with OpenAIServer(handler) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        assert main(argv) == 0
        first = _lines(env / "cmp" / "r")
        failed = [ln for ln in first if ln["winner"] is None]
        assert failed and json.loads((env / "cmp" / "r" / "compare.json").read_text())["failed"] == len(failed)
        broken["on"] = False
        srv.reset()
        capsys.readouterr()
        assert main(argv + ["--resume"]) == 0
        assert f"{5 - len(failed)} pair(s) already judged, {len(failed)} to go ({len(failed)} failed before" in capsys.readouterr().err
        assert len(srv.completion_requests()) == len(failed) * 2  # the failed pairs only, in both orders
    lines = _lines(env / "cmp" / "r")
    assert len(lines) == 5 and sorted(ln["sample_id"] for ln in lines) == [f"q{i:02d}" for i in range(5)]
    assert all(ln["winner"] == "b" for ln in lines)  # the longer answer (run "long") wins every pair now
    info = json.loads((env / "cmp" / "r" / "compare.json").read_text())
    assert info["failed"] == 0 and info["overall"]["n"] == 5
