"""The 8x8 handwritten digits (UCI optdigits test set as shipped with scikit-learn).

1,797 grayscale images of 8x8 pixels with integer intensities 0..16, labels
0..9 (about 180 per class). The data are read from scikit-learn's installed
copy; this package ships no copy of its own. scikit-learn is imported lazily,
by the loader all of its bundled sets share (`jaxopt_lab.data.sklearn_sets`).
"""

from __future__ import annotations

import numpy as np

from jaxopt_lab.data.sklearn_sets import INSTALL_HINT as _HINT
from jaxopt_lab.data.sklearn_sets import load_sklearn

__all__ = ["load_digits", "DIGITS_SHAPE", "INSTALL_HINT"]

DIGITS_SHAPE = (8, 8)
INSTALL_HINT = _HINT.format(name="digits")


def load_digits(*, n_class: int = 10, as_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 digits from scikit-learn's installed copy.

    Args:
      n_class: keep the digits `0..n_class-1` (2..10), like scikit-learn's
        `load_digits(n_class=...)`.
      as_images: return `x` as `(n, 8, 8)` instead of flattened `(n, 64)`.

    Returns:
      `(x, y)`: `float64` pixel intensities in `[0, 16]` of shape `(n, 64)` (or
      `(n, 8, 8)`) and `int64` labels of shape `(n,)`; `n = 1797` for all ten
      classes.

    Raises:
      ModuleNotFoundError: scikit-learn is not installed (the message says how
        to install it).
    """
    if isinstance(n_class, bool) or not isinstance(n_class, int | np.integer) or not 2 <= n_class <= 10:
        raise ValueError(f"n_class={n_class!r} is out of range: valid range is [2, 10]")
    x, y = load_sklearn("digits", n_class=int(n_class))
    if as_images:
        x = x.reshape((-1, *DIGITS_SHAPE))
    return x, y
