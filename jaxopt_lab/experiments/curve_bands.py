"""A figure step several experiments share: a median curve over runs with its interquartile band."""

from __future__ import annotations

import warnings

import numpy as np


def median_band(ax, x: np.ndarray, curves: np.ndarray, *, color: str, label: str, alpha: float = 0.2,
                ls: str = "-", band_label: str | None = None) -> None:
    """Draw on `ax` the median over the rows of `curves` (runs x points) at `x`, and its 25-75% band.

    Medians and quartiles (not mean and standard deviation) keep one diverged run from hiding the others;
    NaN points (a run stopped early) are left out of each point's statistics.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN point: every run had stopped by then
        med = np.nanmedian(curves, axis=0)
        lo, hi = np.nanpercentile(curves, [25, 75], axis=0)  # interpolated in float64 whatever the dtype
    ax.plot(x, med, color=color, ls=ls, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, label=band_label)
