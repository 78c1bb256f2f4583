"""Figures: loss curves (with bands over seeds), heatmaps over two swept axes, best-of-k curves.

Every function writes one labelled PNG (axes with units, log scales where the
quantity spans decades, legends) and returns its path. matplotlib runs on the
non-interactive Agg backend, so figures work on machines with no display.

Every figure is checked when it is saved: each visible text (titles, labels,
tick labels, legends, annotations) must lie inside the figure. A text that
sticks out is fixed where that is possible (long titles are wrapped to the
width of their axes, the layout is redone); what still sticks out raises
`ClippedTextError` when `STRICT_TEXT` is true (tests) and is otherwise
recorded in the PNG, where the report shows it and the browser test fails on it.

The PNG also carries the figure's *hover regions* (rectangles in fractions of
the image with a text each, see `Hover`), which `jaxopt_lab.report_page` turns into
tooltips in the HTML page. Both travel as one JSON text chunk (`PNG_KEY`).
"""

from __future__ import annotations

import json
import math
import os
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.text as mtext  # noqa: E402
import numpy as np  # noqa: E402

#: The PNG text chunk holding the text check's verdict and the hover regions.
PNG_KEY = "jaxopt_lab"
#: Raise `ClippedTextError` instead of recording a clipped text (tests set it).
STRICT_TEXT = os.environ.get("JAXOPT_LAB_STRICT_FIGURES", "") not in ("", "0")
#: Pixels a text may stick out before it counts as clipped (antialiasing).
_SLACK_PX = 1.0


class ClippedTextError(ValueError):
    """A figure's text lies (partly) outside the figure even after the layout was fixed."""


@dataclass(frozen=True)
class Hover:
    """A hover region in data coordinates of `ax`: the rectangle [x0, x1] x [y0, y1], or a point when
    x0 == x1 and y0 == y1 (then a few pixels around it); `text` is what the page shows on hover."""

    ax: Any
    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @classmethod
    def point(cls, ax: Any, x: float, y: float, text: str) -> Hover:
        return cls(ax, x, y, x, y, text)


def _tick_labels_out_of_view(fig) -> set[int]:
    """ids of tick labels matplotlib keeps for ticks outside the view (not drawn, but still `visible`)."""
    skip: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            # Every Tick the axis holds, not only the current ones: matplotlib keeps spare Tick
            # objects from earlier layouts, undrawn, whose labels `findobj` still finds.
            for tick in (*axis.majorTicks, *axis.minorTicks):
                loc = tick.get_loc()
                # Tolerances relative to each bound: on a log axis the bounds differ by decades.
                if loc is None or not (lo - 1e-9 * abs(lo) <= loc <= hi + 1e-9 * abs(hi)):
                    skip.update((id(tick.label1), id(tick.label2)))
    return skip


def clipped_texts(fig) -> list[str]:
    """The visible texts of `fig` whose bounding box (after a draw) is not inside the figure."""
    fig.draw_without_rendering()  # lays out ticks and texts without rasterizing (the savefig draw does that)
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    skip = _tick_labels_out_of_view(fig)
    out = []
    for t in fig.findobj(mtext.Text):
        if id(t) in skip or not t.get_visible() or not t.get_text().strip():
            continue
        bb = t.get_window_extent(renderer)
        if (bb.x0 < -_SLACK_PX or bb.y0 < -_SLACK_PX or bb.x1 > width + _SLACK_PX
                or bb.y1 > height + _SLACK_PX):
            out.append(t.get_text())
    return out


def _wrap_titles(fig) -> None:
    """Wrap each axes' title (and the suptitle) to the width it has, so a long title never leaves the figure."""
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for title in (ax.title, ax._left_title, ax._right_title):
            _wrap_to(title, ax.get_window_extent(renderer).width, renderer)
    if fig._suptitle is not None:
        _wrap_to(fig._suptitle, fig.bbox.width, renderer)


def _wrap_to(text, width_px: float, renderer) -> None:
    s = text.get_text().replace("\n", " ")
    if not s or text.get_window_extent(renderer).width <= width_px:
        return
    chars = max(12, int(len(s) * width_px / max(text.get_window_extent(renderer).width, 1.0)) - 2)
    text.set_text("\n".join(textwrap.wrap(s, chars)))


def _checked_layout(fig) -> list[str]:
    """tight_layout, then fix what sticks out; returns the texts still clipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "tight_layout not applied" is handled below
        fig.tight_layout()
    bad = clipped_texts(fig)
    if bad:
        _wrap_titles(fig)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fig.tight_layout()
        bad = clipped_texts(fig)
    return bad


def _hover_json(fig, hover: Sequence[Hover]) -> list[dict[str, Any]]:
    """Hover regions as fractions of the image (origin top left), after the final layout."""
    width, height = fig.bbox.width, fig.bbox.height
    out = []
    for h in hover:
        (ax0, ay0), (ax1, ay1) = h.ax.transData.transform([(h.x0, h.y0), (h.x1, h.y1)])
        if not all(map(math.isfinite, (ax0, ay0, ax1, ay1))):
            continue
        pad = 5.0 if (h.x0 == h.x1 and h.y0 == h.y1) else 0.0
        x0, x1 = sorted((ax0, ax1))
        y0, y1 = sorted((ay0, ay1))
        out.append({"x0": round((x0 - pad) / width, 5), "x1": round((x1 + pad) / width, 5),
                    "y0": round(1 - (y1 + pad) / height, 5), "y1": round(1 - (y0 - pad) / height, 5),
                    "text": h.text})
    return out


def _save(fig, path: str | os.PathLike, hover: Sequence[Hover] = ()) -> Path:
    path = Path(path)
    try:
        bad = _checked_layout(fig)
        if bad and STRICT_TEXT:
            raise ClippedTextError(f"{path.name}: text outside the figure: {bad[:3]}")
        if bad:
            warnings.warn(f"{path.name}: text outside the figure: {bad[:3]}", stacklevel=3)
        meta = {"text_check": "ok" if not bad else "clipped: " + "; ".join(b[:60] for b in bad[:3]),
                "hover": _hover_json(fig, hover)}
        fig.savefig(path, dpi=110, metadata={PNG_KEY: json.dumps(meta)})
    finally:
        plt.close(fig)
    return path


def figure_info(path: str | os.PathLike) -> dict[str, Any]:
    """What `_save` recorded in a PNG: ``{"text_check": "ok" | "clipped: ...", "hover": [...]}``;
    an empty dict for a PNG drawn elsewhere."""
    from PIL import Image

    with Image.open(path) as im:
        raw = getattr(im, "text", {}).get(PNG_KEY)
    return json.loads(raw) if raw else {}


def _spans_decades(values: np.ndarray) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return v.size > 1 and v.max() / v.min() > 30


def history_figure(
    histories: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    epochs_run: Mapping[str, int] | None = None,
    title: str = "Training history",
) -> Path:
    """Loss (left) and accuracy (right) per epoch for one or more runs."""
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    any_acc = False
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        n = (epochs_run or {}).get(label)
        tl = np.asarray(h["train_loss"], float)
        n = n or int(np.sum(np.isfinite(tl)))
        ep = np.arange(1, n + 1)
        ax_l.plot(ep, tl[:n], color=color, label=f"{label} train")
        vl = np.asarray(h.get("val_loss", np.full_like(tl, np.nan)), float)
        if np.isfinite(vl[:n]).any():
            ax_l.plot(ep, vl[:n], color=color, ls="--", label=f"{label} validation")
        for key, ls in (("train_accuracy", "-"), ("val_accuracy", "--")):
            acc = np.asarray(h.get(key, np.full_like(tl, np.nan)), float)[:n]
            if np.isfinite(acc).any():
                any_acc = True
                ax_a.plot(ep, acc, color=color, ls=ls, label=f"{label} {key.split('_')[0]}")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("loss")
    all_loss = np.concatenate([np.asarray(h["train_loss"], float) for h in histories.values()])
    if _spans_decades(all_loss):
        ax_l.set_yscale("log")
    ax_l.set_title(title)
    ax_l.legend(fontsize=7)
    if any_acc:
        ax_a.set_xlabel("epoch")
        ax_a.set_ylabel("accuracy")
        ax_a.set_title("Accuracy")
        ax_a.legend(fontsize=7)
    else:
        ax_a.axis("off")
    return _save(fig, path)


def curves_with_bands(
    curves: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    ylabel: str = "loss",
    xlabel: str = "epoch",
    title: str = "",
    logy: bool | None = None,
) -> Path:
    """Median and interquartile band over seeds: `curves[label]` has shape (seeds, epochs).

    The median and quartiles (not mean ± std) keep one diverged seed from
    hiding the others; NaN (stopped runs) are ignored per epoch.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    every = []
    for i, (label, c) in enumerate(curves.items()):
        c = np.atleast_2d(np.asarray(c, float))
        c = np.where(np.isfinite(c), c, np.nan)
        if not np.isfinite(c).any():
            continue
        ep = np.arange(1, c.shape[1] + 1)
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(c, axis=0)
                lo = np.nanpercentile(c, 25, axis=0)
                hi = np.nanpercentile(c, 75, axis=0)
        color = f"C{i % 10}"
        ax.plot(ep, med, color=color, label=f"{label} (n={c.shape[0]})")
        if c.shape[0] > 1:
            ax.fill_between(ep, lo, hi, color=color, alpha=0.2)
        every.append(c.ravel())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy or (logy is None and every and _spans_decades(np.concatenate(every))):
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def heatmap(
    x_values: Sequence[float],
    y_values: Sequence[float],
    z: np.ndarray,
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    zlabel: str,
    title: str = "",
    annotate: bool = True,
    best: tuple[int, int] | None = None,
    cell_text: Sequence[Sequence[str]] | None = None,
) -> Path:
    """`z[i, j]` at (x_values[j], y_values[i]), cells labelled with their values.

    `best` = (i, j) outlines that cell in red; `cell_text[i][j]` is the cell's hover text in the page.
    """
    z = np.asarray(z, float)
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(x_values) + 2), max(3.5, 0.5 * len(y_values) + 2)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")  # grey: no finite value
    im = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(x_values)), [_tick(v) for v in x_values], rotation=45, ha="right")
    ax.set_yticks(range(len(y_values)), [_tick(v) for v in y_values])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(zlabel)
    if annotate and z.size <= 200:
        norm = im.norm
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                if not math.isfinite(z[i, j]):
                    ax.text(j, i, "div", ha="center", va="center", fontsize=7, color="black")
                    continue
                # dark text on the light (yellow) end of viridis, white on the dark end
                light = norm(z[i, j]) > 0.6 if np.isfinite(norm(z[i, j])) else False
                ax.text(j, i, f"{z[i, j]:.3g}", ha="center", va="center", fontsize=7,
                        color="black" if light else "white")
    if best is not None:
        i, j = best
        ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
    if title:
        ax.set_title(title)
    hover = []
    if cell_text is not None:
        hover = [Hover(ax, j - 0.5, i - 0.5, j + 0.5, i + 0.5, cell_text[i][j])
                 for i in range(z.shape[0]) for j in range(z.shape[1]) if cell_text[i][j]]
    return _save(fig, path, hover)


def _tick(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def best_of_k(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    *,
    ylabel: str = "expected best validation accuracy",
    title: str = "Expected best of k trials",
) -> Path:
    """Expected best score against the number of trials k (Dodge et al. 2019), log-x."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (label, (k, v)) in enumerate(curves.items()):
        ax.plot(k, v, marker="o", ms=3, color=f"C{i % 10}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("trials k (budget)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def line_figure(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    marker: str | None = None,
) -> Path:
    """Plain labelled lines: `series[label] = (x, y)`."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (label, (x, y)) in enumerate(series.items()):
        ax.plot(x, y, color=f"C{i % 10}", label=label, marker=marker, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def new_figure(*args: Any, **kwargs: Any):
    """`plt.subplots` for experiments that draw something custom; save with `save`."""
    return plt.subplots(*args, **kwargs)


def colormap(name: str):
    """Matplotlib's colormap `name` (``"viridis"``), for figures drawn through `new_figure`."""
    return matplotlib.colormaps[name]


def save(fig, path: str | os.PathLike, hover: Sequence[Hover] = ()) -> Path:
    """Save a figure from `new_figure` with the text check and optional hover regions (see the module doc)."""
    return _save(fig, path, hover)
