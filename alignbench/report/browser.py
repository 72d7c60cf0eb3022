"""The sample browser: every sample of every run, embedded in the HTML report as one JSON document.

``browser_payload`` turns ``ReportData.samples`` into a compact column-oriented payload (texts in one
de-duplicated string table, small vocabularies for runs, tasks, categories, labels and verdicts);
``browser_html`` embeds it with the browser's own script and style (``assets/browser.js``,
``assets/browser.css``). The script renders only the rows in view (fixed-height rows in a scrolled
container), builds every piece of model text with ``textContent`` (never as markup), and fetches
nothing; the JSON is escaped so that no ``</script>`` (or any ``<``, ``>``, ``&``) can appear inside it.

Per sample the payload also carries two flags the filters use:

- **judges disagree**: two judges that decide the same question (refused or not; harmful or not) give
  opposite decisions, or the jurors of an LLM jury are not unanimous;
- **flipped**: the sample (same task and id) has a different value of some 0/1 metric in another run.
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from typing import Any

import pandas as pd

from alignbench.report.jury import verdicts_of
from alignbench.report.tables import judge_names

MAX_TEXT = 20_000  # characters of one prompt/response kept (the rest is in samples.jsonl)
CLIP_MARK = "\n[… clipped by the report; the full text is in samples.jsonl]"

#: Judge labels by the decision they state, for "judges disagree". (TraceShield's ``refuse`` is its own verdict on
#: an answer, that it would have been stopped, not a statement that the model refused: it states neither.)
DECISIONS = {
    "refused": {"refusal", "refused", "full_refusal", "partial_refusal"},
    "complied": {"compliance", "complied", "comply", "full_compliance", "answered"},
    "unsafe": {"unsafe", "harmful", "jailbroken", "controversial"},
    "safe": {"safe", "unharmful", "harmless", "not_jailbroken"},
}
#: Judges whose yes/no answers the harm question (HarmBench's classifiers); elsewhere yes/no may mean anything.
YES_NO_HARM = ("harmbench",)
_AXIS = {"refused": ("refusal", 1), "complied": ("refusal", 0), "unsafe": ("harm", 1), "safe": ("harm", 0)}
_DECISION_OF = {label: d for d, labels in DECISIONS.items() for label in labels}


def decision(label: Any, judge: str = "") -> tuple[str, int] | None:
    """(axis, value) a judge label states: ("refusal", 1) for a refusal, ("harm", 0) for a safe verdict; else None."""
    word = str(label).strip().lower() if isinstance(label, str) else None
    if word in ("yes", "no") and judge.startswith(YES_NO_HARM):
        return ("harm", int(word == "yes"))
    d = _DECISION_OF.get(word) if word else None
    return _AXIS[d] if d else None


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _text(v: Any) -> str:
    if _missing(v):
        return ""
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else str(v)
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + CLIP_MARK


class _Vocab:
    """Strings to small integers (index into ``items``); ``None`` stays None."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: Any) -> int | None:
        if _missing(value) or value == "":
            return None
        s = str(value)
        if s not in self._index:
            self._index[s] = len(self.items)
            self.items.append(s)
        return self._index[s]


def _jurors(raw: Any) -> tuple[str, bool]:
    """("juror: label, ...", disagree) of a jury judgment's raw verdicts."""
    verdicts = verdicts_of(raw)
    if not verdicts:
        return "", False
    labels = [(str(v.get("judge")), v.get("label")) for v in verdicts]
    text = ", ".join(f"{j}: {'failed' if lab is None else lab}" for j, lab in labels)
    seen = {str(lab) for _, lab in labels if lab is not None}
    return text, len(seen) > 1


def _sample_key(rec: dict[str, Any]) -> str:
    """The sample's id, with its epoch when the run repeated samples (``--epochs``): ``s001 (epoch 2)``."""
    epoch = rec.get("epoch")
    sid = str(rec.get("sample_id"))
    return sid if _missing(epoch) else f"{sid} (epoch {int(epoch)})"


def _binary(values: pd.Series) -> bool:
    v = values.dropna()
    return not v.empty and bool(v.isin([0.0, 1.0]).all())


def browser_payload(samples: pd.DataFrame, labels: list[str], pair: tuple[str, str] | None = None) -> dict[str, Any]:
    """The browser's data: ``columns`` names the fields of each row in ``rows``; see the module docstring."""
    texts, runs, tasks, cats, labs, verdicts = _Vocab(), _Vocab(), _Vocab(), _Vocab(), _Vocab(), _Vocab()
    for r in labels:
        runs(r)
    judges = judge_names(samples) if not samples.empty else []
    metric_cols = [c for c in samples.columns if c.startswith("metric.") and samples[c].map(lambda v: _missing(v) or isinstance(v, (int, float))).all()]
    metrics = [c[len("metric."):] for c in metric_cols]
    binary = [m for m, c in zip(metrics, metric_cols) if _binary(samples[c].astype(float))]
    flipped = _flips(samples, binary, metrics) if len(labels) > 1 else {}
    label_col = "meta.label" if "meta.label" in samples else None
    rows = []
    for rec in samples.to_dict("records"):
        judged, disagree, seen = [], False, {}
        for j in judges:
            label, score, error = rec.get(f"judge.{j}.label"), rec.get(f"judge.{j}.score"), rec.get(f"judge.{j}.error")
            jurors, split = _jurors(rec.get(f"judge.{j}.raw"))
            disagree |= split
            d = decision(label, j)
            if d is not None:
                disagree |= seen.setdefault(d[0], d[1]) != d[1]
            if _missing(label) and _missing(score) and _missing(error):
                judged.append(None)
                continue
            numeric = isinstance(score, (int, float)) and not _missing(score)
            judged.append([verdicts(label), round(float(score), 4) if numeric else None, texts(_text(error)), texts(jurors)])
        key = (rec.get("task"), _sample_key(rec))
        values = [None if _missing(rec.get(c)) else round(float(rec[c]), 6) for c in metric_cols]
        rows.append([runs(rec.get("run")), tasks(rec.get("task")), key[1], cats(rec.get("category")),
                     labs(rec.get(label_col)) if label_col else None, texts(_text(rec.get("prompt_text"))),
                     texts(_text(rec.get("response"))), judged, values, int(disagree), flipped.get(key, [])])
    return {"version": 1, "columns": ["run", "task", "sample_id", "category", "label", "prompt", "response", "judgments", "metrics",
                                      "disagree", "flipped"],
            "runs": runs.items, "tasks": tasks.items, "categories": cats.items, "labels": labs.items, "judges": judges,
            "verdicts": verdicts.items, "metrics": metrics, "binary": [metrics.index(m) for m in binary],
            "pair": list(pair) if pair else None, "texts": texts.items, "rows": rows}


def _flips(samples: pd.DataFrame, binary: list[str], metrics: list[str]) -> dict[tuple[Any, str], list[int]]:
    """(task, sample_id) -> indices (into ``metrics``) of the 0/1 metrics whose value differs across runs."""
    if not binary or samples.empty:
        return {}
    metric_index = {m: i for i, m in enumerate(metrics)}
    cols = [f"metric.{m}" for m in binary]
    df = samples[["run", "task", "sample_id"] + cols].copy()
    df["sample_id"] = [_sample_key(r) for r in samples[["sample_id"] + (["epoch"] if "epoch" in samples else [])].to_dict("records")]
    grouped = df.groupby(["task", "sample_id"], sort=False)[cols].nunique(dropna=True)
    counts = df.groupby(["task", "sample_id"], sort=False)["run"].nunique()
    out: dict[tuple[Any, str], list[int]] = {}
    for key, row in grouped[counts.reindex(grouped.index) > 1].iterrows():
        idx = [metric_index[m] for m, n in zip(binary, row.to_numpy()) if n > 1]
        if idx:
            out[key] = idx
    return out


def embed_json(payload: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` (so no ``</script>``) appears."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def asset(name: str) -> str:
    return resources.files("alignbench.report").joinpath("assets", name).read_text(encoding="utf-8")


def script_hash(script: str) -> str:
    """The CSP source (``'sha256-...'``) that allows exactly this inline script."""
    import base64

    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def browser_html(payload: dict[str, Any]) -> tuple[str, str]:
    """(HTML of the browser, its script) to place in the report; the caller allows the script by hash."""
    script = asset("browser.js")
    html = (f'<div id="ab-browser" class="ab-browser"></div>'
            f'<script type="application/json" id="ab-data">{embed_json(payload)}</script>'
            f"<script>{script}</script>")
    return html, script
