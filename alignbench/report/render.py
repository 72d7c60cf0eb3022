"""Rendering a report ``Document`` as one self-contained HTML file or as Markdown.

HTML: every piece of text, table cell and example is HTML-escaped (model output is untrusted: a
response containing ``<script>`` is shown, never run); images are inline base64 PNGs, the style is
inline and the sample browser's data and script are embedded, so the file needs nothing else. A
Content-Security-Policy allows only that one script (by hash) and no network access at all. Markdown: text and table cells are escaped the same way
(Markdown renders HTML entities; pipes are escaped too), examples are indented code blocks (shown
literally), and figures are written as PNG files next to the .md file,
or left out with a note when there is no file to put them beside.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from alignbench import __version__
from alignbench.report.blocks import Browser, Document, Examples, Image, Marked, Table, Text
from alignbench.report.browser import asset, browser_html, script_hash

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}caption{caption-side:top;text-align:left;font-weight:600;padding:.2em 0}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;border:1px solid #e4e4e4;padding:.4em;margin:.2em 0;font-size:.85em}
.example{border-left:3px solid #C44E52;padding-left:.8em;margin:1em 0}.meta{color:#555;font-size:.85em}
.headline{font-size:1.02em;line-height:1.45;background:#f6f8fb;border-left:4px solid #4C72B0;padding:.6em .9em;margin:.6em 0}
tr.small-n td{color:#777;background:#fafafa}tr.small-n td:first-child{font-style:italic}.note{font-size:.8em;color:#555;margin:.1em 0 .8em}
.wide{overflow-x:auto}.wide td{white-space:nowrap}
.toc{font-size:.85em;margin:.4em 0 1em}.toc a{color:#335}
details.examples summary{cursor:pointer;color:#335;margin:.4em 0}
mark{background:#ffe08a;padding:0 .1em}
"""


def esc(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _frame_rows(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a table with its index as leading columns."""
    flat = df.reset_index() if any(n is not None for n in df.index.names) else df.copy()
    header = [str(c) for c in flat.columns]
    rows = [["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in row] for row in flat.itertuples(index=False)]
    return header, rows


# HTML -----------------------------------------------------------------------------------------------

def _html_table(t: Table) -> str:
    header, rows = _frame_rows(t.df)
    cap = f"<caption>{esc(t.caption)}</caption>" if t.caption else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    small = t.small or [False] * len(rows)
    body = "".join(('<tr class="small-n">' if sm else "<tr>") + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r, sm in zip(rows, small))
    note = f'<p class="note">{esc(t.note)}</p>' if t.note else ""
    table = f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return (f'<div class="wide">{table}</div>' if t.wide else table) + note


def _html_examples(e: Examples) -> str:
    parts = []
    for r in e.df.itertuples(index=False):
        parts.append(f'<div class="example"><div class="meta">{esc(r.run)} · {esc(r.outcome)} · {esc(r.task)} / {esc(r.sample_id)}'
                     f"{' · ' + esc(r.category) if r.category else ''}</div>"
                     f"<div>prompt</div><pre>{esc(r.prompt)}</pre>"
                     + (f"<div>base response</div><pre>{esc(r.base_response)}</pre>" if getattr(r, "base_response", None) else "")
                     + f"<div>{'tuned response' if getattr(r, 'base_response', None) else 'response'}</div><pre>{esc(r.response)}</pre></div>")
    return "".join(parts)


def marked_segments(m: Marked) -> list[tuple[str, list[str]]]:
    """``m.text`` cut at every mark's ends: (piece, the notes of the marks covering it), in order."""
    cuts = sorted({0, len(m.text)} | {max(0, min(len(m.text), x)) for a, b, _ in m.marks for x in (a, b)})
    return [(m.text[a:b], [note for s, e, note in m.marks if s <= a and b <= e]) for a, b in zip(cuts, cuts[1:]) if b > a]


def _html_marked(m: Marked) -> str:
    pieces = "".join(f'<mark title="{esc("; ".join(notes))}">{esc(piece)}</mark>' if notes else esc(piece)
                     for piece, notes in marked_segments(m))
    cap = f'<div class="meta">{esc(m.caption)}</div>' if m.caption else ""
    return f'<div class="example">{cap}<pre>{pieces}</pre></div>'


def _anchor(title: str) -> str:
    return "sec-" + "".join(c if c.isalnum() else "-" for c in title.lower())


def render_html(doc: Document) -> str:
    body, scripts = [], []
    for sec in doc.sections:
        body.append(f'<h2 id="{_anchor(sec.title)}">{esc(sec.title)}</h2>')
        for b in sec.blocks:
            if isinstance(b, Text):
                body.append(f'<p class="headline">{esc(b.text)}</p>' if b.style == "headline" else f"<p>{esc(b.text)}</p>")
            elif isinstance(b, Table):
                body.append(_html_table(b))
            elif isinstance(b, Image):
                data = base64.b64encode(b.png).decode("ascii")
                body.append(f'<figure><img alt="{esc(b.caption)}" src="data:image/png;base64,{data}"><figcaption>{esc(b.caption)}</figcaption></figure>')
            elif isinstance(b, Examples):
                body.append(f'<details class="examples"><summary>{esc(b.caption or "examples")} ({len(b.df)})</summary>{_html_examples(b)}</details>'
                            if b.collapsed else _html_examples(b))
            elif isinstance(b, Marked):
                body.append(_html_marked(b))
            elif isinstance(b, Browser):
                html_, script = browser_html(b.payload)
                body.append(f"<p>Every sample of every run ({b.n_samples}): filter, search, and click a row for the full texts, "
                            "judgments and metrics (all runs of that sample side by side).</p>" + html_)
                scripts.append(script)
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src " + (" ".join(script_hash(s) for s in scripts) or "'none'")
           + "; connect-src 'none'; form-action 'none'; base-uri 'none'")
    style = _CSS + (asset("browser.css") if scripts else "")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{esc(doc.title)}</title><style>{style}</style></head><body>", f"<h1>{esc(doc.title)}</h1>",
           f'<p class="meta">generated by alignbench {esc(__version__)}</p>',
           '<nav class="toc">' + " · ".join(f'<a href="#{_anchor(s.title)}">{esc(s.title)}</a>' for s in doc.sections) + "</nav>", *body, "</body></html>"]
    return "\n".join(out) + "\n"


# Markdown -------------------------------------------------------------------------------------------

def md_cell(text: object) -> str:
    return html.escape("" if text is None else str(text), quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(t: Table) -> str:
    header, rows = _frame_rows(t.df)
    lines = [f"**{md_cell(t.caption)}**", ""] if t.caption else []
    lines.append("| " + " | ".join(md_cell(h) for h in header) + " |")
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md_block_text(text: object) -> str:
    """Untrusted multi-line text as an indented code block: Markdown shows it literally (HTML-escaped by the renderer)."""
    return "\n".join("    " + line for line in ("" if text is None else str(text)).splitlines() or [""])


def render_markdown(doc: Document, out: Path | None = None) -> str:
    """Markdown of the document; with ``out`` the figures are written beside it as ``<stem>-<name>.png``."""
    lines = [f"# {md_cell(doc.title)}", "", f"_generated by alignbench {__version__}_", ""]
    omitted = 0
    for sec in doc.sections:
        lines += [f"## {md_cell(sec.title)}", ""]
        for b in sec.blocks:
            if isinstance(b, Text):
                lines += [("> " if b.style == "headline" else "") + md_cell(b.text), ""]
            elif isinstance(b, Table):
                lines += [_md_table(b), ""] + ([md_cell(b.note), ""] if b.note else [])
            elif isinstance(b, Marked):  # a code block shows the text literally; marked ranges between ⟦ ⟧
                text = "".join(f"⟦{piece}⟧" if notes else piece for piece, notes in marked_segments(b))
                lines += ([f"**{md_cell(b.caption)}**", ""] if b.caption else []) + [_md_block_text(text), ""]
            elif isinstance(b, Browser):
                lines += [f"_The sample browser ({b.n_samples} samples) is in the HTML report (--format html)._", ""]
            elif isinstance(b, Image):
                if out is None:
                    omitted += 1
                    continue
                png = out.with_name(f"{out.stem}-{b.name}.png")
                png.write_bytes(b.png)
                lines += [f"![{md_cell(b.caption)}]({png.name})", ""]
            elif isinstance(b, Examples):
                lines += [md_cell(b.caption) + ":", ""] if b.caption else []
                for r in b.df.itertuples(index=False):
                    cat = f" · {md_cell(r.category)}" if r.category else ""
                    lines += [f"**{md_cell(r.run)} · {md_cell(r.outcome)} · {md_cell(r.task)} / {md_cell(r.sample_id)}{cat}**", "",
                              "prompt:", "", _md_block_text(r.prompt), ""]
                    if getattr(r, "base_response", None):
                        lines += ["base response:", "", _md_block_text(r.base_response), "", "tuned response:"]
                    else:
                        lines += ["response:"]
                    lines += ["", _md_block_text(r.response), ""]
    if omitted or doc.plots_omitted:
        lines += ["_Plots omitted: this Markdown has no file to put them beside; use --out FILE.md to get them as PNG files, "
                  "or --format html for one self-contained file._", ""]
    return "\n".join(lines)
