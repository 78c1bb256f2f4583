"""Wrappers around an optimizer: lookahead, skipping non-finite steps, reducing on a plateau.

Each returns an optax `GradientTransformationExtraArgs`, so it chains with
optax's transforms and with this package's, and extra keyword arguments given
to `update` (such as `value=loss`) reach every member of a `chain`.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_lab.optim.base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    Params,
    Updates,
    check_range,
    concrete_value,
)

__all__ = [
    "LookaheadState",
    "lookahead",
    "ApplyIfFiniteState",
    "apply_if_finite",
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
]


def _safe_increment(count: jax.Array) -> jax.Array:
    """count + 1 that stays at the dtype's maximum instead of wrapping around."""
    count = jnp.asarray(count)
    top = jnp.iinfo(count.dtype).max
    return jnp.where(count < top, count + 1, count)


# --------------------------------------------------------------------------------------------
# Lookahead
# --------------------------------------------------------------------------------------------


class LookaheadState(NamedTuple):
    """State of `lookahead`.

    Attributes:
      fast_state: the state of the inner ("fast") optimizer.
      slow: the slow weights phi, a tree like the parameters; they equal the
        parameters right after `init` and right after every synchronization.
      steps_since_sync: fast steps taken since the last synchronization, an
        int32 in [0, sync_period).
    """

    fast_state: Any
    slow: Params
    steps_since_sync: jax.Array


def lookahead(
    fast_optimizer: GradientTransformation,
    sync_period: jax.typing.ArrayLike,
    slow_step_size: jax.typing.ArrayLike,
    reset_state: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back").

    The fast weights theta are the model's parameters: the fast optimizer A
    moves them every step. Every k = `sync_period` steps the slow weights phi
    take one step towards them and the fast weights restart from there:

    .. math::
        \theta_{t+1} = \theta_t + A(g_t), \qquad
        \text{every } k \text{ steps: } \phi \leftarrow \phi + \alpha(\theta_{t+1} - \phi),
        \ \theta_{t+1} \leftarrow \phi

    with alpha = `slow_step_size`. Two parameter forms are accepted:

    * the plain parameter tree (this package's form): the slow weights live in
      the state (initialised from the parameters in `init`), and on a
      synchronization step the returned update moves the parameters to the new
      slow weights. `update` needs `params` (the current fast weights), and the
      returned updates must be applied unchanged: put `lookahead` last in a
      `chain`. Evaluate with `state.slow` (the paper's recommendation) or with
      the parameters.
    * `optax.LookaheadParams(fast, slow)` (optax's form, chosen when `init`
      gets one): gradients are taken at `params.fast`, updates are a
      `LookaheadParams` and the numbers are optax's exactly; `state.slow` is
      None because the slow weights travel in the parameters.

    `sync_period` and `slow_step_size` may be traced: the synchronization is a
    `jnp.where` on the step counter, not a Python branch.

    Args:
      fast_optimizer: the inner optimizer A.
      sync_period: k >= 1, fast steps per synchronization.
      slow_step_size: alpha in [0, 1].
      reset_state: re-initialise the fast optimizer's state (at the new slow
        weights) after each synchronization.

    Raises:
      ValueError: for concrete values out of range.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.lookahead(optim.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for _ in range(2):
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> [round(float(v), 4) for v in params], [round(float(v), 4) for v in state.slow]
      ([0.82, -1.64], [0.82, -1.64])

    References:
      Zhang, Lucas, Hinton & Ba, `Lookahead Optimizer: k steps forward, 1 step back
        <https://arxiv.org/abs/1907.08610>`_, 2019
    """
    # Over 80 lines only with its docstring (58 lines); the code itself is 74.
    check_range("sync_period", sync_period, low=1)
    check_range("slow_step_size", slow_step_size, low=0.0, high=1.0)
    fast = optax.with_extra_args_support(fast_optimizer)

    def init_fn(params: Params) -> LookaheadState:
        if isinstance(params, optax.LookaheadParams):
            # optax's form: the slow weights travel in the parameters, not the state.
            return LookaheadState(
                fast_state=fast.init(params.fast), slow=None, steps_since_sync=jnp.zeros([], jnp.int32)
            )
        return LookaheadState(
            fast_state=fast.init(params),
            slow=jax.tree.map(jnp.asarray, params),
            steps_since_sync=jnp.zeros([], jnp.int32),
        )

    def update_fn(
        updates: Updates, state: LookaheadState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, LookaheadState]:
        if params is None:
            raise ValueError("lookahead needs the current parameters: call update(updates, state, params)")
        if isinstance(params, optax.LookaheadParams):
            return _paired_update(updates, state, params, **extra_args)
        fast_updates, fast_state = fast.update(updates, state.fast_state, params, **extra_args)
        steps = state.steps_since_sync + 1
        sync = steps >= sync_period

        # diff = theta_{t+1} - phi, where theta_{t+1} = params + fast update.
        diff = jax.tree.map(lambda p, u, s: p + u - s, params, fast_updates, state.slow)
        slow = jax.tree.map(lambda s, d: jnp.where(sync, s + slow_step_size * d, s).astype(s.dtype), state.slow, diff)
        # On a sync step the update lands on the new slow weights:
        # phi + alpha d - params = u - (1 - alpha) d.
        out = jax.tree.map(
            lambda u, d: jnp.where(sync, u - (1 - slow_step_size) * d, u).astype(u.dtype),
            fast_updates,
            diff,
        )
        if reset_state:
            fresh = fast.init(slow)
            fast_state = jax.tree.map(
                lambda cur, new: jnp.where(sync, new, cur).astype(jnp.asarray(cur).dtype), fast_state, fresh
            )
        steps_since_sync = jnp.where(sync, 0, steps).astype(jnp.int32)
        return out, LookaheadState(fast_state, slow, steps_since_sync)

    def _paired_update(
        updates: Updates, state: LookaheadState, params: optax.LookaheadParams, **extra_args: Any
    ) -> tuple[optax.LookaheadParams, LookaheadState]:
        """optax's `LookaheadParams` form: the same arithmetic as `optax.lookahead`, update for update.

        Gradients are taken at `params.fast`; the returned `LookaheadParams` of
        updates moves the fast weights as above and the slow weights by
        alpha d on a synchronization step (0 otherwise).
        """
        fast_updates, fast_state = fast.update(updates, state.fast_state, params.fast, **extra_args)
        sync = state.steps_since_sync == (sync_period - 1)
        diff = jax.tree.map(lambda f, u, s: f + u - s, params.fast, fast_updates, params.slow)
        slow_updates = jax.tree.map(lambda d: slow_step_size * sync * d, diff)
        fast_updates = jax.tree.map(lambda u, d: u - sync * (1 - slow_step_size) * d, fast_updates, diff)
        if reset_state:
            # As optax: the fresh state is initialised at the current fast weights.
            fresh = fast.init(params.fast)
            fast_state = jax.tree.map(lambda cur, new: (1 - sync) * cur + sync * new, fast_state, fresh)
        steps_since_sync = (state.steps_since_sync + 1) % sync_period
        new_state = LookaheadState(fast_state, None, jnp.asarray(steps_since_sync, jnp.int32))
        return optax.LookaheadParams(fast=fast_updates, slow=slow_updates), new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)


# --------------------------------------------------------------------------------------------
# apply_if_finite
# --------------------------------------------------------------------------------------------


class ApplyIfFiniteState(NamedTuple):
    """State of `apply_if_finite` (the same fields, with the same meaning, as optax's).

    Attributes:
      notfinite_count: consecutive updates that held an Inf or a NaN; back to 0
        after a finite one.
      last_finite: whether the last update was all finite.
      total_notfinite: updates that held an Inf or a NaN since `init`; never reset.
      inner_state: the state of the wrapped optimizer.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


def apply_if_finite(
    inner: GradientTransformation, max_consecutive_errors: jax.typing.ArrayLike
) -> GradientTransformationExtraArgs:
    """Skip updates holding a NaN or an Inf, until too many come in a row (optax.apply_if_finite).

    The incoming updates (gradients) are checked. A non-finite one is dropped:
    the returned update is zero and the inner state is left as it was. After
    more than `max_consecutive_errors` non-finite updates in a row the wrapper
    gives up and lets them through to `inner`. The same semantics and state
    fields as optax's; unlike optax's, the zeros returned for a skipped step
    have the structure and dtypes of the inner optimizer's output.

    Args:
      inner: the optimizer to protect.
      max_consecutive_errors: how many non-finite updates in a row are skipped
        (>= 0; may be traced).

    Raises:
      ValueError: for a concrete negative `max_consecutive_errors`.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.apply_if_finite(optim.sgd(0.1), max_consecutive_errors=2)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> updates, state = opt.update(jnp.array([jnp.nan, 1.0], jnp.float32), state, params)
      >>> print(updates, int(state.notfinite_count))
      [0. 0.] 1

    References:
      optax, `Transformations <https://optax.readthedocs.io/en/latest/api/transformations.html>`_
    """
    check_range("max_consecutive_errors", max_consecutive_errors, low=0)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params: Params) -> ApplyIfFiniteState:
        return ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True, jnp.bool_),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=inner.init(params),
        )

    def update_fn(
        updates: Updates, state: ApplyIfFiniteState, params: Params | None = None, **extra_args: Any
    ) -> tuple[Updates, ApplyIfFiniteState]:
        leaves = jax.tree.leaves(updates)
        isfinite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True
        isfinite = jnp.asarray(isfinite, jnp.bool_)
        notfinite_count = jnp.where(isfinite, jnp.zeros([], jnp.int32), _safe_increment(state.notfinite_count))

        def apply(_):
            return inner.update(updates, state.inner_state, params, **extra_args)

        shapes = jax.eval_shape(apply, None)

        def skip(_):
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[0])
            return zeros, state.inner_state

        new_updates, inner_state = jax.lax.cond(
            jnp.logical_or(isfinite, notfinite_count > max_consecutive_errors), apply, skip, None
        )
        return new_updates, ApplyIfFiniteState(
            notfinite_count=notfinite_count,
            last_finite=isfinite,
            total_notfinite=jnp.where(isfinite, state.total_notfinite, _safe_increment(state.total_notfinite)),
            inner_state=inner_state,
        )

    return GradientTransformationExtraArgs(init_fn, update_fn)


# --------------------------------------------------------------------------------------------
# reduce_on_plateau (performance scheduling)
# --------------------------------------------------------------------------------------------


class ReduceLROnPlateauState(NamedTuple):
    """State of `reduce_on_plateau` (the same fields, with the same meaning, as optax.contrib's).

    Attributes:
      scale: the factor every update is multiplied by; starts at 1.
      best_value: the best averaged monitored value so far; starts at +inf.
      plateau_count: decisions in a row without improvement (int32).
      cooldown_count: decisions left in the cooldown after a reduction (int32).
      count: values accumulated towards the next decision (int32).
      avg_value: running mean of the values accumulated so far.
    """

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array
    avg_value: jax.Array


def _float_dtypes(params: Params) -> tuple[Any, Any]:
    """The lowest and highest floating dtypes among the leaves (float32 when there are none)."""
    dtypes = [
        jnp.asarray(x).dtype for x in jax.tree.leaves(params) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    ]
    if not dtypes:
        return jnp.dtype(jnp.float32), jnp.dtype(jnp.float32)
    by_size = sorted(dtypes, key=lambda d: d.itemsize)
    return by_size[0], by_size[-1]


def reduce_on_plateau(
    factor: jax.typing.ArrayLike = 0.1,
    patience: jax.typing.ArrayLike = 10,
    rtol: jax.typing.ArrayLike = 1e-4,
    atol: jax.typing.ArrayLike = 0.0,
    cooldown: jax.typing.ArrayLike = 0,
    accumulation_size: jax.typing.ArrayLike = 1,
    min_scale: jax.typing.ArrayLike = 0.0,
) -> GradientTransformationExtraArgs:
    r"""Scale updates down when the monitored value stops improving (performance scheduling).

    The lectures' performance scheduling (the gradients-and-activations lecture: "measure validation error
    every N steps, divide eta by lambda when the error stops dropping"; Keras'
    `ReduceLROnPlateau`). optax.contrib's keywords and state; feed the
    monitored value as `update(updates, state, params, value=loss)`.

    Every `accumulation_size` calls the mean v of the values fed since the last
    decision is compared with the best b so far. It is an improvement when

    .. math:: v < b - \text{rtol}\,|b| - \text{atol}.

    After `patience` decisions in a row without improvement the scale is
    multiplied by `factor` (never below `min_scale`), then `cooldown`
    decisions are ignored. Updates are multiplied by the current scale.

    Differences from `optax.contrib.reduce_on_plateau`, which gives the same
    numbers otherwise:

    * optax tests ``v < (1 - rtol) b - atol``. For a negative best value,
      (1 - rtol) b lies *above* b, so a value equal to (or slightly worse than)
      the best counts as an improvement, the plateau count never grows and the
      scale is never reduced (optax PR #1767). Negative losses are common
      (negative log-likelihoods, ELBOs, rewards); here the margin is rtol |b|,
      computed as (1 + rtol) b for b < 0 and as optax does for b >= 0, so
      non-negative values give bit-identical results.
    * `patience=0` reduces on every decision without improvement (optax's
      never reduces).
    * With no floating-point parameters the state is float32 (optax uses the
      default float dtype).

    Args:
      factor: multiplier of the scale on a plateau, in (0, 1).
      patience: decisions without improvement before a reduction (>= 0).
      rtol: relative tolerance of an improvement, in [0, 1].
      atol: absolute tolerance of an improvement (>= 0); rtol and atol may not
        both be 0.
      cooldown: decisions ignored after a reduction (>= 0).
      accumulation_size: values averaged per decision (>= 1); use more than 1
        when feeding noisy mini-batch losses.
      min_scale: the scale is never reduced below this (>= 0).

    All of them may be traced (built inside `jit`/`vmap`).

    Raises:
      ValueError: for concrete values out of range.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.chain(optim.sgd(0.1), optim.reduce_on_plateau(factor=0.5, patience=1))
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for loss in [1.0, 1.0, 1.0]:
      ...     updates, state = opt.update(2 * params, state, params, value=loss)
      >>> print(updates.round(4), float(state[-1].scale))
      [-0.05        0.09999999] 0.25

    References:
      Keras, `ReduceLROnPlateau <https://keras.io/api/callbacks/reduce_lr_on_plateau/>`_
      optax, `contrib.reduce_on_plateau <https://optax.readthedocs.io/en/latest/api/contrib.html>`_
    """
    # Over 80 lines only with its docstring (66 lines); the code itself is 77.
    check_range("factor", factor, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    check_range("patience", patience, low=0)
    check_range("rtol", rtol, low=0.0, high=1.0)
    check_range("atol", atol, low=0.0)
    check_range("cooldown", cooldown, low=0)
    check_range("accumulation_size", accumulation_size, low=1)
    check_range("min_scale", min_scale, low=0.0)
    if concrete_value(rtol) == 0.0 and concrete_value(atol) == 0.0:
        raise ValueError("rtol=0.0 and atol=0.0: at least one of rtol and atol must be positive")

    def init_fn(params: Params) -> ReduceLROnPlateauState:
        lowest, highest = _float_dtypes(params)
        return ReduceLROnPlateauState(
            scale=jnp.asarray(1.0, lowest),
            best_value=jnp.asarray(jnp.inf, highest),
            plateau_count=jnp.asarray(0, jnp.int32),
            cooldown_count=jnp.asarray(0, jnp.int32),
            count=jnp.asarray(0, jnp.int32),
            avg_value=jnp.asarray(0.0, highest),
        )

    def decide(state: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        best, avg = state.best_value, state.avg_value
        threshold = jnp.where(best >= 0, (1 - rtol) * best, (1 + rtol) * best) - atol
        # +inf (nothing seen yet) must stay +inf even with rtol = 1, where 0 * inf is NaN.
        threshold = jnp.where(jnp.isposinf(best), jnp.inf, threshold)
        improved = avg < threshold
        best = jnp.where(improved, avg.astype(best.dtype), best)
        plateau = jnp.where(improved, 0, _safe_increment(state.plateau_count))
        in_cooldown = state.cooldown_count > 0
        reduce = jnp.logical_and(~improved, plateau >= patience)
        scale_dtype = state.scale.dtype
        free_scale = jnp.maximum(jnp.where(reduce, state.scale * factor, state.scale), min_scale).astype(scale_dtype)
        return ReduceLROnPlateauState(
            scale=jnp.where(in_cooldown, state.scale, free_scale).astype(scale_dtype),
            best_value=best.astype(state.best_value.dtype),
            plateau_count=jnp.where(in_cooldown | reduce, 0, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(in_cooldown, state.cooldown_count - 1, jnp.where(reduce, cooldown, 0)).astype(
                jnp.int32
            ),
            count=jnp.zeros([], jnp.int32),
            avg_value=jnp.zeros([], state.avg_value.dtype),
        )

    def update_fn(
        updates: Updates,
        state: ReduceLROnPlateauState,
        params: Params | None = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Updates, ReduceLROnPlateauState]:
        del params, extra_args
        if value is None:
            raise ValueError(
                "reduce_on_plateau needs the monitored value: call update(updates, state, params, value=loss)"
            )
        dtype = state.avg_value.dtype
        count = _safe_increment(state.count)
        avg = ((state.count * state.avg_value + jnp.asarray(value).astype(dtype)) / count).astype(dtype)
        accumulated = state._replace(count=count, avg_value=avg)
        decided = decide(accumulated)
        ready = count == accumulation_size
        new_state = jax.tree.map(lambda d, a: jnp.where(ready, d, a), decided, accumulated)
        scaled = jax.tree.map(lambda g: (new_state.scale * g).astype(jnp.asarray(g).dtype), updates)
        return scaled, new_state

    return GradientTransformationExtraArgs(init_fn, update_fn)
