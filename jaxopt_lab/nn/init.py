"""Weight initializers, selectable by name.

An initializer is a function `(key, shape, dtype) -> array`. Fans are read from
a weight's shape as in `jax.nn.initializers`: a `(fan_in, fan_out)` matrix, the
leading axes of a larger kernel multiplying both (its receptive field), and a
vector counting its length for both.

Variance scaling draws weights with variance ``scale / n`` where ``n`` is
``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2``:

=================  =====  ========  ======================================================
family             scale  n         source
=================  =====  ========  ======================================================
Glorot / Xavier    1      fan_avg   Glorot & Bengio, AISTATS 2010 (keeps forward and
                                    backward variance for tanh/sigmoid/linear units)
He / Kaiming       2      fan_in    He et al., ICCV 2015 (a ReLU halves the variance)
LeCun              1      fan_in    LeCun et al., *Efficient BackProp*, 1998 (SELU)
=================  =====  ========  ======================================================

The *uniform* form draws from ``U(-a, a)`` with ``a = sqrt(3 * variance)``; the
*normal* form draws from a normal truncated at two standard deviations and
rescaled so the variance is exactly ``scale / n`` (as `jax.nn.initializers` and
Keras do: it avoids rare huge weights). With the same key, these give the same
numbers as `jax.nn.initializers` of the same name.

"zeros" and "constant:c" exist to show the symmetry problem of the initialization-and-quartic lecture: every
unit of a layer starts identical, gets the same gradient and stays identical.

Names accepted by `get_initializer` (``INITIALIZERS``): "zeros", "ones",
"constant:C", "normal" / "normal:STD" (default std 0.01, as jax.nn),
"uniform" / "uniform:A" (``U(-A, A)``, default A = 0.05, as Keras),
"glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal",
"lecun_uniform", "orthogonal" / "orthogonal:GAIN", and the aliases "xavier_*"
(Glorot) and "kaiming_*" (He). "auto" is not an initializer: the model resolves
it from the activation (`jaxopt_lab.nn.activations.recommended_init`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lab._checks import check_range, unknown_choice

__all__ = [
    "INITIALIZERS",
    "Initializer",
    "compute_fans",
    "constant",
    "get_initializer",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "variance_scaling",
    "zeros",
]

Initializer = Callable[[jax.Array, Sequence[int], Any], jax.Array]


def _truncated_std(bound: float) -> float:
    """Standard deviation of a standard normal truncated to (-bound, bound)."""
    pdf = math.exp(-0.5 * bound**2) / math.sqrt(2.0 * math.pi)
    mass = math.erf(bound / math.sqrt(2.0))
    return math.sqrt(1.0 - 2.0 * bound * pdf / mass)


# Dividing by this undoes the variance the truncation at +-2 removes (~0.8796).
_TRUNC_STD = _truncated_std(2.0)


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """`(fan_in, fan_out)` of a weight of `shape`.

    `(in, out)` for a matrix; for a kernel `(..., in, out)` both are multiplied
    by the product of the leading axes; a vector of length n has fans (n, n)
    and a scalar (1, 1).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def zeros() -> Initializer:
    """All zeros: leaves every unit of a layer identical (the symmetry problem)."""
    return lambda key, shape, dtype=jnp.float32: jnp.zeros(shape, dtype)


def ones() -> Initializer:
    """All ones."""
    return lambda key, shape, dtype=jnp.float32: jnp.ones(shape, dtype)


def constant(value: float) -> Initializer:
    """Every weight equal to `value`."""
    return lambda key, shape, dtype=jnp.float32: jnp.full(shape, value, dtype)


def normal(stddev: float = 1e-2) -> Initializer:
    """`N(0, stddev^2)`, the lectures' "initialize weights randomly" (the optimizers-and-overfitting lecture)."""
    check_range("stddev", stddev, low=0.0)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.normal(key, shape, dtype) * jnp.asarray(stddev, dtype)

    return init


def uniform(scale: float = 0.05) -> Initializer:
    """`U(-scale, scale)` (symmetric, as Keras's RandomUniform; jax.nn's draws from [0, scale))."""
    check_range("scale", scale, low=0.0)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * jnp.asarray(scale, dtype)

    return init


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """Weights with variance ``scale / n``, ``n`` the fan chosen by `mode`.

    Args:
      scale: numerator of the variance (1 for Glorot and LeCun, 2 for He).
      mode: "fan_in", "fan_out" or "fan_avg" (``(fan_in + fan_out) / 2``).
      distribution: "truncated_normal" (truncated at 2 std, rescaled to the exact
        variance), "normal", or "uniform" (``U(-a, a)``, ``a = sqrt(3 variance)``).
    """
    check_range("scale", scale, low=0.0)
    if mode not in _MODES:
        raise unknown_choice("mode", mode, _MODES)
    if distribution not in _DISTRIBUTIONS:
        raise unknown_choice("distribution", distribution, _DISTRIBUTIONS)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": 0.5 * (fan_in + fan_out)}[mode]
        variance = jnp.asarray(scale, dtype) / jnp.asarray(n, dtype)
        if distribution == "truncated_normal":
            std = jnp.sqrt(variance) / jnp.asarray(_TRUNC_STD, dtype)
            return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * std
        if distribution == "normal":
            return jax.random.normal(key, shape, dtype) * jnp.sqrt(variance)
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * jnp.sqrt(3.0 * variance)

    return init


def glorot_normal() -> Initializer:
    """Glorot/Xavier normal: variance ``2 / (fan_in + fan_out)``."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal")


def glorot_uniform() -> Initializer:
    """Glorot/Xavier uniform: ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``."""
    return variance_scaling(1.0, "fan_avg", "uniform")


def he_normal() -> Initializer:
    """He/Kaiming normal: variance ``2 / fan_in``."""
    return variance_scaling(2.0, "fan_in", "truncated_normal")


def he_uniform() -> Initializer:
    """He/Kaiming uniform: ``U(-a, a)``, ``a = sqrt(6 / fan_in)``."""
    return variance_scaling(2.0, "fan_in", "uniform")


def lecun_normal() -> Initializer:
    """LeCun normal: variance ``1 / fan_in``."""
    return variance_scaling(1.0, "fan_in", "truncated_normal")


def lecun_uniform() -> Initializer:
    """LeCun uniform: ``U(-a, a)``, ``a = sqrt(3 / fan_in)``."""
    return variance_scaling(1.0, "fan_in", "uniform")


def orthogonal(gain: float = 1.0) -> Initializer:
    """A (semi-)orthogonal matrix times `gain` (Saxe et al., ICLR 2014).

    For a `(fan_in, fan_out)` weight, the QR factor of a Gaussian matrix with
    its signs fixed by R's diagonal, so it is Haar-distributed: orthonormal
    columns when fan_in >= fan_out, orthonormal rows otherwise. Leading kernel
    axes are folded into fan_in.
    """
    check_range("gain", gain, low=0.0)

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a weight of rank >= 2, got shape={shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), dtype)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diagonal(r))
        if rows < cols:
            q = q.T
        return (q * jnp.asarray(gain, dtype)).reshape(shape)

    return init


_FACTORIES: dict[str, Callable[[], Initializer]] = {
    "zeros": zeros,
    "ones": ones,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "kaiming_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
}
# Names taking an optional ":VALUE" (constant requires one).
_PARAMETRIC: dict[str, Callable[..., Initializer]] = {
    "constant": constant,
    "normal": normal,
    "uniform": uniform,
    "orthogonal": orthogonal,
}

INITIALIZERS: tuple[str, ...] = (
    "zeros",
    "ones",
    "constant:C",
    "normal",
    "normal:STD",
    "uniform",
    "uniform:A",
    "orthogonal",
    "orthogonal:GAIN",
    *(k for k in _FACTORIES if k not in ("zeros", "ones")),
)
"""Every accepted initializer name; C, STD, A and GAIN stand for numbers."""


def get_initializer(name: str) -> Initializer:
    """The initializer called `name` (see `INITIALIZERS`), e.g. "he_normal" or "normal:0.3".

    Raises:
      ValueError: naming the argument and the valid choices for an unknown name,
        and the range for a negative std/half-width/gain.
    """
    text = str(name).strip().lower()
    base, sep, arg = text.partition(":")
    if not sep and base in _FACTORIES:
        return _FACTORIES[base]()
    if base in _PARAMETRIC:
        if not sep:
            if base == "constant":
                raise ValueError(f"init={name!r} needs a value, e.g. 'constant:0.5'")
            return _PARAMETRIC[base]()
        try:
            value = float(arg)
        except ValueError:
            raise ValueError(f"init={name!r}: {arg!r} after ':' is not a number") from None
        if base != "constant":
            what = {"normal": "stddev", "uniform": "half-width", "orthogonal": "gain"}[base]
            check_range(f"init={name!r}: {what}", value, low=0.0)
        return _PARAMETRIC[base](value)
    raise unknown_choice("init", name, INITIALIZERS)
