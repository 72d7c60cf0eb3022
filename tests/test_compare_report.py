"""The report's Ranking section and the browser rows of disagreeing pairs, from a real compare and a best-of-N run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignbench.cli import main
from alignbench.report.collect import collect
from alignbench.report.document import build_document
from alignbench.report.blocks import Browser, Image, Table
from compare_factory import first_wins, jury_yaml, longer_wins, make_runs, write_task
from openai_server import OpenAIServer


def _section(doc, title):
    return next(s for s in doc.sections if s.title == title)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished compare of two runs: ``long`` answers longer on 4 of 6 prompts; a length juror and a first-position juror."""
    tmp_path = tmp_path_factory.mktemp("cmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
        mp.setenv("OPENAI_API_KEY", "sk-test")
        runs = make_runs(tmp_path, {"short": lambda i: 2, "long": lambda i: 12 if i % 3 else 1}, n=6)
        jury = jury_yaml(tmp_path, ["openai:len-a", "openai:first"])
        # the first-position juror contradicts itself when the order swaps (a tie every time), so it splits from the
        # length juror on every pair; the jury's majority (a 1-1 split goes to the first scale label) is the length juror's
        with OpenAIServer(lambda r: first_wins(r) if r.model == "first" else longer_wins(r)) as srv:
            mp.setenv("OPENAI_BASE_URL", srv.base_url)
            assert main(["compare", *map(str, runs), "--judge", str(jury), "--output", str(tmp_path / "cmp"), "--run-id", "c"]) == 0
    return tmp_path


def test_ranking_section_and_disagreeing_pairs_in_the_browser(compared: Path) -> None:
    tmp_path = compared
    data = collect([tmp_path / "cmp" / "c"])
    assert data.labels == ["short", "long"]  # the compared runs come with the compare folder
    doc = build_document(data, with_plots=True)
    ranking = _section(doc, "Ranking")
    table = next(b for b in ranking.blocks if isinstance(b, Table) and b.caption.startswith("ranking"))
    assert list(table.df["run"]) == ["long", "short"]  # long wins 4 of 6 (i % 3 != 0), short 2
    assert table.df["win rate vs others"].tolist() == ["0.667 (n=6)", "0.333 (n=6)"]
    assert any(isinstance(b, Image) and b.png.startswith(b"\x89PNG") for b in ranking.blocks)
    pairs = next(b for b in ranking.blocks if isinstance(b, Table) and b.caption == "pairs")
    assert pairs.df.iloc[0]["wins / ties / losses of a"] == "2 / 0 / 4"
    browser = next(b for s in doc.sections for b in s.blocks if isinstance(b, Browser)).payload
    col = {c: i for i, c in enumerate(browser["columns"])}
    pair_rows = [r for r in browser["rows"] if browser["runs"][r[col["run"]]] == "short vs long"]
    assert len(pair_rows) == 6 and all(r[col["disagree"]] == 1 for r in pair_rows)
    text = browser["texts"][pair_rows[0][col["response"]]]
    assert text.startswith("[short]\n") and "\n\n[long]\n" in text
    html_path = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "cmp" / "c"), "--out", str(html_path)]) == 0
    assert "Ranking" in html_path.read_text(encoding="utf-8")


def test_disagreeing_pairs_are_listed_by_the_browser_filter(compared: Path) -> None:
    from test_report_browser import ARGS, CHROMIUM, Page, _need_browser

    html = compared / "browser.html"
    assert main(["report", str(compared / "cmp" / "c"), "--out", str(html)]) == 0
    with _need_browser()() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = Page(b, html)
        page = pg.page
        assert pg.count() == 6 + 6 + 6  # the two runs' samples and the six compared pairs
        page.check("#ab-disagree")
        assert pg.count() == 6
        assert pg.select("run", "short vs long") == 6
        page.click(".ab-row >> nth=0")
        detail = page.inner_text("#ab-detail")
        assert "[short]" in detail and "[long]" in detail and "openai:first: tie" in detail
        assert pg.errors == [] and pg.requests == []
        pg.close()
        b.close()


def test_best_of_n_win_rate_against_the_first_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiny_model import build_tiny_reward_model

    monkeypatch.setenv("ALIGNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    rm = build_tiny_reward_model(tmp_path / "rm", seed=4)
    y = tmp_path / "tiny_rm.yaml"
    y.write_text(f"name: tiny_rm\nkind: reward_model\nparams:\n  model: {rm}\n", encoding="utf-8")
    task = write_task(tmp_path / "tasks", n=8, judges="refusal_gcg")
    assert main(["eval", "--model", "dummy", "--model-args", "sample=1,refuse=0.5", "--tasks", str(task), "--judges", str(y),
                 "--epochs", "3", "--temperature", "0.7", "--reducer", "best_of:tiny_rm", "--output", str(tmp_path / "runs"),
                 "--run-id", "bo", "--no-cache"]) == 0
    recs = [json.loads(x) for x in (tmp_path / "runs" / "bo" / "samples.jsonl").read_text().splitlines()]
    by: dict[str, list[dict]] = {}
    for r in recs:
        by.setdefault(r["sample_id"], []).append(r)
    # by hand: a prompt counts 1 when its best epoch's reward beats epoch 0's, else 0.5 (epoch 0 is the best)
    wins = sum(max(x["judgments"]["tiny_rm"]["score"] for x in rs) > next(x for x in rs if x["epoch"] == 0)["judgments"]["tiny_rm"]["score"]
               for rs in by.values())
    assert 0 < wins < 8  # the responses differ across epochs, and some first epochs are the best
    doc = build_document(collect([tmp_path / "runs" / "bo"]), with_plots=False)
    table = next(b for b in _section(doc, "Ranking").blocks if isinstance(b, Table) and b.caption == "best-of-N win rate")
    row = table.df.loc[("bo", "open")]
    assert row["epochs"] == 3 and row["prompts improved"] == wins
    assert row["best-of-N win rate vs first epoch [95% CI]"].startswith(f"{(wins + (8 - wins) / 2) / 8:.3f} [")
