"""Reports over runs: summary tables, breakdowns, judge health, drift, plots; as HTML or Markdown.

    from alignbench.report import write_report
    write_report(["results/base", "results/tuned"], "report.html")          # one self-contained file

Modules: ``collect`` (load runs and result files), ``tables`` (DataFrames of what is compared),
``jury`` (LLM-jury agreement), ``levels`` (compression curves), ``drift`` (drift / token-shift files),
``plots`` (matplotlib figures, reusable from notebooks), ``document`` (what a report contains) and
``render`` (HTML / Markdown).
"""

from __future__ import annotations

from pathlib import Path

from alignbench.errors import UsageError
from alignbench.records.files import METRICS_FILE, RUN_FILE, SAMPLES_FILE
from alignbench.report.collect import EXTRA_FILES, ReportData, collect
from alignbench.report.document import Document, build_document
from alignbench.report.render import render_html, render_markdown

FORMATS = ("html", "md")
DATA_FILES = (RUN_FILE, SAMPLES_FILE, METRICS_FILE, *EXTRA_FILES)  # what a report reads: never what it writes


def check_out(target: Path, inputs: list[str | Path]) -> None:
    """Refuse a report file that would replace data: a run's (or a result's) data file by its name, or an input."""
    if target.name in DATA_FILES:
        raise UsageError(f"--out {target}: {target.name} is the name of a run's data file, which the report would replace; "
                         f"name the report file, e.g. {target.with_name('report.html')}")
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_file() and target.exists() and target.resolve() == p.resolve():
            raise UsageError(f"--out {target}: that is one of the report's inputs; name another file")


def format_of(out: str | Path | None, fmt: str | None) -> str:
    """The format asked for, else the one ``out``'s extension names, else html."""
    if fmt:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".") if out and str(out) != "-" else ""
    if suffix in ("md", "markdown"):
        return "md"
    return "html"


def write_report(paths: list[str | Path], out: str | Path | None = None, fmt: str | None = None) -> tuple[str, Path | None]:
    """Build the report of ``paths`` and write it to ``out`` (``None`` or ``"-"``: return it only).

    Returns (text, path written). Markdown figures go beside ``out`` as PNG files.
    """
    fmt = format_of(out, fmt)
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    data = collect(list(paths))
    if data.runs.empty and not data.extras:
        raise UsageError("report: the given folders hold no metrics or result files")
    target = None if out is None or str(out) == "-" else Path(out)
    if target is not None:
        check_out(target, list(paths))
        if target.is_dir():
            raise UsageError(f"--out {target}: is a folder; give a file name such as {target / ('report.' + fmt)}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {target}: cannot create its folder ({exc.strerror or exc})") from None
    doc = build_document(data, with_plots=fmt == "html" or target is not None)
    text = render_html(doc) if fmt == "html" else render_markdown(doc, target)
    if target is not None:
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {target}: cannot write ({exc.strerror or exc})") from None
    return text, target


__all__ = ["write_report", "collect", "build_document", "render_html", "render_markdown", "ReportData", "Document", "format_of"]
