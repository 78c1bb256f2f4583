"""Schedules: pure functions `step -> value` for learning rates and other hyperparameters.

Every schedule optax has keeps optax's name, keywords, defaults and values
(`optax.schedules` is the reference the tests compare against). Two things
differ from optax, both on purpose:

* **Every parameter may be traced.** optax decides some cases with Python `if`
  on parameter values (a non-positive `transition_steps`, a zero `decay_rate`,
  a negative `transition_begin`, the direction of `end_value` clipping, a zero
  `peak_value`), which fails under `jit`/`vmap`. Here those cases are
  `jnp.where` selections with the same results, so
  `jax.vmap(lambda lr, k: exponential_decay(lr, 10, k)(step))(lrs, ks)` works.
  Boundaries of the piecewise schedules (dict keys) and flags such as
  `staircase` are structural and stay Python values.
* **Concrete bad values raise** `ValueError` naming the argument, the value
  and the valid range, where optax would silently produce NaNs (negative decay
  rates) or raise a less specific error.

The lectures' schedules are here too (the gradients-and-activations lecture's "learning rate scheduling",
the initialization-and-quartic lecture's "learning rate decay"; docs/lectures.md):

* power scheduling, eta(t) = eta0 / (1 + t/s)^c: `power_schedule`; its c = 1
  case with a rate is `inverse_time_decay` (Keras' `SGD(decay=...)` and
  `InverseTimeDecay`);
* exponential scheduling, eta(t) = eta0 * 0.1^(t/s): `exponential_decay`;
* piecewise-constant scheduling: `piecewise_constant_schedule`;
* the per-step decay alpha <- K alpha of the quartic lecture: `step_decay`, which equals
  `exponential_decay(init_value, 1, K)`;
* performance scheduling is `jaxopt_lab.optim.wrappers.reduce_on_plateau`, a
  gradient transformation, because it needs the monitored loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lab._checks import check_choice, check_range

Schedule = Callable[[Any], Any]
ArrayLike = Any

__all__ = [
    "Schedule",
    "constant_schedule",
    "polynomial_schedule",
    "linear_schedule",
    "exponential_decay",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "cosine_decay_schedule",
    "linear_onecycle_schedule",
    "cosine_onecycle_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "join_schedules",
    "sgdr_schedule",
    "power_schedule",
    "inverse_time_decay",
    "step_decay",
]


def _is_python_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def constant_schedule(value: ArrayLike) -> Schedule:
    """eta(t) = value for every step t (optax.constant_schedule)."""
    return lambda count: value


def polynomial_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    power: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> Schedule:
    r"""Polynomial transition from `init_value` to `end_value` (optax.polynomial_schedule).

    .. math::
        v(t) = (I - E) \left(1 - \frac{\min(\max(t - B, 0), T)}{T}\right)^P + E

    with I = `init_value`, E = `end_value`, P = `power`, T = `transition_steps`,
    B = `transition_begin`. As in optax, T <= 0 gives the constant I and a
    negative B counts as 0; here both are decided with `jnp.where`, so every
    argument may be traced.
    """

    def schedule(count):
        begin = jnp.maximum(transition_begin, 0)
        active = transition_steps > 0
        # A dummy positive length where the schedule is constant keeps the
        # unselected branch free of divisions by zero.
        steps = jnp.where(active, transition_steps, 1)
        done = jnp.clip(count - begin, 0, steps)
        frac = 1 - done / steps
        value = (init_value - end_value) * (frac**power) + end_value
        return jnp.where(active, value, init_value)

    return schedule


def linear_schedule(
    init_value: ArrayLike,
    end_value: ArrayLike,
    transition_steps: ArrayLike,
    transition_begin: ArrayLike = 0,
) -> Schedule:
    r"""Linear transition (optax.linear_schedule): `polynomial_schedule` with power 1.

    .. math:: v(t) = I + \frac{\min(\max(t - B, 0), T)}{T} (E - I)
    """
    return polynomial_schedule(
        init_value=init_value,
        end_value=end_value,
        power=1,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )


def exponential_decay(
    init_value: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    r"""Exponential decay (optax.exponential_decay; the lectures' exponential scheduling).

    .. math::
        v(t) = I \cdot r^{p}, \quad p = \frac{t - B}{T}
        \ (\lfloor p \rfloor \text{ if staircase}), \qquad v(t) = I \text{ for } t \le B

    with I = `init_value`, r = `decay_rate`, T = `transition_steps`, B =
    `transition_begin`. `end_value` bounds the result: a lower bound when
    r < 1, an upper bound otherwise. As in optax, T <= 0 or r = 0 give the
    constant I and a negative B counts as 0.

    The gradients-and-activations lecture's `exp_decay_fn(epoch) = 0.01 * 0.1 ** (epoch / 20)` is
    `exponential_decay(0.01, 20, 0.1)`.

    Raises:
      ValueError: for a concrete negative `decay_rate` (its fractional powers
        are NaN).
    """
    check_range("decay_rate", decay_rate, low=0.0)

    def schedule(count):
        begin = jnp.maximum(transition_begin, 0)
        active = jnp.logical_and(transition_steps > 0, decay_rate != 0)
        steps = jnp.where(transition_steps > 0, transition_steps, 1)
        elapsed = count - begin
        p = elapsed / steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(elapsed <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            value = jnp.where(decay_rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value))
        return jnp.where(active, value, init_value)

    return schedule


def piecewise_constant_schedule(
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
    """Piecewise constant (optax.piecewise_constant_schedule; the gradients-and-activations lecture's `piece_fn`).

    v(t) = init_value * prod of `scale` over the entries `{boundary: scale}`
    with t >= boundary. Boundaries are structural (Python numbers); scales
    and `init_value` may be traced.

    Raises:
      ValueError: for a concrete negative scale, naming its boundary.
    """
    items = sorted(boundaries_and_scales.items()) if boundaries_and_scales else []
    for boundary, scale in items:
        check_range(f"boundaries_and_scales[{boundary!r}]", scale, low=0.0)

    def schedule(count):
        value = init_value
        for boundary, scale in items:
            # 1 before the boundary, 0 from it on: the same arithmetic as optax,
            # so the values agree bit for bit.
            before = jnp.maximum(0.0, jnp.sign(boundary - count))
            value = value * before + (1 - before) * scale * value
        return value

    return schedule


def _linear_interpolate(start, end, pct):
    return (end - start) * pct + start


def _cosine_interpolate(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)


_INTERPOLATORS = {"linear": _linear_interpolate, "cosine": _cosine_interpolate}


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: ArrayLike,
    boundaries_and_scales: Mapping[int, ArrayLike] | None = None,
) -> Schedule:
    """Piecewise interpolation (optax.piecewise_interpolate_schedule).

    The value at boundary b_k is v_k = init_value * s_1 * ... * s_k; between
    boundaries it moves from v_{k-1} to v_k linearly or along a half cosine
    (`interpolate_type` "linear" or "cosine"), and it holds v_n after the last
    boundary. Boundaries are structural; the scales may be traced.
    """
    check_choice("interpolate_type", interpolate_type, _INTERPOLATORS)
    interpolate = _INTERPOLATORS[interpolate_type]
    items = sorted(boundaries_and_scales.items()) if boundaries_and_scales else []
    for boundary, scale in items:
        check_range(f"boundaries_and_scales[{boundary!r}]", scale, low=0.0)
    boundaries = tuple(b for b, _ in items)
    scales = tuple(s for _, s in items)

    def schedule(count):
        bounds = jnp.stack((0,) + boundaries)
        values = jnp.cumprod(jnp.stack((init_value,) + scales))
        widths = jnp.maximum(bounds[1:] - bounds[:-1], 1)
        inside = jnp.logical_and(bounds[:-1] <= count, count < bounds[1:])
        pct = (count - bounds[:-1]) / widths
        between = interpolate(values[:-1], values[1:], pct)
        return inside.dot(between) + (bounds[-1] <= count) * values[-1]

    return schedule


def cosine_decay_schedule(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    alpha: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    r"""Cosine decay (optax.cosine_decay_schedule; Loshchilov & Hutter 2017, SGDR).

    .. math::
        v(t) = I \left[(1 - \alpha) \left(\tfrac12 (1 + \cos(\pi \min(t, T) / T))\right)^p
        + \alpha\right]

    with I = `init_value`, T = `decay_steps`, p = `exponent`.

    Raises:
      ValueError: for a concrete `decay_steps` <= 0.
    """
    check_range("decay_steps", decay_steps, low=0, low_inclusive=False)

    def schedule(count):
        # Python ints become floats first, as in optax, so the arithmetic (and
        # hence every bit of the result) is the same.
        steps = float(decay_steps) if isinstance(decay_steps, int) else decay_steps
        count = float(count) if isinstance(count, int) else count
        count = jnp.minimum(count, steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def _onecycle_boundary(name: str, pct: float, transition_steps: int) -> int:
    try:
        return int(pct * transition_steps)
    except jax.errors.ConcretizationTypeError as err:
        raise TypeError(
            f"{name} and transition_steps place the boundaries of a one-cycle schedule, "
            "which are structural: pass Python numbers, not traced values"
        ) from err


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> Schedule:
    """Three linear phases (optax.linear_onecycle_schedule; Smith & Topin 2017).

    Up from peak/div_factor to peak until pct_start*T, back down to
    peak/div_factor at pct_final*T, then down to peak/(div_factor *
    final_div_factor) at T. `transition_steps`, `pct_start` and `pct_final`
    place boundaries and must be Python numbers; the values may be traced.
    """
    check_range("transition_steps", transition_steps, low=0, low_inclusive=False)
    return piecewise_interpolate_schedule(
        "linear",
        peak_value / div_factor,
        {
            _onecycle_boundary("pct_start", pct_start, transition_steps): div_factor,
            _onecycle_boundary("pct_final", pct_final, transition_steps): 1.0 / div_factor,
            transition_steps: 1.0 / final_div_factor,
        },
    )


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: ArrayLike,
    pct_start: float = 0.3,
    div_factor: ArrayLike = 25.0,
    final_div_factor: ArrayLike = 1e4,
) -> Schedule:
    """One-cycle with cosine phases (optax.cosine_onecycle_schedule; Smith & Topin 2017).

    Cosine up from peak/div_factor to peak until pct_start*T, then cosine down
    to peak/(div_factor * final_div_factor) at T. `transition_steps` and
    `pct_start` place boundaries and must be Python numbers.
    """
    check_range("transition_steps", transition_steps, low=0, low_inclusive=False)
    return piecewise_interpolate_schedule(
        "cosine",
        peak_value / div_factor,
        {
            _onecycle_boundary("pct_start", pct_start, transition_steps): div_factor,
            int(transition_steps): 1.0 / (div_factor * final_div_factor),
        },
    )


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[ArrayLike]) -> Schedule:
    """Run `schedules[i]` from `boundaries[i-1]` on (optax.join_schedules).

    Each schedule is called with the steps elapsed since its own boundary.
    """

    def schedule(step):
        value = schedules[0](step)
        for boundary, later in zip(boundaries, schedules[1:], strict=False):
            value = jnp.where(step < boundary, value, later(step - boundary))
        return value

    return schedule


def warmup_constant_schedule(init_value: ArrayLike, peak_value: ArrayLike, warmup_steps: ArrayLike) -> Schedule:
    """Linear warmup to `peak_value`, then constant (optax.warmup_constant_schedule)."""
    return linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps)


def warmup_cosine_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    decay_steps: ArrayLike,
    end_value: ArrayLike = 0.0,
    exponent: ArrayLike = 1.0,
) -> Schedule:
    """Linear warmup then cosine decay (optax.warmup_cosine_decay_schedule).

    `decay_steps` counts the warmup too: the cosine part lasts
    `decay_steps - warmup_steps` steps and ends at `end_value`.

    Raises:
      ValueError: when concrete `decay_steps` does not exceed `warmup_steps`.
    """
    if _is_python_number(decay_steps) and _is_python_number(warmup_steps) and decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps={decay_steps!r} is out of range: valid range is "
            f"(warmup_steps={warmup_steps!r}, inf) (decay_steps includes the warmup)"
        )
    if _is_python_number(peak_value) and _is_python_number(end_value):
        # Python arithmetic for Python numbers keeps the float32 values identical to optax's.
        alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    else:
        zero_peak = jnp.asarray(peak_value) == 0
        alpha = jnp.where(zero_peak, 0.0, end_value / jnp.where(zero_peak, 1.0, peak_value))
    warmup = linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps)
    # The range check already ran on the concrete case; traced lengths are not checkable.
    decay = _cosine_decay_unchecked(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return join_schedules([warmup, decay], [warmup_steps])


def _cosine_decay_unchecked(init_value, decay_steps, alpha, exponent) -> Schedule:
    if _is_python_number(decay_steps):
        return cosine_decay_schedule(init_value, decay_steps, alpha, exponent)

    def schedule(count):
        count = float(count) if isinstance(count, int) else count
        count = jnp.minimum(count, decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def warmup_exponential_decay_schedule(
    init_value: ArrayLike,
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    transition_steps: ArrayLike,
    decay_rate: ArrayLike,
    transition_begin: ArrayLike = 0,
    staircase: bool = False,
    end_value: ArrayLike | None = None,
) -> Schedule:
    """Linear warmup then `exponential_decay` from `peak_value` (optax.warmup_exponential_decay_schedule)."""
    warmup = linear_schedule(init_value=init_value, end_value=peak_value, transition_steps=warmup_steps)
    decay = exponential_decay(
        init_value=peak_value,
        transition_steps=transition_steps,
        decay_rate=decay_rate,
        transition_begin=transition_begin,
        staircase=staircase,
        end_value=end_value,
    )
    return join_schedules([warmup, decay], [warmup_steps])


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, ArrayLike]]) -> Schedule:
    """SGD with warm restarts (optax.sgdr_schedule; Loshchilov & Hutter 2017).

    Each dict holds the keywords of one `warmup_cosine_decay_schedule` cycle;
    a cycle lasts its `decay_steps`.
    """
    schedules = []
    boundaries = []
    step = 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        step = step + kwargs["decay_steps"]
        boundaries.append(step)
    return join_schedules(schedules, boundaries[:-1])


def power_schedule(init_value: ArrayLike, decay_steps: ArrayLike, power: ArrayLike = 1.0) -> Schedule:
    r"""The lectures' power scheduling (the gradients-and-activations lecture).

    .. math:: \eta(t) = \frac{\eta_0}{(1 + t/s)^c}

    with eta0 = `init_value`, s = `decay_steps`, c = `power`. With c = 1 the
    rate halves after s steps, is a third after 2s, a quarter after 3s.
    Keras' `SGD(learning_rate=lr0, decay=d)` is `power_schedule(lr0, 1/d, 1)`.

    Raises:
      ValueError: for a concrete `decay_steps` <= 0 or `power` < 0.
    """
    check_range("decay_steps", decay_steps, low=0, low_inclusive=False)
    check_range("power", power, low=0.0)

    def schedule(count):
        return init_value / (1 + count / decay_steps) ** power

    return schedule


def inverse_time_decay(
    init_value: ArrayLike,
    decay_steps: ArrayLike,
    decay_rate: ArrayLike,
    staircase: bool = False,
) -> Schedule:
    r"""Inverse-time decay (Keras' `InverseTimeDecay`; power scheduling with c = 1).

    .. math:: \eta(t) = \frac{\eta_0}{1 + r\, t / s}
        \quad (\lfloor t/s \rfloor \text{ in place of } t/s \text{ if staircase})

    with eta0 = `init_value`, r = `decay_rate`, s = `decay_steps`.

    Raises:
      ValueError: for a concrete `decay_steps` <= 0 or `decay_rate` < 0.
    """
    check_range("decay_steps", decay_steps, low=0, low_inclusive=False)
    check_range("decay_rate", decay_rate, low=0.0)

    def schedule(count):
        p = count / decay_steps
        if staircase:
            p = jnp.floor(p)
        return init_value / (1 + decay_rate * p)

    return schedule


def step_decay(
    init_value: ArrayLike,
    decay_factor: ArrayLike,
    decay_every: ArrayLike = 1,
    decay_first: bool = False,
) -> Schedule:
    r"""The lecture's per-step decay alpha <- K alpha, every N steps (the initialization-and-quartic lecture).

    .. math:: \alpha(t) = \alpha_0 K^{\lfloor t / N \rfloor + d}

    with alpha0 = `init_value`, K = `decay_factor`, N = `decay_every`, and d = 1
    when `decay_first` (0 otherwise). With N = 1 and d = 0 it equals
    `exponential_decay(init_value, 1, K)` bit for bit, and in general
    `exponential_decay(init_value, N, K, staircase=True)`.

    The initialization-and-quartic lecture's `vanilla_gd_lrdecay` multiplies alpha by K *before* each update,
    so its step t uses alpha0 K^(t+1): that is `decay_first=True`.

    Raises:
      ValueError: for a concrete K outside (0, 1] or N < 1.
    """
    check_range("decay_factor", decay_factor, low=0.0, high=1.0, low_inclusive=False)
    check_range("decay_every", decay_every, low=1)
    decay = exponential_decay(init_value, decay_every, decay_factor, staircase=True)
    if not decay_first:
        return decay
    return lambda count: decay(count + decay_every)
