"""The statistics of sweep reports: Student-t intervals of a mean and Welch's test.

scipy gives the exact t quantiles where it is installed (extra ``report``); without it an expansion
accurate to 1e-3 stands in, so reports render on the base install.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Sequence

import numpy as np

_HAVE_SCIPY = importlib.util.find_spec("scipy") is not None


@functools.cache
def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95% intervals).

    scipy's exact value (`scipy.special.stdtrit`) where scipy is installed; otherwise exact table
    values for df <= 4 and the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5) above, accurate
    to 1e-3 there.
    """
    if df < 1:
        return math.nan
    if _HAVE_SCIPY:
        from scipy.special import stdtrit  # optional library (extra "report")

        return float(stdtrit(df, 0.975))
    return _t_quantile_975_approx(df)


def _t_quantile_975_approx(df: int) -> float:
    table = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764}
    if df in table:
        return table[df]
    z = 1.959963984540054
    n = float(df)
    return (z + (z**3 + z) / (4 * n) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * n**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * n**4))


def mean_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and its 95% confidence interval (Student t, n - 1 degrees of freedom); NaN bounds for n < 2."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if v.size < 2:
        return m, math.nan, math.nan
    half = t_quantile_975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


def welch_distinguishable(a: Sequence[float], b: Sequence[float]) -> bool | None:
    """Whether Welch's two-sided t-test rejects equal means at 5%; None when either has < 2 values.

    The statistic t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b) against Student's t with the
    Welch-Satterthwaite degrees of freedom (rounded down, which errs toward "not distinguishable").
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or b.size < 2:
        return None
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return bool(a.mean() != b.mean())
    t = abs(a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return bool(t > t_quantile_975(max(1, int(math.floor(df)))))
