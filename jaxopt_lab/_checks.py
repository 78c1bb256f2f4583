"""Checks and their messages, shared by every layer: ranges, choices, "did you mean".

This module sits at the bottom of the package (it imports only the standard library, NumPy
and JAX), so the models (`jaxopt_lab.nn`), the losses, the schedules, the data loaders and
the config can check their input without importing each other. `jaxopt_lab.optim.base`
re-exports `check_range` and `concrete_value`; `jaxopt_lab.config` re-exports `ConfigError`,
`closest` and `choices_error`.

One message format for a bad name, everywhere: ``NAME = 'valu' is not a valid choice (did you
mean 'value'?); valid choices: a, b, value`` (``name='valu'`` for a Python argument).
"""

import difflib
import math
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

__all__ = ["ConfigError", "check_choice", "check_range", "choices_error", "closest", "concrete_value", "unknown_choice"]


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


class ConfigError(ValueError):
    """Bad configuration input: the message names the key and the valid choices."""


def closest(name: Any, choices: Iterable[Any]) -> str:
    """' (did you mean ...?)' for a near miss of `name` among `choices`, else ''.

    A match that differs only in case comes first ("X" for "x" is the usual slip, and too short
    for difflib to match), then difflib's closest.
    """
    choices = [str(c) for c in choices]
    name = str(name)
    match = [c for c in choices if c.lower() == name.lower()] or difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _choice_message(head: str, value: Any, choices: Iterable[Any]) -> str:
    choices = sorted(str(c) for c in choices)
    return f"{head} is not a valid choice{closest(value, choices)}; valid choices: {', '.join(choices)}"


def choices_error(key: str, value: Any, choices: Iterable[Any]) -> ConfigError:
    """The `ConfigError` for a config key (``train.loss``) whose value is not one of `choices`."""
    return ConfigError(_choice_message(f"{key} = {value!r}", value, choices))


def unknown_choice(argument: str, value: Any, choices: Iterable[Any]) -> ValueError:
    """The `ValueError` for a Python argument (``activation``) whose value is not one of `choices`."""
    return ValueError(_choice_message(f"{argument}={value!r}", value, choices))


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise `unknown_choice` unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise unknown_choice(name, value, choices)
