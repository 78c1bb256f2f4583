"""A comparison of search methods as curves: `curves.csv` (each search's best validation loss so far
against the epochs it spent), read back, put on one grid, and drawn (mean and 95% band per method).

`method_comparison` writes the curves; the sweep report (`report.py`) draws them from the folder.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxopt_lab import _io, plots
from jaxopt_lab.sweep.stats import mean_interval

#: The columns of ``curves.csv``.
CURVE_COLUMNS = ("method", "search_seed", "step", "epochs_spent", "best_val_loss")


def write_curves_csv(path: str | os.PathLike, records: Sequence[Any]) -> None:
    """``curves.csv``: every search's best-so-far curve (empty best: no finished run yet)."""
    _io.write_csv(path, CURVE_COLUMNS, ([r.method, r.seed, step, spent, None if best is None else float(best)]
                                        for r in records for step, (spent, best) in enumerate(r.curve)))


def read_curves_csv(path: str | os.PathLike) -> dict[str, dict[int, list[tuple[int, float]]]]:
    """``curves.csv`` as ``{method: {search seed: [(epochs spent, best or NaN)]}}``, in file order."""
    out: dict[str, dict[int, list[tuple[int, float]]]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CURVE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{str(path)!r} has no column {missing[0]!r}: not a comparison's curves.csv")
        for row in reader:
            best = float(row["best_val_loss"]) if row["best_val_loss"] else math.nan
            out.setdefault(row["method"], {}).setdefault(int(row["search_seed"]), []).append(
                (int(row["epochs_spent"]), best))
    return out


# ----------------------------------------------------------------------------- the figure


def curve_grid(curves: Mapping[int, Sequence[tuple[int, float]]], step: int, budget: int) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """The searches' best-so-far on a common grid of epochs (``step, 2 step, ..., budget`` and every
    search's last point): ``(grid, values[search, point])``, NaN before a search's first result."""
    ends = [c[-1][0] for c in curves.values() if c]
    grid = np.unique(np.concatenate([np.arange(step, budget + 1, step), np.asarray(ends, int)]))
    values = np.full((len(curves), grid.size), np.nan)
    for i, c in enumerate(curves.values()):
        spent = np.asarray([p[0] for p in c])
        best = np.asarray([p[1] for p in c], float)
        for j, g in enumerate(grid):
            seen = best[(spent <= g) & np.isfinite(best)]
            if seen.size:  # a search that ended under the budget (runs stopped early) keeps its best
                values[i, j] = seen.min()
    return grid, values


def figure(curves: Mapping[str, Mapping[int, Sequence[tuple[int, float]]]], step: int, budget: int,
           path: str | os.PathLike, title: str = "Search methods at equal compute") -> Path:
    """Mean and 95% band (Student t over search seeds) of each method's best validation loss so far
    against the epochs spent, over the whole budget and (right) its second half, where the methods'
    differences are; a method with one point per search (halving, Hyperband) is its mean and interval
    at its mean end."""
    fig, axes = plots.new_figure(1, 2, figsize=(12, 4.6))
    hover = []
    ends = 0  # methods shown by their end point: set apart sideways, as they end at about the same budget
    tail: list[float] = []  # every value drawn in the second half: the zoomed panel's range
    for i, (method, per_seed) in enumerate(curves.items()):
        color = f"C{i}"
        if all(len(c) == 1 for c in per_seed.values()):
            m, lo, hi = mean_interval([c[0][1] for c in per_seed.values()])
            x = float(np.mean([c[0][0] for c in per_seed.values()])) + 0.012 * budget * ends
            ends += 1
            if math.isfinite(m):
                yerr = [[m - lo], [hi - m]] if math.isfinite(lo) else None
                for ax in axes:
                    ax.errorbar([x], [m], yerr=yerr, fmt="o", capsize=4, color=color,
                                label=f"{method} (end of search)")
                    hover.append(plots.Hover.point(ax, x, m, f"{method}\n{x:.0f} epochs\nbest {m:.4g}"))
                tail += [v for v in (m, lo, hi) if math.isfinite(v)]
            continue
        grid, values = curve_grid(per_seed, step, budget)
        stats = [mean_interval(values[:, j]) for j in range(grid.size)]
        mean, lo, hi = (np.asarray([s[k] for s in stats]) for k in range(3))
        for ax in axes:
            ax.plot(grid, mean, color=color, label=method)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.2)
        half = grid >= budget / 2
        tail += [float(v) for v in np.concatenate([mean[half], lo[half], hi[half]]) if np.isfinite(v)]
        last = int(np.flatnonzero(np.isfinite(mean))[-1]) if np.isfinite(mean).any() else None
        if last is not None:
            hover.append(plots.Hover.point(axes[0], grid[last], mean[last], f"{method}\n{grid[last]} epochs\n"
                                           f"best {mean[last]:.4g} [{lo[last]:.4g}, {hi[last]:.4g}]"))
    n = max((len(v) for v in curves.values()), default=0)
    for ax, what in zip(axes, ("the whole budget", "its second half"), strict=True):
        ax.set_xlabel("epochs spent by the search")
        ax.set_ylabel("best validation loss so far")
        ax.set_title(f"{what}", fontsize=9)
    if tail:
        low, high = min(tail), max(tail)
        pad = 0.05 * (high - low) or 0.01 * abs(high) or 0.01
        axes[1].set_ylim(low - pad, high + pad)
    axes[1].set_xlim(budget / 2, budget * (1.02 + 0.012 * ends))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title} ({n} search seeds; mean and 95% band)", fontsize=10)
    return plots.save(fig, Path(path), hover)
