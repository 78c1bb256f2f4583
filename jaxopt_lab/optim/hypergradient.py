"""Hypergradient descent: the learning rate learned online from successive gradients.

Baydin et al. (2018) differentiate the loss at the current step with respect to the
learning rate used at the previous one. For an update :math:`u_{t-1} = -\\alpha\\, d_{t-1}`
(the direction :math:`d` is the gradient for SGD, Adam's normalized moment for Adam),

.. math::
    \\frac{\\partial f(\\theta_{t-1})}{\\partial \\alpha} = \\nabla f(\\theta_{t-1}) \\cdot
    \\frac{\\partial u_{t-1}}{\\partial \\alpha} = -g_t \\cdot d_{t-1},

so one more gradient-descent step, on :math:`\\alpha` with rate :math:`\\beta`, costs a dot
product: :math:`\\alpha_t = \\alpha_{t-1} + \\beta\\, g_t \\cdot d_{t-1}`. The rate grows while
successive gradients agree and shrinks when they point against each other. These are the
principled form of the lectures' gradient-based rate control (`gradient_lr_control`),
which only ever shrinks the rate.

The rate is one scalar for all parameters (the paper's global form); the dot product runs
over every leaf. The state carries it, so `state.learning_rate` is the rate now in use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab.optim.base import GradientTransformation, check_range

__all__ = ["HdSgdState", "HdAdamState", "hd_sgd", "hd_adam"]


class HdSgdState(NamedTuple):
    """State of `hd_sgd`.

    Fields:
      learning_rate: the current rate :math:`\\alpha_t` (a scalar).
      prev_grad: the previous gradient :math:`g_{t-1}` (zeros before the first step).
    """

    learning_rate: Any
    prev_grad: Any


class HdAdamState(NamedTuple):
    """State of `hd_adam`.

    Fields:
      count: steps taken (int32).
      learning_rate: the current rate :math:`\\alpha_t` (a scalar).
      mu: first moment :math:`m_t`.
      nu: second moment :math:`v_t`.
      prev_direction: the previous step's direction :math:`\\hat m_{t-1} / (\\sqrt{\\hat v_{t-1}} + \\epsilon)`
        (zeros before the first step).
    """

    count: Any
    learning_rate: Any
    mu: Any
    nu: Any
    prev_direction: Any


def _dot(a: Any, b: Any) -> jax.Array:
    return sum((jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)), jnp.zeros(()))


def _rate_like(learning_rate: Any, params: Any) -> jax.Array:
    # The rate keeps the parameters' floating dtype (float32 training stays float32).
    leaves = [p for p in jax.tree.leaves(params) if jnp.issubdtype(jnp.asarray(p).dtype, jnp.inexact)]
    dtype = leaves[0].dtype if leaves else jnp.result_type(float)
    return jnp.asarray(learning_rate, dtype)


def hd_sgd(learning_rate: jax.typing.ArrayLike, hypergrad_lr: jax.typing.ArrayLike = 1e-3) -> GradientTransformation:
    r"""SGD with hypergradient descent on its learning rate (SGD-HD; Baydin et al., 2018, Algorithm 1).

    .. math::
        g_t = \nabla f(\theta_{t-1}), \qquad
        \alpha_t = \alpha_{t-1} + \beta\, g_t \cdot g_{t-1}, \qquad
        \theta_t = \theta_{t-1} - \alpha_t g_t,

    with :math:`g_0 = 0` (the first step uses :math:`\alpha_0`). The rate is not kept
    positive: with too large a :math:`\beta` it can change sign, as in the paper.

    Args:
      learning_rate: :math:`\alpha_0 \ge 0`, the initial rate (a float or JAX scalar; may be traced).
      hypergrad_lr: :math:`\beta \ge 0`, the rate of the rate's own descent (0 gives plain SGD).

    Returns:
      A `GradientTransformation` whose updates are :math:`-\alpha_t g_t`; `state.learning_rate`
      holds :math:`\alpha_t`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab.optim import hd_sgd
      >>> opt = hd_sgd(0.1, hypergrad_lr=0.01)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for _ in range(2):  # f(p) = |p|^2: successive gradients agree, so the rate grows
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = params + updates
      >>> [round(float(v), 3) for v in params], round(float(state.learning_rate), 4)
      ([0.384, -0.768], 0.26)

    References:
      Baydin, Cornish, Martínez Rubio, Schmidt & Wood (2018), "Online learning rate adaptation
      with hypergradient descent", ICLR. Almeida et al. (1998) proposed the rule for SGD.
    """
    check_range("learning_rate", learning_rate, low=0.0)
    check_range("hypergrad_lr", hypergrad_lr, low=0.0)

    def init_fn(params):
        return HdSgdState(learning_rate=_rate_like(learning_rate, params), prev_grad=optax.tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        rate = state.learning_rate + hypergrad_lr * _dot(updates, state.prev_grad)
        rate = rate.astype(state.learning_rate.dtype)
        new_updates = jax.tree.map(lambda g: (-rate * g).astype(g.dtype), updates)
        return new_updates, HdSgdState(learning_rate=rate, prev_grad=updates)

    return GradientTransformation(init_fn, update_fn)


def hd_adam(
    learning_rate: jax.typing.ArrayLike,
    hypergrad_lr: jax.typing.ArrayLike = 1e-7,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> GradientTransformation:
    r"""Adam with hypergradient descent on its learning rate (Adam-HD; Baydin et al., 2018, Algorithm 1).

    .. math::
        g_t &= \nabla f(\theta_{t-1}), \qquad
        \alpha_t = \alpha_{t-1} + \beta\, g_t \cdot d_{t-1}, \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \\
        d_t &= \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}, \qquad
        \theta_t = \theta_{t-1} - \alpha_t d_t,

    with :math:`d_0 = 0`. The paper's default :math:`\beta = 10^{-7}` is small because
    :math:`g \cdot d` sums over every parameter and :math:`d` is of order 1 per element.

    Args:
      learning_rate: :math:`\alpha_0 \ge 0` (may be traced).
      hypergrad_lr: :math:`\beta \ge 0` (0 gives Adam).
      b1: :math:`\beta_1 \in [0, 1)`.
      b2: :math:`\beta_2 \in [0, 1)`.
      eps: :math:`\epsilon \ge 0`, added to the root of the debiased second moment.

    Returns:
      A `GradientTransformation` whose updates are :math:`-\alpha_t d_t`; `state.learning_rate`
      holds :math:`\alpha_t`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab.optim import hd_adam
      >>> opt = hd_adam(0.1, hypergrad_lr=0.01)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = params + updates
      >>> [round(float(v), 3) for v in params], round(float(state.learning_rate), 4)
      ([0.745, -1.744], 0.156)

    References:
      Baydin, Cornish, Martínez Rubio, Schmidt & Wood (2018), "Online learning rate adaptation
      with hypergradient descent", ICLR; Kingma & Ba (2015), "Adam".
    """
    check_range("learning_rate", learning_rate, low=0.0)
    check_range("hypergrad_lr", hypergrad_lr, low=0.0)
    check_range("b1", b1, low=0.0, high=1.0, high_inclusive=False)
    check_range("b2", b2, low=0.0, high=1.0, high_inclusive=False)
    check_range("eps", eps, low=0.0)

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return HdAdamState(
            count=jnp.zeros((), jnp.int32), learning_rate=_rate_like(learning_rate, params), mu=zeros, nu=zeros,
            prev_direction=zeros,
        )

    def update_fn(updates, state, params=None):
        del params
        rate = (state.learning_rate + hypergrad_lr * _dot(updates, state.prev_direction)).astype(
            state.learning_rate.dtype
        )
        count = optax.safe_increment(state.count)
        mu = jax.tree.map(lambda m, g: (b1 * m + (1 - b1) * g).astype(m.dtype), state.mu, updates)
        nu = jax.tree.map(lambda v, g: (b2 * v + (1 - b2) * g * g).astype(v.dtype), state.nu, updates)
        t = count.astype(rate.dtype)
        c1, c2 = 1 - b1**t, 1 - b2**t
        direction = jax.tree.map(lambda m, v: (m / c1) / (jnp.sqrt(v / c2) + eps), mu, nu)
        new_updates = jax.tree.map(lambda d, g: (-rate * d).astype(g.dtype), direction, updates)
        direction = jax.tree.map(lambda d, g: d.astype(g.dtype), direction, updates)
        return new_updates, HdAdamState(count=count, learning_rate=rate, mu=mu, nu=nu, prev_direction=direction)

    return GradientTransformation(init_fn, update_fn)
