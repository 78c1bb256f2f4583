"""Reports: a self-contained `index.html` (figures embedded, readable offline) and `summary.md`.

A report is a list of `Section`s, each with a title, markdown-ish text,
figures (PNG paths) and tables (lists of row dicts). The same builder serves
the demo (one section per experiment) and a sweep's results folder.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[Path] = field(default_factory=list)
    tables: list[tuple[str, list[Mapping[str, Any]]]] = field(default_factory=list)


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
"""


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
        for name, rows in s.tables:
            parts.append(f"<h3>{html.escape(name)}</h3>" + _table_html(rows))
            md.append(f"\n**{name}**\n\n{_table_md(rows)}")
        for fig in s.figures:
            fig = Path(fig)
            data = base64.b64encode(fig.read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(fig.name)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(fig.name)}</figcaption></figure>")
            rel = os.path.relpath(fig, folder)
            md.append(f"\n![{fig.stem}]({rel})\n")
    parts.append("</body></html>")
    (folder / "index.html").write_text("\n".join(parts))
    (folder / "summary.md").write_text("\n".join(md))
    return folder / "index.html"


# ----------------------------------------------------------------------------- sweeps


def _numeric_axes(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    axes = []
    for k in keys:
        vals = {r[k] for r in rows}
        if len(vals) > 1 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            axes.append(k)
    return axes


def sweep_figures(folder: Path, rows: Sequence[Mapping[str, Any]], histories: Mapping[str, np.ndarray],
                  keys: Sequence[str]) -> tuple[list[Path], list[tuple[str, list[dict]]]]:
    """Heatmaps over pairs of swept numeric axes, the best runs' curves, and the best-of-k curve."""
    from jaxopt_lab import plots
    from jaxopt_lab.sweep import results as results_mod

    figures: list[Path] = []
    tables: list[tuple[str, list[dict]]] = []
    has_val = any(r.get("final_val_accuracy") is not None for r in rows)
    acc_key = "final_val_accuracy" if has_val else "final_train_accuracy"
    loss_key = "best_val_loss" if has_val else "final_train_loss"
    metric = acc_key if any(r.get(acc_key) is not None for r in rows) else loss_key
    axes = _numeric_axes(rows, keys)
    for a, b in itertools.islice(itertools.combinations(axes, 2), 3):
        xs = sorted({r[a] for r in rows})
        ys = sorted({r[b] for r in rows})
        z = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                vals = [r[metric] for r in rows if r[a] == xv and r[b] == yv and not r["diverged"]
                        and r.get(metric) is not None]
                if vals:
                    z[i, j] = float(np.mean(vals))
        figures.append(plots.heatmap(xs, ys, z, folder / f"heatmap_{a}_{b}.png".replace("/", "_"),
                                     xlabel=a, ylabel=b, zlabel=f"mean {metric} over seeds",
                                     title=f"{metric}: {b} vs {a} (div = every seed diverged)"))
    if len(axes) == 1:
        a = axes[0]
        xs = sorted({r[a] for r in rows})
        ys = []
        for xv in xs:
            vals = [r[metric] for r in rows if r[a] == xv and not r["diverged"] and r.get(metric) is not None]
            ys.append(float(np.mean(vals)) if vals else np.nan)
        logx = all(x > 0 for x in xs) and max(xs) / min(xs) > 30
        figures.append(plots.line_figure({metric: (xs, ys)}, folder / "sensitivity.png", xlabel=a,
                                         ylabel=f"mean {metric} over seeds", logx=logx, marker="o",
                                         title=f"Sensitivity to {a}"))
    ranked = sorted((r for r in rows if not r["diverged"] and r.get(loss_key) is not None),
                    key=lambda r: r[loss_key])
    best = ranked[:5]
    if best and "train_loss" in histories:
        hist = {}
        for r in best:
            i = r["run"]
            label = f"run {i}"
            hist[label] = {k: histories[k][i] for k in histories if k != "run"}
        figures.append(plots.history_figure(hist, folder / "best_runs.png", title="Best runs"))
    vals = [r[metric] for r in rows if r.get(metric) is not None and not r["diverged"]]
    if len(vals) >= 2:
        ks = np.unique(np.round(np.geomspace(1, len(rows), num=min(20, len(rows)))).astype(int))
        mode_max = "accuracy" in metric
        ev = results_mod.expected_max(vals, ks) if mode_max else results_mod.expected_min(vals, ks)
        figures.append(plots.best_of_k({"this sweep": (ks, np.asarray(ev))}, folder / "best_of_k.png",
                                       ylabel=f"expected best {metric}"))
    tables.append(("Best runs", [
        {k: r.get(k) for k in ("run", *keys, "seed", loss_key, acc_key, "epochs_run", "diverged")} for r in best
    ]))
    return figures, tables


def sweep_report(folder: str | os.PathLike, result: Any) -> Path:
    """The report of a config sweep's results folder."""
    folder = Path(folder)
    rows, keys = result.rows, result.plan.swept_keys
    figures, tables = sweep_figures(folder, rows, result.histories, keys)
    st = result.stats
    text = (f"{st.runs} runs in {len(result.plan.groups)} group(s) on {st.devices} device(s), "
            f"{st.runs_per_second:.1f} runs/s after {st.compile_seconds:.1f} s of compilation; "
            f"{sum(r['diverged'] for r in rows)} run(s) diverged.")
    sections = [Section("Results", text, figures, tables)]
    if rows and "halted" in rows[0]:
        sections.append(_halving_section(result))
    return write_report(folder, "Sweep report", sections)


def _halving_section(result: Any) -> Section:
    """Which runs successive halving promoted, rung by rung, and the compute it saved."""
    from jaxopt_lab.sweep.config_sweep import halving_summary

    h = halving_summary(result)
    rows, keys = result.rows, result.plan.swept_keys
    text = (f"Rungs at epochs {', '.join(map(str, h['rungs']))} (min_epochs {h['min_epochs']}, eta {h['eta']}): "
            f"{h['halted']} of {len(rows)} runs were halted at a rung. Epochs trained: {h['epochs_spent']} of "
            f"{h['epochs_without_halving']} without halving ({h['epochs_spent'] / h['epochs_without_halving']:.0%}). "
            "The runs promoted through every rung are listed below, best first.")
    loss_key = "best_val_loss" if any(r.get("best_val_loss") is not None for r in rows) else "final_train_loss"
    finalists = sorted((r for r in rows if r["run"] in set(h["promoted_to_last_rung"])),
                       key=lambda r: (r.get(loss_key) is None, r.get(loss_key) or 0.0))
    promoted = [{k: r.get(k) for k in ("run", *keys, "seed", loss_key, "final_val_accuracy", "epochs_run")}
                for r in finalists]
    return Section("Successive halving", text, [], [("Rungs", h["per_rung"]),
                                                    ("Promoted through every rung", promoted)])
