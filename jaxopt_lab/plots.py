"""Figures: loss curves (with bands over seeds), heatmaps over two swept axes, best-of-k curves.

Every function writes one labelled PNG (axes with units, log scales where the
quantity spans decades, legends) and returns its path. matplotlib runs on the
non-interactive Agg backend, so figures work on machines with no display.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
            import warnings

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
) -> Path:
    """`z[i, j]` at (x_values[j], y_values[i]), cells labelled with their values."""
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
    if title:
        ax.set_title(title)
    return _save(fig, path)


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


def save(fig, path: str | os.PathLike) -> Path:
    return _save(fig, path)
