"""scikit-learn's bundled real data sets, read from its installed copy: one loader for all of them.

=================  =====  ========  =======  ===============================================
name               rows   features  classes  content
=================  =====  ========  =======  ===============================================
``digits``         1797   64        10       8x8 handwritten digits, intensities 0..16
``breast_cancer``  569    30        2        Wisconsin diagnostic breast cancer (0 malignant)
``wine``           178    13        3        chemical analysis of wines from three cultivars
``iris``           150    4         3        Fisher's iris flowers
``diabetes``       442    10        (regr.)  disease progression after one year
=================  =====  ========  =======  ===============================================

This package ships no copy of these files. scikit-learn is imported here and only
here, lazily, so the rest of the package does not depend on it; a missing
scikit-learn is reported with the command that installs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SKLEARN_SETS", "INSTALL_HINT", "load_sklearn", "sklearn_datasets"]

#: name -> the `sklearn.datasets` function that loads it.
SKLEARN_SETS: dict[str, str] = {
    "digits": "load_digits",
    "breast_cancer": "load_breast_cancer",
    "wine": "load_wine",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
}

INSTALL_HINT = (
    "the {name} data set is read from scikit-learn's installed copy, and scikit-learn is not installed: "
    "run `pip install scikit-learn` (or this package's data extra: `pip install 'jaxopt-lab[data]'`)"
)


def sklearn_datasets(name: str) -> Any:
    """The `sklearn.datasets` module, imported on first use.

    Raises:
      ModuleNotFoundError: scikit-learn is not installed; the message names the
        data set `name` and how to install it.
    """
    try:
        from sklearn import datasets
    except ImportError as error:
        raise ModuleNotFoundError(INSTALL_HINT.format(name=name), name="sklearn") from error
    return datasets


def load_sklearn(name: str, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """`(x, y)` of scikit-learn's bundled data set `name` (a key of `SKLEARN_SETS`).

    Args:
      name: "digits", "breast_cancer", "wine", "iris" or "diabetes".
      **options: keywords of the scikit-learn loader (e.g. `n_class` for digits,
        `scaled` for diabetes).

    Returns:
      `float64` features `(n, d)` and labels `(n,)`: `int64` classes `0..k-1`,
      or `float64` targets for diabetes.

    Raises:
      ValueError: an unknown name (the message lists the valid ones).
      ModuleNotFoundError: scikit-learn is not installed (the message says how to install it).
    """
    if name not in SKLEARN_SETS:
        raise ValueError(f"name={name!r} is not a scikit-learn data set here; valid choices are {list(SKLEARN_SETS)}")
    loader = getattr(sklearn_datasets(name), SKLEARN_SETS[name])
    x, y = loader(return_X_y=True, **options)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64 if name == "diabetes" else np.int64)
    return x, y
