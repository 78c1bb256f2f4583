"""Activation functions by name, and the initializer each one wants.

Every activation is an elementwise function of a JAX array except `softmax`,
which normalizes over the last axis. The formulas:

=============  ==============================================================  =====================
name           f(x)                                                            source
=============  ==============================================================  =====================
linear         x  (aliases "none", "identity")                                 --
sigmoid        1 / (1 + exp(-x))                                               --
tanh           tanh(x)                                                         --
relu           max(x, 0)                                                       Nair & Hinton 2010
leaky_relu     x if x > 0 else 0.01 x  (PyTorch's and jax.nn's slope)          Maas et al. 2013
elu            x if x > 0 else exp(x) - 1  (alpha = 1)                         Clevert et al. 2016
selu           1.0507... * (x if x > 0 else 1.6732... (exp(x) - 1))            Klambauer et al. 2017
gelu           x Phi(x), Phi the standard normal CDF (exact, PyTorch's default) Hendrycks & Gimpel 2016
gelu_tanh      0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (jax.nn's)     Hendrycks & Gimpel 2016
swish / silu   x sigmoid(x)                                                    Ramachandran et al. 2017
mish           x tanh(softplus(x))                                             Misra 2019
softplus       log(1 + exp(x)), computed stably                                --
softmax        exp(x_i) / sum_j exp(x_j) over the last axis                    --
=============  ==============================================================  =====================

`recommended_init` is the lecture table (the gradients-and-activations lecture, after Geron, *Hands-On
Machine Learning*, ch. 11): Glorot for linear/tanh/sigmoid/softmax, He for ReLU
and its relatives (leaky ReLU, ELU, GELU, Swish, Mish; softplus is a smooth
ReLU and goes with them), LeCun for SELU (self-normalization is only proven for
LeCun-normal weights).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxopt_lab._checks import unknown_choice

__all__ = [
    "ACTIVATIONS",
    "get_activation",
    "recommended_init",
    "linear",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "mish",
]

Activation = Callable[[jax.Array], jax.Array]


def linear(x: jax.Array) -> jax.Array:
    """The identity: a layer without a nonlinearity."""
    return x


def leaky_relu(x: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """`x` for x > 0, `negative_slope * x` otherwise (slope 0.01 as in PyTorch and jax.nn)."""
    return jnp.where(x >= 0, x, negative_slope * x)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """`x` for x > 0, `alpha * (exp(x) - 1)` otherwise (Clevert et al., 2016)."""
    # The unused branch must not overflow for large positive x (a nan gradient through where).
    negative = jnp.where(x > 0, 0.0, x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(negative))


def gelu(x: jax.Array) -> jax.Array:
    """Exact GELU, `x * Phi(x)` with Phi the standard normal CDF (Hendrycks & Gimpel, 2016)."""
    return 0.5 * x * (1.0 + jax.lax.erf(x / jnp.sqrt(jnp.asarray(2.0, x.dtype))))


def gelu_tanh(x: jax.Array) -> jax.Array:
    """GELU's tanh approximation, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`."""
    c = jnp.sqrt(jnp.asarray(2.0 / jnp.pi, x.dtype))
    return 0.5 * x * (1.0 + jnp.tanh(c * (x + 0.044715 * x**3)))


def mish(x: jax.Array) -> jax.Array:
    """`x * tanh(softplus(x))` (Misra, 2019)."""
    return x * jnp.tanh(jax.nn.softplus(x))


def _softmax(x: jax.Array) -> jax.Array:
    return jax.nn.softmax(x, axis=-1)


_ACTIVATIONS: dict[str, Activation] = {
    "linear": linear,
    "none": linear,
    "identity": linear,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": jax.nn.selu,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "swish": jax.nn.silu,
    "silu": jax.nn.silu,
    "mish": mish,
    "softplus": jax.nn.softplus,
    "softmax": _softmax,
}

ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)
"""Every accepted activation name, aliases included."""

_GLOROT = ("linear", "none", "identity", "sigmoid", "tanh", "softmax")
_LECUN = ("selu",)


def get_activation(name: str) -> Activation:
    """The activation function called `name` (see `ACTIVATIONS`); case-insensitive."""
    key = str(name).lower()
    if key not in _ACTIVATIONS:
        raise unknown_choice("activation", name, ACTIVATIONS)
    return _ACTIVATIONS[key]


def recommended_init(activation: str) -> str:
    """The initializer the lectures recommend for `activation` (the gradients-and-activations lecture's table).

    "glorot_uniform" (Glorot, Keras's default, which the table calls "default")
    for linear, sigmoid, tanh and softmax; "lecun_normal" for SELU; "he_normal"
    for ReLU and every ReLU-like activation. This is what ``init="auto"`` means.
    """
    key = str(activation).lower()
    if key not in _ACTIVATIONS:
        raise unknown_choice("activation", activation, ACTIVATIONS)
    if key in _GLOROT:
        return "glorot_uniform"
    if key in _LECUN:
        return "lecun_normal"
    return "he_normal"
