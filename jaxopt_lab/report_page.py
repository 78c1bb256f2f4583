"""Reports: a self-contained `index.html` (figures embedded, readable offline) and `summary.md`.

A report is a list of `Section`s, each with a title, markdown-ish text,
figures (PNG paths), tables (lists of row dicts), an optional preformatted
block (a config), folded tables and links to files beside the page. The same
builder serves the demo (one section per experiment), the protocols and a
sweep's results folder (`jaxopt_lab.sweep.report` builds that one's sections);
this module only assembles pages and imports nothing from `jaxopt_lab.sweep`.

Hover: a figure drawn through `jaxopt_lab.plots` carries hover regions in its
PNG; the page embeds them as JSON next to the image and a small inline script
shows a region's text (a run's or configuration's values) under the mouse.
Everything is inline -- no CDN, no plotting library in the browser -- so the
page works opened from disk with no network, and `summary.md` keeps the
same PNGs.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaxopt_lab.plots import figure_info


@dataclass
class Section:
    """One part of a report.

    `code` is shown preformatted (a config); `folded_tables` are tables shown
    closed (click to open) because they are long; `links` are (label, path
    relative to the page) pairs of files that lie beside the page.
    """

    title: str
    text: str = ""
    figures: list[Path] = field(default_factory=list)
    tables: list[tuple[str, list[Mapping[str, Any]]]] = field(default_factory=list)
    code: str = ""
    folded_tables: list[tuple[str, list[Mapping[str, Any]]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


def format_value(v: Any) -> str:
    """A cell of a table: 4 significant digits, true/false, empty for None and NaN."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    return str(v)


def text_cell(v: Any) -> str:
    """`format_value` for a plain-text table, where an empty cell would shift the columns: "-"."""
    return format_value(v) or "-"


def _table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p><em>(no rows)</em></p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table_md(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(format_value(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _text_html(text: str) -> str:
    out = []
    for para in text.strip().split("\n\n"):
        lines = para.strip().splitlines()
        if lines and lines[0].startswith("```") and lines[-1].startswith("```"):
            # A fenced block (a config to copy): kept verbatim, line breaks and all.
            out.append(f"<pre>{html.escape(chr(10).join(lines[1:-1]))}</pre>")
        elif lines and all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{html.escape(line.lstrip()[2:])}</li>" for line in lines)
            out.append(f"<ul>{items}</ul>")
        elif para.strip():
            out.append(f"<p>{html.escape(para.strip())}</p>")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}th{background:#f0f0f0}
nav li{margin:.1em 0}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0}figcaption{font-size:.8em;color:#555}.clipped{color:#b00}
#hover-tip{position:absolute;display:none;white-space:pre;background:#222;color:#fff;font-size:.8em;
padding:.3em .5em;border-radius:3px;pointer-events:none;z-index:10}
"""

# Shows the hover region under the mouse: regions are fractions of the image (origin top left),
# so they hold at any displayed size; the smallest-distance region wins where they overlap.
_HOVER_JS = """
(function(){
var tip=document.createElement('div');tip.id='hover-tip';document.body.appendChild(tip);
document.querySelectorAll('img[data-hover]').forEach(function(img){
var regions=JSON.parse(document.getElementById(img.dataset.hover).textContent);
img.addEventListener('mousemove',function(e){
var r=img.getBoundingClientRect(),fx=(e.clientX-r.left)/r.width,fy=(e.clientY-r.top)/r.height,best=null,bd=1e9;
regions.forEach(function(g){if(fx>=g.x0&&fx<=g.x1&&fy>=g.y0&&fy<=g.y1){
var d=Math.abs(fx-(g.x0+g.x1)/2)+Math.abs(fy-(g.y0+g.y1)/2);if(d<bd){bd=d;best=g;}}});
if(best){tip.textContent=best.text;tip.style.display='block';
tip.style.left=(e.pageX+12)+'px';tip.style.top=(e.pageY+12)+'px';}else{tip.style.display='none';}});
img.addEventListener('mouseleave',function(){tip.style.display='none';});});
})();
"""


def _figure_html(fig: Path, index: str) -> str:
    """An `<img>` with the PNG inlined, its text check and, when it has them, its hover regions."""

    info = figure_info(fig)
    data = base64.b64encode(fig.read_bytes()).decode()
    check = info.get("text_check", "unchecked")
    attrs = f" data-text-check='{html.escape(check)}'"
    extra = ""
    if info.get("hover"):
        attrs += f" data-hover='hover-{index}'"
        payload = json.dumps(info["hover"]).replace("</", "<\\/")
        extra = f"<script type='application/json' id='hover-{index}'>{payload}</script>"
    caption = html.escape(fig.name)
    if check.startswith("clipped"):
        caption += f" <span class='clipped'>({html.escape(check)})</span>"
    elif info.get("hover"):
        caption += " (hover for values)"
    return (f"<figure><img alt='{html.escape(fig.name)}'{attrs} src='data:image/png;base64,{data}'>{extra}"
            f"<figcaption>{caption}</figcaption></figure>")


def write_report(folder: str | os.PathLike, title: str, sections: Sequence[Section], intro: str = "") -> Path:
    """Write `index.html` (figures inlined as base64) and `summary.md` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(_text_html(intro))
    parts.append("<nav><ul>" + "".join(
        f"<li><a href='#s{i}'>{html.escape(s.title)}</a></li>" for i, s in enumerate(sections)) + "</ul></nav>")
    md = [f"# {title}\n", intro.strip() + "\n" if intro else ""]
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        parts.append(_text_html(s.text))
        md.append(f"\n## {s.title}\n\n{s.text.strip()}\n")
        if s.code:
            parts.append(f"<pre>{html.escape(s.code)}</pre>")
            md.append(f"\n```\n{s.code.rstrip()}\n```\n")
        if s.links:
            parts.append("<p>Files: " + ", ".join(
                f"<a href='{html.escape(href)}'>{html.escape(label)}</a>" for label, href in s.links) + "</p>")
            md.append("\nFiles: " + ", ".join(f"[{label}]({href})" for label, href in s.links) + "\n")
        for name, rows in s.tables:
            parts.append(f"<h3>{html.escape(name)}</h3>" + _table_html(rows))
            md.append(f"\n**{name}**\n\n{_table_md(rows)}")
        for j, fig in enumerate(s.figures):
            fig = Path(fig)
            parts.append(_figure_html(fig, f"{i}-{j}"))
            rel = os.path.relpath(fig, folder)
            md.append(f"\n![{fig.stem}]({rel})\n")
        for name, rows in s.folded_tables:
            parts.append(f"<details><summary>{html.escape(name)} ({len(rows)} rows)</summary>"
                         + _table_html(rows) + "</details>")
    parts.append(f"<script>{_HOVER_JS}</script></body></html>")
    (folder / "index.html").write_text("\n".join(parts))
    (folder / "summary.md").write_text("\n".join(md))
    return folder / "index.html"
