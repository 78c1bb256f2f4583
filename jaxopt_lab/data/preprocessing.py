"""Input standardization fitted on the training rows only, and one-hot labels.

Standardizing with statistics of all rows would leak the validation and test
rows into training (the hyperparameter lecture, "input normalization": normalize so that no
feature dominates by its scale). `Standardizer.fit` therefore takes the rows
to fit on (or a mask of them) and the result is applied to every part.

Both work on NumPy arrays (outside `jit`, results in NumPy with the input's
float precision) and on JAX arrays, including traced ones inside `jit`/`vmap`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Standardizer", "one_hot"]


def _xp(*arrays: Any):
    """jax.numpy when any input is a JAX array (or tracer), else NumPy."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


class Standardizer(NamedTuple):
    """Per-feature standardization `z = (x - mean) / std`, fitted on training rows.

    A `NamedTuple`, hence a pytree: it can be returned from and passed into
    `jit`/`vmap`-ed functions.

    Attributes:
      mean: per-feature mean of the fitting rows, shape `(d,)`.
      std: per-feature (population, `ddof=0`) standard deviation of the fitting
        rows, shape `(d,)`, with constant features' std replaced by 1 so they
        map to 0 instead of dividing by zero.
    """

    mean: Any
    std: Any

    @classmethod
    def fit(cls, x: Any, where: Any = None) -> Standardizer:
        """Fit on the rows of `x` (shape `(n, d)`), or only where the bool mask `where` (`(n,)`) is True.

        A feature counts as constant when its std is at most
        `100 * eps * max(1, |mean|)` (rounding noise of a constant column).
        """
        xp = _xp(x, where)
        x = xp.asarray(x)
        if not xp.issubdtype(x.dtype, xp.floating):
            x = x.astype(xp.float32 if xp is jnp else np.float64)
        if x.ndim != 2:
            raise ValueError(f"x must have shape (n, d), got {x.shape}")
        if where is None:
            weight = xp.ones((x.shape[0], 1), dtype=x.dtype)
        else:
            weight = xp.asarray(where).reshape(-1, 1).astype(x.dtype)
            if weight.shape[0] != x.shape[0]:
                raise ValueError(f"where has {weight.shape[0]} entries but x has {x.shape[0]} rows")
        count = xp.maximum(weight.sum(), 1)
        mean = (weight * x).sum(axis=0) / count
        # Two-pass variance: numerically safer than E[x^2] - E[x]^2.
        var = (weight * (x - mean) ** 2).sum(axis=0) / count
        std = xp.sqrt(var)
        tiny = 100 * xp.finfo(x.dtype).eps * xp.maximum(1, xp.abs(mean))
        std = xp.where(std <= tiny, xp.ones_like(std), std)
        return cls(mean, std)

    def transform(self, x: Any) -> Any:
        """`(x - mean) / std`, for any rows (training, validation, test)."""
        return (x - self.mean) / self.std

    def inverse_transform(self, z: Any) -> Any:
        """`z * std + mean`, undoing `transform`."""
        return z * self.std + self.mean


def one_hot(y: Any, num_classes: int, *, dtype: Any = None) -> Any:
    """One-hot rows: `out[..., c] = 1` where `y == c`, else 0; shape `y.shape + (num_classes,)`.

    Args:
      y: integer labels in `0..num_classes-1` (NumPy or JAX, traced or not).
      num_classes: a static Python int >= 1.
      dtype: output dtype; default float32 (float64 for NumPy input).

    Raises:
      ValueError: `num_classes < 1`, or (for concrete NumPy input) a label
        outside `0..num_classes-1`. Traced labels cannot be checked; an
        out-of-range one gives a row of zeros, as `jax.nn.one_hot` does.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} is out of range: valid range is [1, inf)")
    xp = _xp(y)
    y = xp.asarray(y)
    if xp is np:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            bad = y[(y < 0) | (y >= num_classes)][0]
            raise ValueError(f"label {int(bad)} in y is out of range: valid range is [0, {num_classes - 1}]")
    dtype = dtype or (np.float64 if xp is np else jnp.float32)
    return (y[..., None] == xp.arange(num_classes)).astype(dtype)
