"""Gradient transformations: the building blocks every optimizer here is chained from.

Each factory returns an optax-compatible `GradientTransformation`; optimizers in
`jaxopt_lab.optim.aliases` are `chain(...)`s of these. Conventions:

* Transforms compute a *descent direction* (same sign as the gradient); only
  `scale_by_learning_rate` flips the sign, so every optimizer ends with it (or
  with a transform placed after it, such as momentum in `rmsprop` or iterate
  averaging in `asgd`).
* Every numeric hyperparameter may be a Python number, a JAX scalar or a traced
  value (inside `jit`/`vmap`): nothing here branches in Python on its value.
  Concrete out-of-range values raise `ValueError` at construction.
* State moments keep the dtype they were created with (the parameters' dtype,
  or `mu_dtype`/`accumulator_dtype`), and updates keep the incoming updates'
  dtype, so float64 hyperparameters never silently promote float32 training.
* Only the protocol (`GradientTransformation`, `masked`) and tree utilities come
  from optax; the update rules are written here and tested against optax, torch
  and closed forms.
"""

import numbers
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab._checks import check_choice
from jaxopt_lab.optim.base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    check_range,
    identity,
)

__all__ = [
    "ScaleByScheduleState",
    "TraceState",
    "ScaleByRssState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByAdamaxState",
    "ScaleByNadamState",
    "ScaleByBeliefState",
    "ScaleByYogiState",
    "ScaleByLionState",
    "ScaleByAdaBoundState",
    "AddNoiseState",
    "GradientLrControlState",
    "AverageIteratesState",
    "scale",
    "scale_by_schedule",
    "scale_by_learning_rate",
    "trace",
    "scale_by_rss",
    "scale_by_rms",
    "scale_by_stddev",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_amsgrad",
    "scale_by_adamax",
    "scale_by_nadam",
    "scale_by_radam",
    "scale_by_belief",
    "scale_by_yogi",
    "scale_by_lion",
    "scale_by_trust_ratio",
    "scale_by_adabound",
    "scale_by_sign",
    "add_noise",
    "add_decayed_weights",
    "add_l2_penalty_grad",
    "add_l1_penalty_grad",
    "clip",
    "clip_by_global_norm",
    "scale_by_gradient_lr_control",
    "average_iterates",
    "averaged_params",
    "check_choice",
]


# --------------------------------------------------------------------------- helpers


def _is_none(x: Any) -> bool:
    return x is None


def _map(fn: Callable[..., Any], updates: Any, *rest: Any) -> Any:
    """`jax.tree.map` led by its first tree, whose `None` leaves pass through as `None`.

    optax treats a `None` update (a parameter without gradient) as a leaf and
    returns `None` for it; a plain `jax.tree.map` over `updates` and a state
    tree built from the parameters would fail on the structure mismatch.
    """
    return jax.tree.map(lambda g, *r: None if g is None else fn(g, *r), updates, *rest, is_leaf=_is_none)


def _abs_sq(x: jax.Array) -> jax.Array:
    """:math:`|x|^2`: the square for real `x`, :math:`\\mathrm{Re}(\\bar x x)` for complex `x` (as optax).

    For complex parameters :math:`x^2` is complex and can be negative, so second
    moments built from it point the wrong way; :math:`|x|^2` is real and >= 0.
    """
    return jnp.square(x) if jnp.isrealobj(x) else (jnp.conj(x) * x).real


def _increment(count: jax.Array) -> jax.Array:
    # Saturates instead of wrapping around at int32's maximum (very long runs).
    return optax.safe_increment(count)


def _zeros(params: Any, dtype: Any = None) -> Any:
    return optax.tree.zeros_like(params, dtype=dtype)


def _full(params: Any, value: Any) -> Any:
    # The fill value may be traced; the leaves keep the parameters' dtype.
    return _map(lambda p: jnp.full(p.shape, value, dtype=p.dtype), params)


def _cast_like(tree: Any, like: Any) -> Any:
    """Cast each leaf of `tree` to the dtype of the matching leaf of `like`.

    Float64 hyperparameters (x64 on) would otherwise promote float32 moments,
    changing the state's dtype between steps (and breaking `lax.scan` carries).
    """
    return _map(lambda x, ref: jnp.asarray(x, dtype=jnp.result_type(ref)), tree, like)


def _canonical_dtype(dtype: Any) -> Any:
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def _ema(new: Any, old: Any, decay: jax.typing.ArrayLike) -> Any:
    """Exponential moving average `(1 - decay) * new + decay * old`, leaf by leaf."""
    return _map(lambda g, m: (1 - decay) * g + decay * m, new, old)


def _ema_sq(new: Any, old: Any, decay: jax.typing.ArrayLike) -> Any:
    """Exponential moving average of the elementwise square of `new`."""
    return _map(lambda g, v: (1 - decay) * _abs_sq(g) + decay * v, new, old)


def _debias(moment: Any, decay: jax.typing.ArrayLike, count: jax.Array) -> Any:
    """Adam's bias correction `moment / (1 - decay**count)`, computed in the moment's dtype."""
    correction = 1 - decay**count
    return _map(lambda m: m / jnp.asarray(correction, dtype=m.dtype), moment)


def _check_beta(name: str, value: Any) -> None:
    check_range(name, value, low=0.0, high=1.0, high_inclusive=False)


def _check_nonneg(name: str, value: Any) -> None:
    check_range(name, value, low=0.0)


def _check_pos(name: str, value: Any) -> None:
    check_range(name, value, low=0.0, low_inclusive=False)


def _masked(tx: GradientTransformation, mask: Any) -> GradientTransformation:
    if mask is None:
        return tx
    # optax's wrapper only routes leaves; it holds no optimizer math.
    return optax.masked(tx, mask)


# --------------------------------------------------------------------------- scaling


def scale(step_size: jax.typing.ArrayLike) -> GradientTransformation:
    r"""Multiply updates by a fixed (possibly traced) scalar: :math:`u \leftarrow s\,u`.

    Args:
      step_size: the factor `s`. No sign convention: `scale(-1.0)` flips.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale(0.5)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.25 -0.5 ]

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """

    def update_fn(updates, state, params=None):
        del params
        return _map(lambda g: jnp.asarray(step_size * g, dtype=g.dtype), updates), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_schedule`.

    Fields:
      count: number of updates applied so far (int32 scalar); the schedule is
        evaluated at this value, so the first update uses `step_size_fn(0)`.
    """

    count: jax.Array


def scale_by_schedule(step_size_fn: Callable[[jax.Array], Any]) -> GradientTransformation:
    r"""Multiply updates by a schedule of the step count: :math:`u_t \leftarrow s(t)\,u_t`, t = 0, 1, ...

    Args:
      step_size_fn: `count -> factor`; may close over traced values.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_schedule(lambda count: 0.5 ** count)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.5 -1. ]

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """

    def init_fn(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        factor = step_size_fn(state.count)
        updates = _map(lambda g: jnp.asarray(factor, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=_increment(state.count))

    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> GradientTransformation:
    r"""Scale by the learning rate and turn the descent direction into a step: :math:`u \leftarrow -\eta_t u`.

    This is the one place in the package where the sign flips: every other
    transform returns a direction with the gradient's sign.

    Args:
      learning_rate: a float, a JAX scalar (traced values allowed) or a schedule
        `step -> value`. `None` gives the identity (no scaling and no sign flip),
        as in optax.
      flip_sign: multiply by `-learning_rate` (default) or by `+learning_rate`.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_learning_rate(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [-0.05        0.09999999]

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """
    if learning_rate is None:
        return identity()
    check_range("learning_rate", learning_rate, low=0.0)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# --------------------------------------------------------------------------- momentum


class TraceState(NamedTuple):
    """State of `trace`.

    Fields:
      trace: the velocity :math:`v_t` (heavy-ball accumulator), one leaf per parameter.
    """

    trace: Any


def trace(
    decay: jax.typing.ArrayLike, nesterov: bool = False, accumulator_dtype: jax.typing.DTypeLike | None = None
) -> GradientTransformation:
    r"""Heavy-ball momentum (Polyak, 1964), optionally with Nesterov's look-ahead (Sutskever et al., 2013).

    .. math::
        v_t = g_t + \mu v_{t-1}, \qquad
        u_t = v_t \ \text{(heavy ball)} \quad\text{or}\quad u_t = g_t + \mu v_t \ \text{(Nesterov)}.

    With a constant learning rate this is exactly the lectures' displacement form
    :math:`m \leftarrow \mu m - \alpha g,\ x \leftarrow x + m` (heavy ball) and
    :math:`x \leftarrow x + \mu m - \alpha g` (Nesterov), with :math:`m = -\alpha v`,
    and PyTorch's `SGD(momentum=mu, nesterov=...)` without dampening.

    Args:
      decay: the momentum coefficient :math:`\mu \in [0, 1]`.
      nesterov: use Nesterov's look-ahead update.
      accumulator_dtype: dtype of the velocity (default: the parameters' dtype).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.trace(0.9)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.5 -1. ]

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
        <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964
      Sutskever et al., `On the importance of initialization and momentum in deep learning
        <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013
    """
    check_range("decay", decay, low=0.0, high=1.0)
    accumulator_dtype = _canonical_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=_zeros(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        velocity = _map(lambda g, v: g + decay * v, updates, state.trace)
        if nesterov:
            out = _map(lambda g, v: g + decay * v, updates, velocity)
        else:
            out = velocity
        return _cast_like(out, updates), TraceState(trace=_cast_like(velocity, state.trace))

    return GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------- adaptive scalings


class ScaleByRssState(NamedTuple):
    """State of `scale_by_rss`.

    Fields:
      sum_of_squares: :math:`s_t = s_0 + \\sum_{i \\le t} g_i^2`, elementwise.
    """

    sum_of_squares: Any


def scale_by_rss(
    initial_accumulator_value: jax.typing.ArrayLike = 0.1, eps: jax.typing.ArrayLike = 1e-7, *, eps_in_sqrt: bool = True
) -> GradientTransformation:
    r"""AdaGrad's scaling by the root of the sum of squared gradients (Duchi, Hazan & Singer, 2011).

    .. math::
        s_t = s_{t-1} + g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{s_t + \epsilon}} \ \text{(default, optax; 0 where } s_t = 0\text{)}
        \quad\text{or}\quad u_t = \frac{g_t}{\sqrt{s_t} + \epsilon} \ (\text{eps\_in\_sqrt=False, PyTorch}).

    Args:
      initial_accumulator_value: :math:`s_0` (optax 0.1, PyTorch 0).
      eps: the stabilizer (optax 1e-7 inside the root, PyTorch 1e-10 outside).
      eps_in_sqrt: where eps goes; `False` reproduces `torch.optim.Adagrad`.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_rss()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.8452 -0.9535]

    References:
      Duchi, Hazan & Singer, `Adaptive Subgradient Methods for Online Learning and Stochastic Optimization
        <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011
    """
    _check_nonneg("initial_accumulator_value", initial_accumulator_value)
    _check_nonneg("eps", eps)

    def init_fn(params):
        return ScaleByRssState(sum_of_squares=_full(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        sums = _map(lambda g, s: _abs_sq(g) + s, updates, state.sum_of_squares)
        if eps_in_sqrt:
            # A zero accumulator means a zero gradient so far: its update is 0, not 0/0.
            out = _map(lambda s, g: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g, sums, updates)
        else:
            out = _map(lambda s, g: g / (jnp.sqrt(s) + eps), sums, updates)
        return _cast_like(out, updates), ScaleByRssState(_cast_like(sums, state.sum_of_squares))

    return GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms` without bias correction.

    Fields:
      nu: EMA of squared gradients :math:`\\nu_t`.
    """

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """State of `scale_by_rms(bias_correction=True)`.

    Fields:
      count: number of updates so far (int32 scalar), for the bias correction.
      nu: EMA of squared gradients :math:`\\nu_t` (uncorrected).
    """

    count: jax.Array
    nu: Any


def _rms_scaling(nu_hat: Any, eps: jax.typing.ArrayLike, eps_in_sqrt: bool) -> Any:
    if eps_in_sqrt:
        return _map(lambda n: jax.lax.rsqrt(n + eps), nu_hat)
    return _map(lambda n: 1 / (jnp.sqrt(n) + eps), nu_hat)


def scale_by_rms(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""RMSProp's scaling (Tieleman & Hinton, 2012, lecture 6.5).

    .. math::
        \nu_t = \rho \nu_{t-1} + (1 - \rho) g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{\hat\nu_t + \epsilon}} \ \text{(eps\_in\_sqrt)} \quad\text{or}\quad
        \frac{g_t}{\sqrt{\hat\nu_t} + \epsilon},

    with :math:`\hat\nu_t = \nu_t / (1 - \rho^t)` if `bias_correction` else :math:`\nu_t`.
    PyTorch's `RMSprop(alpha=rho)` is `eps_in_sqrt=False`, `initial_scale=0`.

    Args:
      decay: :math:`\rho \in [0, 1]`.
      eps: stabilizer (> 0).
      initial_scale: :math:`\nu_0` (TensorFlow 1 used 1).
      eps_in_sqrt: eps inside the root (optax default) or added to it (PyTorch).
      bias_correction: divide by :math:`1 - \rho^t` as Adam does.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_rms()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 3.1622999 -3.1622999]

    References:
      Tieleman & Hinton, `Lecture 6.5, rmsprop
        <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012
      Graves, `Generating Sequences With Recurrent Neural Networks <https://arxiv.org/abs/1308.0850>`_, 2013
    """
    check_range("decay", decay, low=0.0, high=1.0)
    _check_pos("eps", eps)
    _check_nonneg("initial_scale", initial_scale)

    def init_fn(params):
        nu = _full(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(count=jnp.zeros([], jnp.int32), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates, state, params=None):
        del params
        nu = _ema_sq(updates, state.nu, decay)
        if bias_correction:
            count = _increment(state.count)
            nu_hat = _debias(nu, decay, count)
        else:
            nu_hat = nu
        out = _map(lambda s, g: s * g, _rms_scaling(nu_hat, eps, eps_in_sqrt), updates)
        nu = _cast_like(nu, state.nu)
        new_state = ScaleByRmsWithCountState(count, nu) if bias_correction else ScaleByRmsState(nu)
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByRStdDevState(NamedTuple):
    """State of `scale_by_stddev` without bias correction.

    Fields:
      mu: EMA of gradients :math:`\\mu_t`.
      nu: EMA of squared gradients :math:`\\nu_t`.
    """

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """State of `scale_by_stddev(bias_correction=True)`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: EMA of gradients (uncorrected).
      nu: EMA of squared gradients (uncorrected).
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_stddev(
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> GradientTransformation:
    r"""Centered RMSProp (Graves, 2013, eq. 38-40): scale by the running standard deviation.

    .. math::
        \mu_t = \rho\mu_{t-1} + (1-\rho) g_t, \quad \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2, \quad
        u_t = \frac{g_t}{\sqrt{\hat\nu_t - \hat\mu_t^2 + \epsilon}}
        \ \text{or}\ \frac{g_t}{\sqrt{\hat\nu_t - \hat\mu_t^2} + \epsilon}.

    PyTorch's `RMSprop(centered=True)` is `eps_in_sqrt=False`.
    Arguments as in `scale_by_rms`.

    Args:
      decay: decay of the moving averages, in [0, 1].
      eps: stabilizer of the root (inside it by default, added to it with `eps_in_sqrt=False`).
      initial_scale: initial value of the second-moment accumulator.
      eps_in_sqrt: eps inside the root (optax's default) or added to the root (`False`, PyTorch's).
      bias_correction: divide the moments by :math:`1 - \rho^t` as Adam does.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_stddev()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 3.3332999 -3.3332999]

    References:
      Tieleman & Hinton, `Lecture 6.5, rmsprop
        <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012
      Graves, `Generating Sequences With Recurrent Neural Networks <https://arxiv.org/abs/1308.0850>`_, 2013
    """
    check_range("decay", decay, low=0.0, high=1.0)
    _check_pos("eps", eps)
    _check_nonneg("initial_scale", initial_scale)

    def init_fn(params):
        mu = _zeros(params)
        nu = _full(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, decay)
        nu = _ema_sq(updates, state.nu, decay)
        if bias_correction:
            count = _increment(state.count)
            mu_hat, nu_hat = _debias(mu, decay, count), _debias(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        variance = _map(lambda m, n: n - _abs_sq(m), mu_hat, nu_hat)
        out = _map(lambda s, g: s * g, _rms_scaling(variance, eps, eps_in_sqrt), updates)
        mu, nu = _cast_like(mu, state.mu), _cast_like(nu, state.nu)
        if bias_correction:
            new_state = ScaleByRStdDevWithCountState(count, mu, nu)
        else:
            new_state = ScaleByRStdDevState(mu, nu)
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    """State of `scale_by_adadelta`.

    Fields:
      e_g: EMA of squared gradients :math:`E[g^2]_t`.
      e_x: EMA of squared updates :math:`E[\\Delta x^2]_{t}`.
    """

    e_g: Any
    e_x: Any


def scale_by_adadelta(rho: jax.typing.ArrayLike = 0.9, eps: jax.typing.ArrayLike = 1e-6) -> GradientTransformation:
    r"""AdaDelta's unit-corrected scaling (Zeiler, 2012, Algorithm 1).

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2, \quad
        \Delta_t = \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t, \quad
        E[\Delta^2]_t = \rho E[\Delta^2]_{t-1} + (1-\rho)\Delta_t^2.

    Args:
      rho: decay :math:`\rho \in [0, 1]`.
      eps: stabilizer (> 0; it also sets the first step's size).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_adadelta()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.0032 -0.0032]

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method <https://arxiv.org/abs/1212.5701>`_, 2012
    """
    check_range("rho", rho, low=0.0, high=1.0)
    _check_pos("eps", eps)

    def init_fn(params):
        return ScaleByAdaDeltaState(e_g=_zeros(params), e_x=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        e_g = _ema_sq(updates, state.e_g, rho)
        delta = _map(lambda g, eg, ex: (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps)) * g, updates, e_g, state.e_x)
        e_x = _ema_sq(delta, state.e_x, rho)
        new_state = ScaleByAdaDeltaState(_cast_like(e_g, state.e_g), _cast_like(e_x, state.e_x))
        return _cast_like(delta, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdamState(NamedTuple):
    """State of `scale_by_adam`, `scale_by_radam`: exactly two moment trees and a count.

    Fields:
      count: number of updates so far (int32 scalar), for the bias corrections.
      mu: first moment, EMA of gradients :math:`m_t` (uncorrected; dtype `mu_dtype`).
      nu: second moment, EMA of squared gradients :math:`v_t` (uncorrected).
    """

    count: jax.Array
    mu: Any
    nu: Any


def _nesterov_mu_hat(mu: Any, updates: Any, b1: jax.typing.ArrayLike, count: jax.Array) -> Any:
    # Dozat (2016), as optax writes it: the next step's bias-corrected momentum
    # plus the bias-corrected current gradient.
    return _map(
        lambda m, g: b1 * m + (1 - b1) * g,
        _debias(mu, b1, _increment(count)),
        _debias(updates, b1, count),
    )


def scale_by_adam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""Adam's scaling (Kingma & Ba, 2015, Algorithm 1); NAdam with `nesterov=True` (Dozat, 2016).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \\
        \hat m_t = \frac{m_t}{1-\beta_1^t}
        \ \Big(\text{nesterov: }
        \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g_t}{1-\beta_1^t}\Big),
        \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
        u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}.

    Args:
      b1, b2: moment decays in [0, 1).
      eps: added to the root (>= 0).
      eps_root: added inside the root (>= 0; useful when differentiating through Adam).
      mu_dtype: dtype of the first moment (default: the parameters').
      nesterov: NAdam's look-ahead first moment.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_adam()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization <https://arxiv.org/abs/1412.6980>`_, 2015
    """
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        mu = _zeros(params, mu_dtype)
        return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        nu = _ema_sq(updates, state.nu, b2)
        count = _increment(state.count)
        mu_hat = _nesterov_mu_hat(mu, updates, b1, count) if nesterov else _debias(mu, b1, count)
        nu_hat = _debias(nu, b2, count)
        out = _map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        new_state = ScaleByAdamState(count, _cast_like(mu, state.mu), _cast_like(nu, state.nu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    """State of `scale_by_amsgrad`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: first moment :math:`m_t` (uncorrected).
      nu: second moment :math:`v_t` (uncorrected).
      nu_max: running maximum of the second moment: of the bias-corrected
        :math:`\\hat v_t` (optax) or of the raw :math:`v_t`
        (`max_before_bias_correction=True`, PyTorch).
    """

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_before_bias_correction: bool = False,
) -> GradientTransformation:
    r"""AMSGrad (Reddi, Kale & Kumar, 2018): Adam with a non-decreasing second moment.

    .. math::
        \tilde v_t = \max(\tilde v_{t-1}, \hat v_t), \qquad
        u_t = \frac{\hat m_t}{\sqrt{\tilde v_t + \epsilon_{root}} + \epsilon}
        \qquad (\text{optax: max of the corrected } \hat v_t),

    or, with `max_before_bias_correction=True` (PyTorch's `Adam(amsgrad=True)`),
    :math:`\tilde v_t = \max(\tilde v_{t-1}, v_t)` over the raw moment, then
    :math:`u_t = \hat m_t / (\sqrt{\tilde v_t/(1-\beta_2^t) + \epsilon_{root}} + \epsilon)`.

    Args:
      b1, b2, eps, eps_root, mu_dtype: as in `scale_by_adam`.
      bias_correction_mu, bias_correction_nu: apply Adam's bias corrections.
      max_before_bias_correction: take the maximum over the raw second moment (PyTorch).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_amsgrad()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Reddi, Kale & Kumar, `On the Convergence of Adam and Beyond <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018
    """
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(
            count=jnp.zeros([], jnp.int32),
            mu=_zeros(params, mu_dtype),
            nu=_zeros(params),
            nu_max=_zeros(params),
        )

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        nu = _ema_sq(updates, state.nu, b2)
        count = _increment(state.count)
        mu_hat = _debias(mu, b1, count) if bias_correction_mu else mu
        if max_before_bias_correction:
            nu_max = _map(lambda v, vm: jnp.maximum(vm, v), nu, state.nu_max)
            nu_eff = _debias(nu_max, b2, count) if bias_correction_nu else nu_max
        else:
            nu_hat = _debias(nu, b2, count) if bias_correction_nu else nu
            nu_max = nu_eff = _map(lambda v, vm: jnp.maximum(vm, v), nu_hat, state.nu_max)
        out = _map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_eff)
        new_state = ScaleByAmsgradState(
            count,
            _cast_like(mu, state.mu),
            _cast_like(nu, state.nu),
            _cast_like(nu_max, state.nu_max),
        )
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByAdamaxState(NamedTuple):
    """State of `scale_by_adamax`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: first moment :math:`m_t` (uncorrected).
      nu: exponentially weighted infinity norm :math:`u_t = \\max(\\beta_2 u_{t-1}, |g_t| + \\epsilon)`.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adamax(
    b1: jax.typing.ArrayLike = 0.9, b2: jax.typing.ArrayLike = 0.999, eps: jax.typing.ArrayLike = 1e-8
) -> GradientTransformation:
    r"""AdaMax (Kingma & Ba, 2015, Algorithm 2): Adam with the infinity norm.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        n_t = \max(\beta_2 n_{t-1}, |g_t| + \epsilon), \quad
        u_t = \frac{m_t}{(1-\beta_1^t)\, n_t}.

    This is also exactly `torch.optim.Adamax` (eps inside the max).

    Args:
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the infinity norm n_t, in [0, 1).
      eps: added to |g_t| inside the maximum (> 0).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_adamax()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization <https://arxiv.org/abs/1412.6980>`_, 2015
    """
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_pos("eps", eps)

    def init_fn(params):
        return ScaleByAdamaxState(count=jnp.zeros([], jnp.int32), mu=_zeros(params), nu=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        count = _increment(state.count)
        mu = _ema(updates, state.mu, b1)
        nu = _map(lambda g, n: jnp.maximum(jnp.abs(g) + eps, b2 * n), updates, state.nu)
        out = _map(lambda m, n: m / n, _debias(mu, b1, count), nu)
        new_state = ScaleByAdamaxState(count, _cast_like(mu, state.mu), _cast_like(nu, state.nu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByNadamState(NamedTuple):
    """State of `scale_by_nadam` (Dozat's momentum schedule, as PyTorch's `NAdam`).

    Fields:
      count: number of updates so far (int32 scalar).
      mu_product: :math:`\\prod_{i \\le t} \\mu_i`, the product of the scheduled momentum
        coefficients (a scalar in the parameters' dtype).
      mu: first moment :math:`m_t`.
      nu: second moment :math:`v_t`.
    """

    count: jax.Array
    mu_product: jax.Array
    mu: Any
    nu: Any


def scale_by_nadam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    momentum_decay: jax.typing.ArrayLike = 4e-3,
    mu_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformation:
    r"""NAdam with Dozat's momentum schedule (Dozat, 2016; PyTorch's `torch.optim.NAdam`).

    .. math::
        \mu_t = \beta_1\big(1 - \tfrac12\, 0.96^{t\psi}\big), \quad
        \Pi_t = \prod_{i \le t}\mu_i, \quad
        \hat v_t = \frac{v_t}{1-\beta_2^t}, \\
        u_t = \frac{(1-\mu_t)}{1-\Pi_t}\,\frac{g_t}{\sqrt{\hat v_t+\epsilon_{root}}+\epsilon}
            + \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}}\,\frac{m_t}{\sqrt{\hat v_t+\epsilon_{root}}+\epsilon},

    with :math:`\psi` = `momentum_decay`. Unlike `scale_by_adam(nesterov=True)`
    (optax's NAdam), the momentum coefficient warms up from :math:`\beta_1/2`.

    Args:
      b1, b2, eps, eps_root, mu_dtype: as in `scale_by_adam`.
      momentum_decay: :math:`\psi \ge 0` (PyTorch's default 4e-3).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_nadam()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(3))
      [ 1.056 -1.056]

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016
    """
    # Over 80 lines only with its docstring (32 lines); the code itself is 51.
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)
    _check_nonneg("momentum_decay", momentum_decay)
    mu_dtype = _canonical_dtype(mu_dtype)

    def init_fn(params):
        leaves = jax.tree.leaves(params)
        dtype = jnp.result_type(*leaves) if leaves else jnp.float32
        return ScaleByNadamState(
            count=jnp.zeros([], jnp.int32),
            mu_product=jnp.ones([], dtype),
            mu=_zeros(params, mu_dtype),
            nu=_zeros(params),
        )

    def update_fn(updates, state, params=None):
        del params
        count = _increment(state.count)
        t = count.astype(state.mu_product.dtype)
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = state.mu_product * mu_t
        mu = _ema(updates, state.mu, b1)
        nu = _ema_sq(updates, state.nu, b2)
        grad_coef = (1.0 - mu_t) / (1.0 - mu_product)
        mom_coef = mu_next / (1.0 - mu_product * mu_next)
        out = _map(
            lambda g, m, v: (grad_coef * g + mom_coef * m) / (jnp.sqrt(v + eps_root) + eps),
            updates,
            mu,
            _debias(nu, b2, count),
        )
        new_state = ScaleByNadamState(
            count,
            jnp.asarray(mu_product, state.mu_product.dtype),
            _cast_like(mu, state.mu),
            _cast_like(nu, state.nu),
        )
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


def scale_by_radam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    threshold: jax.typing.ArrayLike = 5.0,
    *,
    nesterov: bool = False,
    eps_before_bias_correction: bool = False,
) -> GradientTransformation:
    r"""Rectified Adam (Liu et al., 2020, Algorithm 2).

    .. math::
        \rho_\infty = \frac{2}{1-\beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2t\beta_2^t}{1-\beta_2^t}, \quad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}, \\
        u_t = r_t \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
        \ \text{if } \rho_t \ge \text{threshold}, \quad u_t = \hat m_t \ \text{otherwise}.

    With `eps_before_bias_correction=True` the denominator is
    :math:`(\sqrt{v_t + \epsilon_{root}} + \epsilon)/\sqrt{1-\beta_2^t}` (eps added to the
    raw second moment's root), which is `torch.optim.RAdam` (whose test is
    :math:`\rho_t > 5`; the two differ only when :math:`\rho_t` is exactly 5).

    Args:
      b1, b2, eps, eps_root: as in `scale_by_adam`.
      threshold: variance-tractability threshold on :math:`\rho_t` (>= 4, where the rectifier
        is real; the paper's 4 is the bound, optax and PyTorch use 5).
      nesterov: NAdam-style first moment, as in `scale_by_adam`.
      eps_before_bias_correction: PyTorch's eps placement.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_radam()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.5 -1. ]

    References:
      Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond <https://arxiv.org/abs/1908.03265>`_, 2020
    """
    # Over 80 lines only with its docstring (37 lines); the code itself is 46.
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)
    # Below 4 the rectifier is the root of a negative number (NaN steps).
    check_range("threshold", threshold, low=4.0)

    def init_fn(params):
        return ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=_zeros(params), nu=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        nu = _ema_sq(updates, state.nu, b2)
        count = _increment(state.count)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        b2t = b2**count
        rho_t = rho_inf - 2 * count * b2t / (1 - b2t)
        rect = jnp.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        mu_hat = _nesterov_mu_hat(mu, updates, b1, count) if nesterov else _debias(mu, b1, count)
        if eps_before_bias_correction:
            root_bc2 = jnp.sqrt(1 - b2t)
            denom = _map(lambda v: (jnp.sqrt(v + eps_root) + eps) / jnp.asarray(root_bc2, v.dtype), nu)
        else:
            denom = _map(lambda v: jnp.sqrt(v + eps_root) + eps, _debias(nu, b2, count))
        # Both branches are computed; where() keeps the unrectified one (and drops
        # the NaN of sqrt of a negative rho product) while rho_t is below threshold.
        out = _map(
            lambda m, d: jnp.where(rho_t >= threshold, jnp.asarray(rect, m.dtype) * m / d, m),
            mu_hat,
            denom,
        )
        new_state = ScaleByAdamState(count, _cast_like(mu, state.mu), _cast_like(nu, state.nu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByBeliefState(NamedTuple):
    """State of `scale_by_belief`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: first moment :math:`m_t`.
      nu: EMA of the squared prediction error :math:`s_t` (including eps_root, as optax).
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_belief(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformation:
    r"""AdaBelief (Zhuang et al., 2020, Algorithm 2): scale by the belief in the gradient.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1-\beta_2)(g_t - m_t)^2 + \epsilon_{root}, \quad
        u_t = \frac{\hat m_t}{\sqrt{\hat s_t} + \epsilon}.

    Args:
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the EMA of the squared surprise (g_t - m_t)^2, in [0, 1).
      eps: added to the root of the surprise's second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      nesterov: use Nesterov's look-ahead momentum.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_belief()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1.1111 -1.1111]

    References:
      Zhuang et al., `AdaBelief Optimizer <https://arxiv.org/abs/2010.07468>`_, 2020
    """
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)

    def init_fn(params):
        return ScaleByBeliefState(count=jnp.zeros([], jnp.int32), mu=_zeros(params), nu=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        surprise = _map(lambda g, m: g - m, updates, mu)
        nu = _map(lambda n: n + eps_root, _ema_sq(surprise, state.nu, b2))
        count = _increment(state.count)
        mu_hat = _nesterov_mu_hat(mu, updates, b1, count) if nesterov else _debias(mu, b1, count)
        out = _map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, _debias(nu, b2, count))
        new_state = ScaleByBeliefState(count, _cast_like(mu, state.mu), _cast_like(nu, state.nu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByYogiState(NamedTuple):
    """State of `scale_by_yogi`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: first moment :math:`m_t`.
      nu: Yogi's additive second moment :math:`v_t`.
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_yogi(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-3,
    eps_root: jax.typing.ArrayLike = 0.0,
    initial_accumulator_value: jax.typing.ArrayLike = 1e-6,
) -> GradientTransformation:
    r"""Yogi (Zaheer et al., 2018, Algorithm 2): additive, sign-controlled second moment.

    .. math::
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2, \quad
        u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon},

    with both moments starting at `initial_accumulator_value`.

    Args:
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      initial_accumulator_value: initial value of both moments.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_yogi()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.996  -0.9985]

    References:
      Zaheer et al., `Adaptive Methods for Nonconvex Optimization
        <https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization>`_, 2018
    """
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_nonneg("eps", eps)
    _check_nonneg("eps_root", eps_root)
    _check_nonneg("initial_accumulator_value", initial_accumulator_value)

    def init_fn(params):
        return ScaleByYogiState(
            count=jnp.zeros([], jnp.int32),
            mu=_full(params, initial_accumulator_value),
            nu=_full(params, initial_accumulator_value),
        )

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        nu = _map(lambda g, v: v - (1 - b2) * jnp.sign(v - _abs_sq(g)) * _abs_sq(g), updates, state.nu)
        count = _increment(state.count)
        out = _map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), _debias(mu, b1, count), _debias(nu, b2, count))
        new_state = ScaleByYogiState(count, _cast_like(mu, state.mu), _cast_like(nu, state.nu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


class ScaleByLionState(NamedTuple):
    """State of `scale_by_lion`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: momentum :math:`m_t` (EMA of gradients with decay b2; dtype `mu_dtype`).
    """

    count: jax.Array
    mu: Any


_LION_MODES = ("hard", "smooth", "refined")


def scale_by_lion(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    mode: str = "hard",
    smooth_beta: jax.typing.ArrayLike = 1.0,
) -> GradientTransformation:
    r"""Lion (Chen et al., 2023, Program 1): the sign of an interpolated momentum.

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad u_t = \mathrm{sign}(c_t), \quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    `mode="smooth"` uses :math:`\tanh(\beta_s c_t)` and `mode="refined"` keeps
    :math:`c_t` where :math:`|c_t| < 1` (optax's variants).

    Args:
      b1: weight of the momentum inside the sign, in [0, 1].
      b2: decay of the momentum m_t, in [0, 1].
      mu_dtype: dtype of the first moment (default: the parameters').
      mode: `'hard'` (sign), `'smooth'` (tanh) or `'refined'` (optax's variants).
      smooth_beta: slope of the tanh in `mode='smooth'`.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_lion()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms <https://arxiv.org/abs/2302.06675>`_, 2023
    """
    check_range("b1", b1, low=0.0, high=1.0)
    check_range("b2", b2, low=0.0, high=1.0)
    check_choice("mode", mode, _LION_MODES)
    mu_dtype = _canonical_dtype(mu_dtype)

    def direction(c):
        if mode == "hard":
            return jnp.sign(c)
        if mode == "smooth":
            return jnp.tanh(smooth_beta * c)
        return jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))

    def init_fn(params):
        return ScaleByLionState(count=jnp.zeros([], jnp.int32), mu=_zeros(params, mu_dtype))

    def update_fn(updates, state, params=None):
        del params
        out = _map(lambda g, m: direction((1.0 - b1) * g + b1 * m), updates, state.mu)
        mu = _ema(updates, state.mu, b2)
        new_state = ScaleByLionState(_increment(state.count), _cast_like(mu, state.mu))
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


def _safe_norm(x: jax.Array, min_norm: jax.typing.ArrayLike) -> jax.Array:
    """`max(||x||, min_norm)` whose gradient is 0, not NaN, where `||x|| <= min_norm`.

    The derivative of the Euclidean norm at 0 is 0/0; a zero-initialized bias
    would make the gradient through one LAMB/LARS step NaN. Where the norm is at
    the floor, the norm is taken of ones instead (a constant branch), as optax's
    `safe_norm` does.
    """
    norm = jnp.linalg.norm(x)
    at_floor = norm <= min_norm
    masked_norm = jnp.linalg.norm(jnp.where(at_floor, jnp.ones_like(x), x))
    return jnp.where(at_floor, min_norm, masked_norm)


def scale_by_trust_ratio(
    min_norm: jax.typing.ArrayLike = 0.0, trust_coefficient: jax.typing.ArrayLike = 1.0, eps: jax.typing.ArrayLike = 0.0
) -> GradientTransformation:
    r"""Layer-wise trust ratio of LARS/LAMB (You et al., 2017; You et al., 2020).

    .. math::
        u \leftarrow u \cdot \frac{c\,\max(\|w\|, n_{min})}{\max(\|u\|, n_{min}) + \epsilon}
        \quad (\text{ratio 1 when either norm is 0}),

    per parameter array. Needs `params`.

    Args:
      min_norm: lower bound of both norms (0: no bound).
      trust_coefficient: multiplier of the trust ratio.
      eps: added to the update's norm in the denominator.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_trust_ratio()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates.round(4))
      [ 1. -2.]

    References:
      You et al., `Large Batch Optimization for Deep Learning: Training BERT in 76 minutes
        <https://arxiv.org/abs/1904.00962>`_, 2020
    """
    _check_nonneg("min_norm", min_norm)
    _check_nonneg("trust_coefficient", trust_coefficient)
    _check_nonneg("eps", eps)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_trust_ratio needs params: call update(updates, state, params)")

        def rescale(u, p):
            p_norm = _safe_norm(p, min_norm)
            u_norm = _safe_norm(u, min_norm)
            ratio = trust_coefficient * p_norm / (u_norm + eps)
            ratio = jnp.where((p_norm == 0.0) | (u_norm == 0.0), jnp.ones([], p.dtype), ratio)
            return jnp.asarray(u * ratio, dtype=u.dtype)

        return _map(rescale, updates, params), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


class ScaleByAdaBoundState(NamedTuple):
    """State of `scale_by_adabound`.

    Fields:
      count: number of updates so far (int32 scalar).
      mu: first moment :math:`m_t` (uncorrected).
      nu: second moment :math:`v_t` (uncorrected).
      nu_max: running maximum of :math:`v_t` (AMSBound); empty tuple when `amsbound=False`.
    """

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_adabound(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    final_lr: jax.typing.ArrayLike = 0.1,
    gamma: jax.typing.ArrayLike = 1e-3,
    base_learning_rate: jax.typing.ArrayLike = 1e-3,
    *,
    amsbound: bool = False,
) -> GradientTransformation:
    r"""AdaBound's clipped Adam step (Luo, Xiong, Liu & Sun, ICLR 2019), as the authors' code computes it.

    The authors' step for learning rate :math:`\alpha_t` (initially :math:`\alpha_0`) is

    .. math::
        \eta_t = \mathrm{clip}\Big(\frac{\alpha_t\sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt{v_t}+\epsilon)},
                 \ \eta_l(t),\ \eta_u(t)\Big), \quad x_{t+1} = x_t - \eta_t m_t, \\
        \eta_l(t) = f_t\Big(1 - \frac{1}{\gamma t + 1}\Big), \quad
        \eta_u(t) = f_t\Big(1 + \frac{1}{\gamma t}\Big), \quad f_t = \text{final\_lr}\cdot\alpha_t/\alpha_0,

    (:math:`v_t` replaced by its running maximum for AMSBound). The bounds are
    proportional to :math:`\alpha_t`, so this transform returns :math:`\eta_t m_t/\alpha_t`
    (a descent direction free of the learning rate); `scale_by_learning_rate`
    then multiplies by :math:`-\alpha_t`, which keeps schedules working as they
    do with the authors' optimizer.

    Args:
      b1, b2, eps: Adam's (eps is added to :math:`\sqrt{v_t}`, before bias correction).
      final_lr: the SGD learning rate both bounds converge to (> 0).
      gamma: convergence speed of the bounds (> 0).
      base_learning_rate: :math:`\alpha_0`, the initial learning rate (> 0).
      amsbound: use the running maximum of :math:`v_t` (AMSBound).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_adabound()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Luo, Xiong, Liu & Sun, `Adaptive Gradient Methods with Dynamic Bound of Learning Rate
        <https://arxiv.org/abs/1902.09843>`_, 2019
    """
    # Over 80 lines only with its docstring (40 lines); the code itself is 50.
    _check_beta("b1", b1)
    _check_beta("b2", b2)
    _check_pos("eps", eps)
    _check_pos("final_lr", final_lr)
    _check_pos("gamma", gamma)
    _check_pos("base_learning_rate", base_learning_rate)

    def init_fn(params):
        return ScaleByAdaBoundState(
            count=jnp.zeros([], jnp.int32),
            mu=_zeros(params),
            nu=_zeros(params),
            nu_max=_zeros(params) if amsbound else (),
        )

    def update_fn(updates, state, params=None):
        del params
        mu = _ema(updates, state.mu, b1)
        nu = _ema_sq(updates, state.nu, b2)
        count = _increment(state.count)
        if amsbound:
            nu_max = _map(lambda v, vm: jnp.maximum(vm, v), nu, state.nu_max)
            nu_eff = nu_max
        else:
            nu_max, nu_eff = (), nu
        t = count.astype(jnp.result_type(float))
        ratio = final_lr / base_learning_rate
        lower = ratio * (1 - 1 / (gamma * t + 1))
        upper = ratio * (1 + 1 / (gamma * t))
        step = jnp.sqrt(1 - b2**count) / (1 - b1**count)
        out = _map(lambda m, v: jnp.clip(step / (jnp.sqrt(v) + eps), lower, upper) * m, mu, nu_eff)
        new_state = ScaleByAdaBoundState(
            count,
            _cast_like(mu, state.mu),
            _cast_like(nu, state.nu),
            _cast_like(nu_max, state.nu_max),
        )
        return _cast_like(out, updates), new_state

    return GradientTransformation(init_fn, update_fn)


def scale_by_sign() -> GradientTransformation:
    r"""Keep only the sign: :math:`u \leftarrow \mathrm{sign}(u)` (signSGD, Bernstein et al., 2018).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_sign()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 1. -1.]

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems <https://arxiv.org/abs/1802.04434>`_,
        2018
    """

    def update_fn(updates, state, params=None):
        del params
        return _map(jnp.sign, updates), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


class AddNoiseState(NamedTuple):
    """State of `add_noise`.

    Fields:
      count: number of updates so far (int32 scalar).
      rng_key: the key the next noise sample is split from.
    """

    count: jax.Array
    rng_key: jax.Array


def add_noise(
    eta: jax.typing.ArrayLike,
    gamma: jax.typing.ArrayLike,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    r"""Annealed Gaussian gradient noise (Neelakantan et al., 2015).

    .. math:: u_t \leftarrow u_t + \sigma_t \xi_t, \quad \sigma_t^2 = \frac{\eta}{t^\gamma},
              \quad \xi_t \sim \mathcal N(0, I), \ t = 1, 2, \dots

    Args:
      eta: initial variance (>= 0).
      gamma: annealing exponent (>= 0).
      key: a JAX PRNG key or an int seed; None warns and uses 0 (as optax).
      seed: deprecated alias of `key` (optax's keyword).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.add_noise(0.01, 0.55, key=0)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.51989996 -1.077     ]

    References:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
        <https://arxiv.org/abs/1511.06807>`_, 2015
    """
    _check_nonneg("eta", eta)
    _check_nonneg("gamma", gamma)
    if seed is not None:
        warnings.warn("add_noise: `seed` is deprecated (as in optax); pass `key`", DeprecationWarning, stacklevel=2)
        if key is not None:
            raise ValueError("add_noise: pass only one of key and seed")
        key = seed
    if key is None:
        # A silent fixed key would make every "random" run share one noise sequence; optax warns too.
        warnings.warn("add_noise: no `key` given, using key 0; pass key= to choose the noise", stacklevel=2)
        key = 0

    def init_fn(params):
        del params
        k = key
        if not (isinstance(k, jax.Array) and jnp.issubdtype(k.dtype, jax.dtypes.prng_key)):
            k = jax.random.key(k)
        return AddNoiseState(count=jnp.zeros([], jnp.int32), rng_key=k)

    def update_fn(updates, state, params=None):
        del params
        count = _increment(state.count)
        std = jnp.sqrt(eta / count**gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        noise = optax.tree.random_like(sample_key, updates, jax.random.normal)
        out = _map(lambda g, n: g + std * n, updates, noise)
        return _cast_like(out, updates), AddNoiseState(count, rng_key)

    return GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------- regularization


class _WeightDecayScheduleState(NamedTuple):
    """State of a weight-decay transform whose coefficient is a schedule.

    Fields:
      count: number of updates so far (int32 scalar).
    """

    count: jax.Array


def _add_param_term(
    coefficient: ScalarOrSchedule, term: Callable[[jax.Array], jax.Array], name: str
) -> GradientTransformation:
    """Add `coefficient * term(param)` to each update; `coefficient` may be a schedule.

    A coefficient that is a plain number equal to 0 adds nothing and reads no parameters:
    `g + 0 * p` would cost an extra pass over every parameter per step (adadelta with its
    default `weight_decay=0.0` ran 1.24x slower than optax's, which skips it the same way).
    """
    _check_nonneg(name, coefficient)
    scheduled = callable(coefficient)
    if isinstance(coefficient, numbers.Real) and coefficient == 0:
        return GradientTransformation(lambda params: EmptyState(), lambda updates, state, params=None: (updates, state))

    def init_fn(params):
        del params
        return _WeightDecayScheduleState(jnp.zeros([], jnp.int32)) if scheduled else EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"this transform ({name}) needs params: call update(updates, state, params)")
        if scheduled:
            coef = coefficient(state.count)
            state = _WeightDecayScheduleState(_increment(state.count))
        else:
            coef = coefficient
        out = _map(lambda g, p: jnp.asarray(g + coef * term(p), dtype=g.dtype), updates, params)
        return out, state

    return GradientTransformation(init_fn, update_fn)


def add_decayed_weights(weight_decay: ScalarOrSchedule = 0.0, mask: Any = None) -> GradientTransformation:
    r"""Decoupled weight decay (Loshchilov & Hutter, 2019): :math:`u \leftarrow u + \lambda w`.

    Placed *after* an adaptive scaling (as in `adamw`) the decay is not rescaled
    by the preconditioner; the following `scale_by_learning_rate` makes the
    step :math:`-\eta(\hat u + \lambda w)`, which is also PyTorch's `AdamW`
    (:math:`w \leftarrow w(1 - \eta\lambda) - \eta \hat u`).

    Args:
      weight_decay: :math:`\lambda \ge 0`, or a schedule.
      mask: a pytree of booleans like the params (or a function `params -> mask`)
        selecting the leaves to decay; the others pass unchanged.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.add_decayed_weights(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates.round(4))
      [ 0.59999996 -1.1999999 ]

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization <https://arxiv.org/abs/1711.05101>`_, 2019
    """
    return _masked(_add_param_term(weight_decay, lambda p: p, "weight_decay"), mask)


def add_l2_penalty_grad(weight_decay: ScalarOrSchedule = 0.0, mask: Any = None) -> GradientTransformation:
    r"""Coupled L2 regularization: :math:`g \leftarrow g + \lambda w`.

    This adds the gradient of the penalty :math:`\frac{\lambda}{2}\|w\|^2`.
    Put it *first* in a chain: the penalty's gradient then goes through the
    optimizer's scaling, which is what PyTorch's `weight_decay=` does in `SGD`,
    `Adam`, `Adagrad`, `RMSprop`, `Adadelta`, `Adamax`, `NAdam`, `RAdam` and `ASGD`.
    E.g. `torch.optim.Adam(lr=a, weight_decay=l)` is `chain(add_l2_penalty_grad(l), adam(a))`.

    Args:
      weight_decay: :math:`\lambda \ge 0`, or a schedule.
      mask: as in `add_decayed_weights`.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.add_l2_penalty_grad(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates.round(4))
      [ 0.59999996 -1.1999999 ]

    References:
      Krogh & Hertz, `A Simple Weight Decay Can Improve Generalization
        <https://papers.nips.cc/paper/563-a-simple-weight-decay-can-improve-generalization>`_, 1991
    """
    return _masked(_add_param_term(weight_decay, lambda p: p, "weight_decay"), mask)


def add_l1_penalty_grad(weight_decay: ScalarOrSchedule = 0.0, mask: Any = None) -> GradientTransformation:
    r"""Coupled L1 regularization: :math:`g \leftarrow g + \lambda\,\mathrm{sign}(w)`.

    This adds the (sub)gradient of the penalty :math:`\lambda\|w\|_1`, taken as 0
    at 0. Put it first in a chain.

    Args:
      weight_decay: :math:`\lambda \ge 0`, or a schedule.
      mask: as in `add_decayed_weights`.

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.add_l1_penalty_grad(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates.round(4))
      [ 0.59999996 -1.1       ]

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """
    return _masked(_add_param_term(weight_decay, jnp.sign, "weight_decay"), mask)


# --------------------------------------------------------------------------- clipping


def clip(max_delta: jax.typing.ArrayLike) -> GradientTransformation:
    r"""Clip each element to :math:`[-\delta, \delta]`.

    Args:
      max_delta: largest absolute value kept (>= 0).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.clip(0.3)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.29999998 -0.29999998]

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """
    _check_nonneg("max_delta", max_delta)

    def update_fn(updates, state, params=None):
        del params
        return _map(lambda g: jnp.clip(g, -max_delta, max_delta).astype(g.dtype), updates), state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


def clip_by_global_norm(max_norm: jax.typing.ArrayLike) -> GradientTransformation:
    r"""Rescale all updates together so their global norm is at most :math:`c` (Pascanu et al., 2013).

    .. math:: u \leftarrow u \cdot \frac{c}{\max(\|u\|_2, c)} \quad (\|u\|_2 \text{ over all leaves}).

    Args:
      max_norm: largest global norm kept (> 0).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.clip_by_global_norm(0.5)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.2236 -0.4472]

    References:
      Pascanu, Mikolov & Bengio, `On the difficulty of training Recurrent Neural Networks
        <https://arxiv.org/abs/1211.5063>`_, 2013
    """
    _check_pos("max_norm", max_norm)

    def update_fn(updates, state, params=None):
        del params
        g_norm = optax.tree.norm(updates)
        keep = g_norm < max_norm
        out = _map(lambda t: jnp.where(keep, t, (t / g_norm.astype(t.dtype)) * max_norm).astype(t.dtype), updates)
        return out, state

    return GradientTransformation(lambda params: EmptyState(), update_fn)


# --------------------------------------------------------------------------- the lectures' schemes


class GradientLrControlState(NamedTuple):
    """State of `scale_by_gradient_lr_control`.

    Fields:
      lr_scale: per-element factor :math:`\\alpha_t/\\alpha_0 = \\prod_{i \\le t} (1 + c\\sqrt{|g_i|})^{-1}`
        (starts at 1), i.e. each element's current learning rate relative to the base one.
    """

    lr_scale: Any


def scale_by_gradient_lr_control(control_factor: jax.typing.ArrayLike = 0.99) -> GradientTransformation:
    r"""The lecture's gradient-based learning-rate control (the quartic lecture's `vanilla_gd_gradlr`).

    Each element keeps its own learning rate, shrunk at every step by its gradient:

    .. math::
        \alpha_t = \frac{\alpha_{t-1}}{1 + c\sqrt{|g_t|}}, \qquad x_{t+1} = x_t - \alpha_t g_t.

    The state holds :math:`\alpha_t/\alpha_0`; this transform returns
    :math:`(\alpha_t/\alpha_0)\, g_t` and the following `scale_by_learning_rate(alpha_0)`
    supplies :math:`-\alpha_0` (so a schedule there multiplies the controlled rate).
    Large gradients shrink the rate the most; the rate never grows back.

    Args:
      control_factor: :math:`c \ge 0` (the lecture's `alpha_control_fac`; 0 gives plain GD).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.scale_by_gradient_lr_control()
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params))
      >>> print(updates.round(4))
      [ 0.2941 -0.5025]

    References:
      the lecture's `vanilla_gd_gradlr`; see docs/optimizers.md
    """
    _check_nonneg("control_factor", control_factor)

    def init_fn(params):
        return GradientLrControlState(lr_scale=_map(jnp.ones_like, params))

    def update_fn(updates, state, params=None):
        del params
        lr_scale = _map(lambda g, a: a * (1 / (1 + control_factor * jnp.sqrt(jnp.abs(g)))), updates, state.lr_scale)
        out = _map(lambda a, g: a * g, lr_scale, updates)
        return _cast_like(out, updates), GradientLrControlState(_cast_like(lr_scale, state.lr_scale))

    return GradientTransformation(init_fn, update_fn)


class AverageIteratesState(NamedTuple):
    """State of `average_iterates`.

    Fields:
      count: number of updates so far (int32 scalar).
      ax: the averaged parameters :math:`\\bar x_t` (zeros before the first update).
    """

    count: jax.Array
    ax: Any


def average_iterates(t0: jax.typing.ArrayLike = 1e6) -> GradientTransformation:
    r"""Polyak-Ruppert averaging of the iterates, as PyTorch's `ASGD` keeps it (Polyak & Juditsky, 1992).

    Place it last in a chain (after `scale_by_learning_rate`): it passes the
    updates through unchanged and, from the new iterate :math:`x_{t} = w + u`, keeps

    .. math::
        \bar x_t = \bar x_{t-1} + \mu_t (x_t - \bar x_{t-1}), \qquad
        \mu_t = \frac{1}{\max(1,\ t - 1 - t_0)}, \quad t = 1, 2, \dots

    so :math:`\bar x_t = x_t` until step :math:`t_0 + 2`, and the running mean of
    the iterates after that. Read it with `averaged_params(opt_state)`.

    Args:
      t0: the step averaging starts from (PyTorch's default 1e6).

    Returns:
      An optax `GradientTransformation`: `init(params)` and `update(updates, state, params=None)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> tx = optim.average_iterates(t0=0)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> grads = jnp.array([0.5, -1.0], jnp.float32)
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates.round(4))
      [ 0.5 -1. ]

    References:
      Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging <https://doi.org/10.1137/0330046>`_,
        1992
      PyTorch, `torch.optim.ASGD <https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html>`_
    """
    _check_nonneg("t0", t0)

    def init_fn(params):
        return AverageIteratesState(count=jnp.zeros([], jnp.int32), ax=_zeros(params))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("average_iterates needs params: call update(updates, state, params)")
        c = state.count.astype(jnp.result_type(float))
        mu = 1 / jnp.maximum(1.0, c - t0)
        # At mu == 1 PyTorch copies the iterate; a + (x - a) would differ from x by rounding.
        ax = _map(lambda u, a, p: jnp.where(mu == 1, p + u, a + mu * ((p + u) - a)), updates, state.ax, params)
        return updates, AverageIteratesState(_increment(state.count), _cast_like(ax, state.ax))

    return GradientTransformation(init_fn, update_fn)


def averaged_params(opt_state: Any) -> Any:
    """The averaged parameters kept by `average_iterates` (e.g. inside `asgd`'s state).

    Searches the (possibly nested, chained) optimizer state for the
    `AverageIteratesState` and returns its `ax`. Raises `ValueError` when none is found.

    Args:
      opt_state: an optimizer state holding an `average_iterates` state (e.g. `asgd`'s).

    Returns:
      The averaged parameters, a tree like the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.chain(optim.sgd(0.1), optim.average_iterates(t0=0))
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for _ in range(3):
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(optim.averaged_params(state).round(4))
      [ 0.576 -1.152]

    References:
      Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging <https://doi.org/10.1137/0330046>`_,
        1992
      PyTorch, `torch.optim.ASGD <https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html>`_
    """
    is_avg = lambda node: isinstance(node, AverageIteratesState)
    found = [node for node in jax.tree.leaves(opt_state, is_leaf=is_avg) if is_avg(node)]
    if not found:
        raise ValueError("averaged_params: this optimizer state holds no average_iterates state (use asgd)")
    return found[0].ax
