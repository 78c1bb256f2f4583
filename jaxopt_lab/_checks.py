"""Checks on hyperparameter values shared by every layer: `check_range`, `concrete_value`, `did_you_mean`.

This module sits at the bottom of the package (it imports only `difflib`, `math`, NumPy and JAX),
so the models (`jaxopt_lab.nn`), the data loaders, the losses and the schedules can check their
arguments without importing the optimizers. `jaxopt_lab.optim.base` re-exports `check_range` and
`concrete_value`.
"""

import difflib
import math
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

__all__ = ["concrete_value", "check_range", "did_you_mean"]


def concrete_value(value: Any) -> float | None:
    """The Python float of `value` when it is known now, else None.

    Tracers (inside `jit`/`vmap`), callables (schedules), non-scalar arrays and
    None are not checked: their values only exist at run time.
    """
    if value is None or callable(value) or isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything not array-like is not checkable
        return None
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
        return None
    return float(arr)


def check_range(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise `ValueError` naming `name`, the value and the valid range.

    Only concrete values are checked; traced values and schedules pass through,
    so the same factory works eagerly and inside `jit`/`vmap`.
    """
    v = concrete_value(value)
    if v is None:
        return
    ok = not math.isnan(v)
    if ok and (low is None or high is None) and math.isinf(v):
        ok = False  # an unbounded side is open: "[0.0, inf)" excludes inf itself
    if ok and low is not None:
        ok = v >= low if low_inclusive else v > low
    if ok and high is not None:
        ok = v <= high if high_inclusive else v < high
    if not ok:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        lb = "[" if (low_inclusive and low is not None) else "("
        hb = "]" if (high_inclusive and high is not None) else ")"
        raise ValueError(f"{name}={value!r} is out of range: valid range is {lb}{lo}, {hi}{hb}")


def did_you_mean(name: Any, choices: Iterable[Any]) -> str:
    """``" (did you mean 'x'?)"`` for the choice closest to `name` (`difflib`), else ``""``.

    The hint of every "is not known" message below the config layer; `jaxopt_lab.config.closest`
    writes the same text.
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
