"""reward_model judges (a tiny randomly initialised sequence classifier built here), in compare and as best_of reducer."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from alignbench.cli import main
from alignbench.judges.reward_model import RewardModelJudge
from alignbench.types import JudgeInput

from compare_factory import make_runs, write_task
from tiny_model import build_tiny_reward_model


@pytest.fixture(scope="module")
def rm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rm")
    return {"pad": build_tiny_reward_model(root / "pad", seed=1), "nopad": build_tiny_reward_model(root / "nopad", seed=2, pad_token=False)}


@functools.lru_cache(maxsize=4)
def _loaded(path: Path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForSequenceClassification.from_pretrained(path).eval()


def direct(path: Path, prompt, response: str) -> float:
    """The reward by hand: the chat template over [user, assistant], one unpadded forward pass, logits[0][0]."""
    import torch

    tok, model = _loaded(path)
    msgs = (prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]) + [{"role": "assistant", "content": response}]
    ids = tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        return float(model(**ids).logits[0][0])


ITEMS = [JudgeInput(prompt=f"Question {i}?", response=" ".join(["yes"] * (i + 1)) + " no") for i in range(6)] + \
    [JudgeInput(prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], response="Hello </s>")]


@pytest.mark.parametrize("variant", ["pad", "nopad"])
def test_batched_rewards_equal_a_direct_forward_pass_and_are_cached(rm_dirs, variant: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path))
    judge = RewardModelJudge(name="rm", model=str(rm_dirs[variant]), batch_size=3)
    got = judge.judge(ITEMS)
    assert [g.error for g in got] == [None] * len(ITEMS)
    want = [direct(rm_dirs[variant], it.prompt, it.response) for it in ITEMS]
    assert [g.score for g in got] == pytest.approx(want, abs=1e-5)
    assert len({round(w, 4) for w in want}) == len(want)  # the rewards tell the responses apart
    assert judge.model_calls == len(ITEMS)
    again = RewardModelJudge(name="rm", model=str(rm_dirs[variant]), batch_size=2)
    assert [g.score for g in again.judge(ITEMS)] == pytest.approx([g.score for g in got], abs=1e-6)
    assert again.model_calls == 0  # every reward came from the cache
    judge.close()
    again.close()
    short = RewardModelJudge(name="rm", model=str(rm_dirs[variant]), max_length=8, cache=False)
    assert "more than the reward model's max_length 8" in short.judge(ITEMS[-1:])[0].error


LENGTHS = {"one": lambda i: 1 + i % 4, "two": lambda i: 3 + i % 2, "three": lambda i: 6 - i % 5}


def _rm_yaml(folder: Path, model: Path) -> Path:
    y = folder / "tiny_rm.yaml"
    y.write_text(f"name: tiny_rm\nkind: reward_model\nparams:\n  model: {model}\n  batch_size: 4\n", encoding="utf-8")
    return y


def test_compare_with_a_reward_model_turns_reward_differences_into_wins(rm_dirs, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    runs = make_runs(tmp_path, LENGTHS, n=8)
    y = _rm_yaml(tmp_path, rm_dirs["pad"])
    assert main(["compare", *map(str, runs), "--judge", str(y), "--output", str(tmp_path / "cmp"), "--run-id", "rm"]) == 0
    folder = tmp_path / "cmp" / "rm"
    lines = [json.loads(x) for x in (folder / "pairs.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 8
    for ln in lines:
        ra, rb = direct(rm_dirs["pad"], ln["prompt"], ln["response_a"]), direct(rm_dirs["pad"], ln["prompt"], ln["response_b"])
        assert (ln["scores"]["a"], ln["scores"]["b"]) == (pytest.approx(ra, abs=1e-5), pytest.approx(rb, abs=1e-5))
        same = ln["response_a"] == ln["response_b"]  # the same text gets the same (cached) reward: a tie
        assert ln["winner"] == ("tie" if same else "a" if ra > rb else "b") and ln["verdicts"] == []
    info = json.loads((folder / "compare.json").read_text())
    assert info["settings"]["compare"] == "reward" and info["overall"]["position_flips"] is None
    wins = {(p["a"], p["b"]): p["wins"] for p in info["overall"]["pairs"]}
    assert wins == {(a, b): sum(ln["winner"] == "a" for ln in lines if (ln["a"], ln["b"]) == (a, b)) for a, b in wins}
    # a margin wider than any reward difference makes every comparison a tie
    assert main(["compare", *map(str, runs), "--judge", str(y), "--output", str(tmp_path / "cmp"), "--run-id", "rm",
                 "--overwrite", "--tie-margin", "1e6"]) == 0
    info = json.loads((folder / "compare.json").read_text())
    assert all(p["ties"] == p["n"] == 8 and p["win_rate"] == 0.5 for p in info["overall"]["pairs"])
    assert info["judge_model_calls"] == 0  # the second compare scored nothing again: the rewards were cached


def test_best_of_reducer_keeps_the_epoch_the_reward_model_scores_highest(rm_dirs, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    task = write_task(tmp_path / "tasks", n=8, judges="refusal_gcg")
    y = _rm_yaml(tmp_path, rm_dirs["pad"])
    base = ["eval", "--model", "dummy", "--model-args", "sample=1,refuse=0.5", "--tasks", str(task), "--judges", str(y),
            "--epochs", "3", "--temperature", "0.7", "--output", str(tmp_path / "runs"), "--no-cache"]
    assert main(base + ["--reducer", "best_of:tiny_rm", "--run-id", "bo"]) == 0
    recs = [json.loads(x) for x in (tmp_path / "runs" / "bo" / "samples.jsonl").read_text().splitlines()]
    metrics = json.loads((tmp_path / "runs" / "bo" / "metrics.json").read_text())
    metric = "refusal_gcg"
    assert metrics["open"][metric]["reducer"] == "best_of:tiny_rm" and metrics["open"][metric]["epochs"] == 3
    by_sample: dict[str, list[dict]] = {}
    for r in recs:
        by_sample.setdefault(r["sample_id"], []).append(r)
    from alignbench.records.epochs import per_sample

    best = per_sample(recs, metric, "best_of:tiny_rm")
    for sid, rs in by_sample.items():
        top = max(rs, key=lambda r: (r["judgments"]["tiny_rm"]["score"], -r["epoch"]))
        assert best[sid] == top["metrics"][metric]
    assert any(len({r["metrics"][metric] for r in rs}) > 1 for rs in by_sample.values())  # epochs differ: the choice matters
    assert metrics["open"][metric]["value"] == pytest.approx(sum(best.values()) / len(best))
    # compare picks the best-of-N epoch of the best_of run and the first epoch of a plain run of the same model and seeds:
    # its reward-model win rate is the best-of-N win rate against the first epoch
    assert main(base + ["--reducer", "mean", "--run-id", "first"]) == 0
    assert main(["compare", str(tmp_path / "runs" / "bo"), str(tmp_path / "runs" / "first"), "--judge", str(y),
                 "--output", str(tmp_path / "cmp"), "--run-id", "c"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "cmp" / "c" / "pairs.jsonl").read_text().splitlines()]
    assert all(ln["epoch_b"] == 0 for ln in lines) and any(ln["epoch_a"] > 0 for ln in lines)
    pair = json.loads((tmp_path / "cmp" / "c" / "compare.json").read_text())["overall"]["pairs"][0]
    from alignbench.run.best_of import win_rate_vs_first

    bo = win_rate_vs_first(recs, "tiny_rm")
    assert (pair["wins"], pair["ties"], pair["losses"]) == (bo["wins"], bo["ties"], 0)
    assert pair["win_rate"] == pytest.approx(bo["value"])
    capsys.readouterr()
    assert main(base + ["--reducer", "best_of:other_rm", "--run-id", "bad"]) == 2
    assert "does not run on task" in capsys.readouterr().err
