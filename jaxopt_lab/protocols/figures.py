"""The protocols' figures: learning curves as mean ± std over seeds, bars with error bars.

`jaxopt_lab.plots` (and with it matplotlib) is imported when a figure is drawn, not when the
protocols are: `jaxopt-lab list` imports the protocols only to name them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxopt_lab.sweep import config_sweep

__all__ = ["mean_std_curves", "errorbar_figure", "history_curves"]


def _mean_std(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch mean and std (ddof=1; 0 for one seed) of `c` (seeds, epochs), NaN skipped."""
    with warnings.catch_warnings():
        # An epoch every seed has stopped before is all NaN: a gap in the curve, not a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(c, axis=0)
        std = np.nanstd(c, axis=0, ddof=1) if c.shape[0] > 1 else np.zeros_like(mean)
    return mean, std


def mean_std_curves(curves: Mapping[str, np.ndarray], path: Path, *, ylabel: str, title: str,
                    logy: bool = False) -> Path:
    """Mean ± one standard deviation over seeds per epoch: `curves[label]` has shape (seeds, epochs).

    DeepOBS plots its learning curves this way; NaN (epochs after a run stopped) are skipped.
    """
    from jaxopt_lab import plots  # matplotlib: only when a figure is drawn (module docstring)

    fig, ax = plots.new_figure(figsize=(6.5, 4))
    for i, (label, c) in enumerate(curves.items()):
        c = np.atleast_2d(np.asarray(c, float))
        c = np.where(np.isfinite(c), c, np.nan)
        if not np.isfinite(c).any():
            continue
        mean, std = _mean_std(c)
        ep = np.arange(1, c.shape[1] + 1)
        color = f"C{i % 10}"
        ax.plot(ep, mean, color=color, label=f"{label} (n={c.shape[0]})")
        ax.fill_between(ep, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return plots.save(fig, path)


def errorbar_figure(labels: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    path: Path, *, ylabel: str, title: str) -> Path:
    """Bars with ±std error bars: one group per label, one bar per series (NaN: no bar)."""
    from jaxopt_lab import plots  # matplotlib: only when a figure is drawn (module docstring)

    fig, ax = plots.new_figure(figsize=(max(5.0, 1.3 * len(labels) + 2), 4))
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(labels))
    for i, (name, (means, stds)) in enumerate(series.items()):
        m = np.asarray(means, float)
        s = np.nan_to_num(np.asarray(stds, float))
        ax.bar(x + (i - (n - 1) / 2) * width, m, width, yerr=s, capsize=4, color=f"C{i % 10}", label=name)
    ax.set_xticks(x, list(labels))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=8)
    finite = [v for means, _ in series.values() for v in means if np.isfinite(v)]
    if finite and "accuracy" in ylabel:
        lo = min(finite)
        ax.set_ylim(max(0.0, lo - 0.1 * (1 - lo) - 0.05), 1.0)
    return plots.save(fig, path)


def history_curves(result: config_sweep.ConfigSweepResult, key: str) -> np.ndarray | None:
    """The per-epoch history `key` of a sweep's runs, (runs, epochs); None when it has no finite value."""
    h = result.histories.get(key)
    if h is None or not np.isfinite(np.asarray(h, float)).any():
        return None
    return np.asarray(h, float)
