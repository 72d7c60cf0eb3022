"""The HTML report's sample browser in a real headless Chromium (Playwright, Debian's chromium).

The report is opened from file:// with every network request refused; filters and search are applied
through the page's own controls and the row counts compared with counts computed here from
samples.jsonl. Model output carrying script and markup must stay text: nothing injected may run.
A 10,000-sample report must open and filter without freezing the page.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import run_main
from runs_factory import make_run, rewrite_samples, write_task

CHROMIUM = Path(os.environ.get("ALIGNBENCH_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
INJECTED = ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">', "</script><script>window.__pwned=1</script>"]


def _need_browser():
    """Playwright's sync API, or a skip when the browser is not installed (CI installs it and must not skip)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _need_browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Page:
    """A report page: every request other than the file itself is refused and recorded; errors are kept.

    ``bypass_csp``: ignore the report's Content-Security-Policy, so that only the escaping of model
    output stands between an injected script and its running.
    """

    def __init__(self, browser, path: Path, bypass_csp: bool = False) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        url = path.resolve().as_uri()

        def route(r):
            if r.request.url == url:
                r.continue_()
            else:
                self.requests.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        start = time.perf_counter()
        self.page.goto(url)
        self.wait("window.__abReady !== undefined", 60)
        self.open_s = time.perf_counter() - start

    def wait(self, expression: str, timeout_s: float = 10) -> None:
        """Poll ``expression`` from here (page-side polling evaluates strings, which the report's CSP forbids)."""
        end = time.perf_counter() + timeout_s
        while not self.page.evaluate(expression):
            if time.perf_counter() > end:
                raise AssertionError(f"timed out waiting for {expression}")
            time.sleep(0.01)

    def count(self) -> int:
        return int(self.page.get_attribute("#ab-count", "data-count"))

    def select(self, which: str, label: str) -> int:
        self.page.select_option(f"#ab-{which}", label=label)
        return self.count()

    def search(self, text: str) -> int:
        self.page.fill("#ab-search", text)
        self.wait(f"window.__abLastQuery === {json.dumps(text.strip().lower())}")
        return self.count()

    def close(self) -> None:
        self.context.close()


def _lines(*runs: Path) -> list[dict]:
    return [dict(json.loads(line), _run=r.name) for r in runs for line in (r / "samples.jsonl").read_text().splitlines() if line.strip()]


def _prompt(rec: dict) -> str:
    p = rec["prompt"]
    return p if isinstance(p, str) else [m["content"] for m in p if m["role"] == "user"][-1]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("browser")
    task = write_task(root / "task", n=60)
    base = make_run(task, root / "runs", "base", 0.9)
    tuned = make_run(task, root / "runs", "tuned", 0.3)
    state = {"i": 0}

    def inject(r):
        if r["sample_id"] in ("s001", "s002", "s003"):
            r["response"] = f"Sure. {INJECTED[state['i'] % 3]} (as asked)"
            state["i"] += 1
        return r

    rewrite_samples(tuned, inject)
    res = run_main("drift", base.path, tuned.path, "--output", root / "drift", "--run-id", "d")
    assert res.returncode == 0, res.stderr
    out = root / "report.html"
    res = run_main("report", base.path, tuned.path, root / "drift" / "d", "--out", out)
    assert res.returncode == 0, res.stderr
    return {"html": out, "lines": _lines(base.path, tuned.path), "base": base.path, "tuned": tuned.path}


def test_filters_and_search_match_samples_jsonl_and_nothing_injected_runs(browser, report) -> None:
    lines = report["lines"]
    pg = Page(browser, report["html"], bypass_csp=True)
    page = pg.page
    page.select_option("#ab-view", "list")  # a drift report opens side by side; one row per run first
    assert pg.count() == len(lines) == 120
    assert pg.select("run", "tuned") == sum(r["_run"] == "tuned" for r in lines)
    assert pg.select("run", "all") == 120
    assert pg.select("category", "cyber") == sum(r["category"] == "cyber" for r in lines)
    assert pg.select("label", "harmful") == sum(r["category"] == "cyber" and r["meta"]["label"] == "harmful" for r in lines)
    assert pg.select("verdict", "refusal_gcg = refusal") == sum(
        r["category"] == "cyber" and r["meta"]["label"] == "harmful" and r["judgments"]["refusal_gcg"]["label"] == "refusal" for r in lines)
    for which in ("category", "label"):
        pg.select(which, "all")
    pg.select("verdict", "any")
    # flipped between runs: samples whose 0/1 metrics differ between base and tuned, both of their rows
    by_key: dict = {}
    for r in lines:
        by_key.setdefault(r["sample_id"], []).append(r["metrics"])
    flipped = {k for k, ms in by_key.items() if any(len({m.get(x) for m in ms if m.get(x) is not None}) > 1 for x in ms[0])}
    page.check("#ab-flipped")
    assert pg.count() == 2 * len(flipped) and flipped
    page.uncheck("#ab-flipped")
    # full-text search over prompts, responses and ids, case-insensitive
    q = "Subject 1"
    assert pg.search(q) == sum(q.lower() in (_prompt(r) + " " + (r["response"] or "")).lower() or q.lower() in r["sample_id"] for r in lines)
    assert pg.search("__PWNED") == 3  # the injected responses are found as text
    assert len(page.query_selector_all(".ab-row")) == 3
    shown = []
    for i in range(3):
        page.click(f".ab-row >> nth={i}")  # a click redraws the rows: find each afresh
        shown.append(page.inner_text("#ab-detail"))
    assert "Sure. <script>window.__pwned=1</script> (as asked)" in shown[0]  # shown as text, base and tuned side by side
    assert all("base" in d and "tuned" in d for d in shown)
    assert all(any(f"Sure. {s} (as asked)" in d for d in shown) for s in INJECTED)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('script').length") == 2  # the report's data and code, nothing added
    assert page.evaluate("document.querySelectorAll('#ab-browser img, #ab-browser script').length") == 0
    # side by side: one row per sample, flips between the two runs shown
    pg.search("")
    page.select_option("#ab-view", "pair")
    assert pg.count() == len(by_key)
    page.check("#ab-flipped")
    assert pg.count() == len(flipped)
    assert pg.errors == [] and pg.requests == []
    pg.close()


def test_ten_thousand_samples_open_and_filter_without_freezing(browser, tmp_path) -> None:
    task = write_task(tmp_path / "task", n=5000)
    runs = [make_run(task, tmp_path / "runs", rid, refuse).path for rid, refuse in (("base", 0.8), ("tuned", 0.4))]
    out = tmp_path / "big.html"
    start = time.perf_counter()
    res = run_main("report", *runs, "--out", out)
    build_s = time.perf_counter() - start
    assert res.returncode == 0, res.stderr
    pg = Page(browser, out)
    page = pg.page
    assert pg.count() == 10_000
    ready = page.evaluate("window.__abReady")
    assert ready["rows"] == 10_000
    assert page.evaluate("document.querySelectorAll('.ab-row').length") < 60  # only the rows in view are in the page
    timings = {}
    for what, act in (("category", lambda: pg.select("category", "fraud")), ("search", lambda: pg.search("subject 3")),
                      ("flipped", lambda: (page.check("#ab-flipped"), pg.count())[1])):
        n = act()
        timings[what] = page.evaluate("window.__abLastFilterMs")
        assert 0 < n < 10_000
    page.evaluate("document.getElementById('ab-list').scrollTop = 1e6")
    page.wait_for_timeout(100)
    assert page.query_selector_all(".ab-row")  # scrolled to the end, rows drawn there
    size_mb = out.stat().st_size / 1e6
    print(f"\n10,000 samples: report built in {build_s:.1f} s, {size_mb:.2f} MB; page ready in {pg.open_s:.2f} s "
          f"(script {ready['ms']:.0f} ms); filters: " + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))
    # without freezing: generous bounds for a shared 2-core machine (measured: well under a second)
    assert pg.open_s < 15 and max(timings.values()) < 2000
    assert pg.errors == [] and pg.requests == []
    pg.close()
    shutil.rmtree(tmp_path / "runs")
