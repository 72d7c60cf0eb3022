"""The report as a document: sections of paragraphs, tables, figures, examples and the sample browser.

``build_document`` runs the section builders of ``SECTIONS`` in order; each takes the ``ReportData``
(and whether figures are wanted) and returns its sections, or none when it has nothing to show. A new
section is one builder in its own module, added to ``SECTIONS``. ``render`` turns the document into
Markdown or HTML.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from alignbench.report import browser, drift_section, frontier, headline, plots, ranking, tables, trace_section, track_section, wide
from alignbench.report.blocks import Block, Browser, Document, Examples, Image, Section, Table, Text
from alignbench.report.collect import ReportData
from alignbench.report.jury import jury_agreement_table
from alignbench.report.levels import level_curve

__all__ = ["build_document", "Document", "Section", "Text", "Table", "Image", "Examples", "Browser", "Block", "SECTIONS"]

Builder = Callable[[ReportData, bool], list[Section]]


def _image(name: str, fig, caption: str) -> list[Block]:
    return [] if fig is None else [Image(name, plots.figure_png(fig), caption)]


def _slug(*parts: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-").lower()


def _images(with_plots: bool):
    return _image if with_plots else (lambda *a: [])


def frontier_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    points = frontier.frontier_points(data.runs, data.labels) if not data.runs.empty else pd.DataFrame()
    if points.empty:
        return []
    t = points.assign(**{"over-refusal": [tables.fmt_value(p.x, p.x_low, p.x_high) for p in points.itertuples()],
                         "harm axis": [f"{p.y_metric} {tables.fmt_value(p.y, p.y_low, p.y_high)}" for p in points.itertuples()]})
    blocks: list[Block] = _images(with_plots)("frontier", frontier.plot_frontier(points, data.labels),
                                              "Harm vs over-refusal frontier: one point per run, 95% CI crosses")
    blocks.append(Table(t.set_index(["run", "task"])[["over-refusal", "harm axis"]], "frontier points"))
    return [Section("Harm vs over-refusal", blocks)]


def run_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    return [Section("Runs", [Table(tables.run_info_table(data.infos))])] if data.infos else []


def summary_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    runs, samples, labels, img = data.runs, data.samples, data.labels, _images(with_plots)
    if runs.empty:
        return []
    s = Section("Summary", [Text("Each cell: value [95% CI] (n samples). Runs are columns.")])
    s.blocks.append(Table(tables.summary_table(runs, labels)))
    s.blocks += img("harm-bars", plots.plot_metric_bars(runs, labels=labels), "Harmful rate and over-refusal per run")
    curve = level_curve(runs, samples)
    special = set(runs[runs["metric"].isin(plots.HARM_METRICS)]["task"]) | set(curve["task"])
    for task in dict.fromkeys(runs["task"]):
        if task not in special:
            s.blocks += img(_slug("task", task), plots.plot_task_metrics(runs, task, labels), f"{task}: metrics in [0, 1] per run")
    return [s]


def breakdown_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    if data.runs.empty:
        return []
    img, blocks = _images(with_plots), []
    for wt in wide.wide_tables(data.runs, data.labels):
        sort = f", sorted by {wt.sort_metric}" + (f" of {data.labels[-1]}" if len(data.labels) > 1 else "") if wt.sort_metric else ""
        blocks.append(Table(wt.df, f"{wt.task} by {wt.breakdown}: value [95% CI]{sort}", small=wt.small,
                            note=wide.small_note() if any(wt.small) else "", wide=True))
        for metric in plots.HARM_METRICS:
            blocks += img(_slug(wt.task, wt.breakdown, metric), plots.plot_category_bars(data.runs, metric, wt.task, data.labels, wt.breakdown),
                          f"{wt.task}: {metric} by {wt.breakdown}")
    return [Section("Breakdowns", blocks)] if blocks else []


def compression_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    if data.runs.empty:
        return []
    curve = level_curve(data.runs, data.samples)
    if curve.empty:
        return []
    t = curve.assign(cell=[tables.fmt_value(r.value, r.ci_low, r.ci_high, r.n) for r in curve.itertuples()])
    t = t.pivot_table(index=["task", "metric", "run"], columns="level", values="cell", aggfunc="first").fillna("")
    t.columns = [f"c={c:g}" for c in t.columns]
    return [Section("Compression levels", [Table(t, "value per compression level c")]
                    + _images(with_plots)("compression-curve", plots.plot_level_curve(curve, data.labels),
                                          "Constraint compliance and semantic accuracy by compression level"))]


def judge_sections(data: ReportData, with_plots: bool = True) -> list[Section]:
    samples, labels, blocks = data.samples, data.labels, []
    if not samples.empty:
        errs = tables.judge_error_table(samples, labels)
        if not errs.empty:
            total = tables.judge_error_total(samples)
            blocks += [Text(f"Failed judgments (errors / samples judged); {total} in all. A failed judgment keeps its sample, "
                            "which is left out of that judge's metrics."), Table(errs, "judge errors")]
        jury = jury_agreement_table(samples)
        if not jury.empty:
            blocks += [Text("LLM-jury agreement over samples every juror labelled (Fleiss' kappa: 1 perfect, 0 chance)."),
                       Table(tables.fmt_frame(jury.set_index(["run", "task", "judge"])), "jury agreement")]
    validity = tables.judge_validity_table([(e.source, e.data) for e in data.extras_of("judge_eval")])
    if not validity.empty:
        blocks += [Text("Judge validity against human labels (from judge_eval.json)."), Table(validity, "judge validity")]
    return [Section("Judges", blocks)] if blocks else []


def _pair(data: ReportData) -> tuple[str, str] | None:
    """The (base, tuned) runs of a drift among the loaded runs, else the first two runs."""
    by_id = {str(info.get("run_id")): label for label, info in data.infos.items()}
    for e in data.extras_of("drift"):
        sides = [e.data.get(k) for k in ("base", "tuned")] if isinstance(e.data, dict) else []
        ids = [str(s.get("run_id")) if isinstance(s, dict) else str(s) for s in sides]
        if len(ids) == 2 and all(i in by_id for i in ids):
            return by_id[ids[0]], by_id[ids[1]]
    return None


def sample_sections(data: ReportData, with_plots: bool = True, examples_per_run: int = 3) -> list[Section]:
    if data.samples.empty and not data.extras_of("pairs"):
        return []
    blocks: list[Block] = []
    ex = tables.risky_examples(data.samples, per_run=examples_per_run) if not data.samples.empty else pd.DataFrame()
    if not ex.empty:
        blocks.append(Examples(ex, "A few risky outcomes per run, model output shown verbatim (escaped)", collapsed=True))
    pairs = ranking.disagreement_samples(data)  # compared pairs the jurors split on, as rows of their own
    samples = pd.concat([data.samples, pairs], ignore_index=True, sort=False) if not pairs.empty else data.samples
    labels = data.labels + list(dict.fromkeys(pairs["run"])) if not pairs.empty else data.labels
    payload = browser.browser_payload(samples, labels, _pair(data))
    blocks.append(Browser(payload, len(samples)))
    return [Section("Samples", blocks)]


#: The report's sections, in order.
SECTIONS: list[Builder] = [headline.sections, frontier_sections, track_section.sections, run_sections, ranking.sections, summary_sections,
                           breakdown_sections, compression_sections, judge_sections, drift_section.sections, trace_section.sections,
                           sample_sections]


def build_document(data: ReportData, with_plots: bool = True) -> Document:
    secs = [s for builder in SECTIONS for s in builder(data, with_plots)]
    labels = data.labels
    title = "alignbench report: " + ", ".join(labels) if labels else "alignbench report"
    return Document(title, secs, plots_omitted=not with_plots)
