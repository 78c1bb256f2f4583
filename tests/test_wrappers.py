"""lookahead, apply_if_finite and reduce_on_plateau against hand-written loops and optax."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.optim import wrappers as W

A = jnp.array([[3.0, 0.5], [0.5, 1.0]])
B = jnp.array([1.0, -2.0])


def grad_fn(params):
    """Gradient of 0.5 w'Aw - b'w + sum(c^4)/4 - c."""
    return {"w": A @ params["w"] - B, "c": params["c"] ** 3 - 1.0}


PARAMS0 = {"w": jnp.array([2.0, 2.0]), "c": jnp.array([0.3, -0.5, 1.5])}


def run(opt, params, n, extra=None):
    """n steps of `opt` on `grad_fn`; the parameters and states after every step."""

    def step(carry, xs):
        params, state = carry
        kwargs = {} if extra is None else {"value": xs}
        updates, state = opt.update(grad_fn(params), state, params, **kwargs)
        params = optax.apply_updates(params, updates)
        return (params, state), (params, state)

    xs = jnp.zeros(n) if extra is None else extra
    _, (traj, states) = jax.lax.scan(step, (params, opt.init(params)), xs)
    return traj, states


# --------------------------------------------------------------------------------------------
# lookahead
# --------------------------------------------------------------------------------------------


def paper_lookahead(inner, params, k, alpha, outer_iterations, reset_state):
    """Algorithm 1 of Zhang et al. (2019), written as the paper's two nested loops."""
    inner_update = jax.jit(inner.update)
    phi = params
    inner_state = inner.init(phi)
    trajectory = []
    for _ in range(outer_iterations):
        theta = phi
        if reset_state:
            inner_state = inner.init(phi)
        for i in range(k):
            updates, inner_state = inner_update(grad_fn(theta), inner_state, theta)
            theta = optax.apply_updates(theta, updates)
            if i < k - 1:
                trajectory.append(theta)
        phi = jax.tree.map(lambda p, t: p + alpha * (t - p), phi, theta)
        trajectory.append(phi)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trajectory)


@pytest.mark.parametrize(
    "inner, k, alpha, reset",
    [
        (optax.sgd(0.1, momentum=0.9), 5, 0.5, False),
        (optax.adam(0.05), 3, 0.8, True),
        (optax.sgd(0.2), 1, 0.5, False),
    ],
)
def test_lookahead_matches_the_papers_loop(inner, k, alpha, reset):
    outer = 4
    traj, states = jax.jit(lambda p: run(W.lookahead(inner, k, alpha, reset), p, k * outer))(PARAMS0)
    expected = paper_lookahead(inner, PARAMS0, k, alpha, outer, reset)
    chex.assert_trees_all_close(traj, expected, rtol=1e-12, atol=1e-13)
    # The slow weights are the parameters right after every synchronization.
    sync = np.arange(1, k * outer + 1) % k == 0
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[sync], states.slow), jax.tree.map(lambda x: x[sync], traj), rtol=1e-12
    )
    np.testing.assert_array_equal(states.steps_since_sync, np.arange(1, k * outer + 1) % k)


def run_optax_lookahead(inner, k, alpha, reset, n):
    opt = optax.lookahead(inner, k, alpha, reset)

    def step(carry, _):
        params, state = carry
        updates, state = opt.update(grad_fn(params.fast), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    params = optax.LookaheadParams.init_synced(PARAMS0)
    _, traj = jax.lax.scan(step, (params, opt.init(params)), None, length=n)
    return traj


@pytest.mark.parametrize("reset", [False, True])
def test_lookahead_matches_optax_lookahead(reset):
    inner, k, alpha, n = optax.adam(0.05), 4, 0.6, 21
    ours, states = jax.jit(lambda p: run(W.lookahead(inner, k, alpha, reset), p, n))(PARAMS0)
    theirs = jax.jit(lambda: run_optax_lookahead(inner, k, alpha, reset, n))()
    # optax's fast weights are our parameters; its slow weights our state's.
    chex.assert_trees_all_close(ours, theirs.fast, rtol=1e-12, atol=1e-13)
    chex.assert_trees_all_close(states.slow, theirs.slow, rtol=1e-12, atol=1e-13)


def test_lookahead_with_traced_period_and_step_size():
    ks = jnp.array([1, 3, 5])
    alphas = jnp.array([0.5, 0.2, 0.7])
    inner = optax.sgd(0.1, momentum=0.5)
    got = jax.jit(jax.vmap(lambda k, a: run(W.lookahead(inner, k, a), PARAMS0, 15)[0]))(ks, alphas)
    for i, (k, a) in enumerate(zip(ks.tolist(), alphas.tolist(), strict=True)):
        want = paper_lookahead(inner, PARAMS0, k, a, 15 // k + 1, False)
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], got), jax.tree.map(lambda x: x[:15], want), rtol=1e-12, atol=1e-13
        )


def test_lookahead_needs_params_and_valid_values():
    opt = W.lookahead(optax.sgd(0.1), 2, 0.5)
    with pytest.raises(ValueError, match="params"):
        opt.update(PARAMS0, opt.init(PARAMS0))
    with pytest.raises(ValueError, match=r"sync_period=0 is out of range: valid range is \[1, inf\)"):
        W.lookahead(optax.sgd(0.1), 0, 0.5)
    with pytest.raises(ValueError, match=r"slow_step_size=1.5 is out of range: valid range is \[0.0, 1.0\]"):
        W.lookahead(optax.sgd(0.1), 2, 1.5)


# --------------------------------------------------------------------------------------------
# apply_if_finite
# --------------------------------------------------------------------------------------------

nan, inf = float("nan"), float("inf")
# finite, 2 bad, finite, 3 bad (the third is let through with max 2), finite...
BAD = [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0]


def grads_with_bad_steps(bad):
    rows = []
    for i, b in enumerate(bad):
        g = np.array([0.5 + i, -1.0 + 0.1 * i])
        if b:
            g[i % 2] = nan if i % 3 else inf
        rows.append(g)
    return {"g": jnp.asarray(np.stack(rows)), "h": jnp.ones((len(bad), 3))}


GRADS = grads_with_bad_steps(BAD)


GRAD_PARAMS = {"g": jnp.zeros(2), "h": jnp.zeros(3)}


def run_on_grads(opt, grads, params=GRAD_PARAMS):
    def step(state, g):
        updates, state = opt.update(g, state, params)
        return state, (updates, state)

    return jax.lax.scan(step, opt.init(params), grads)[1]


@pytest.mark.parametrize("max_errors", [0, 2])
def test_apply_if_finite_matches_optax(max_errors):
    ours_u, ours_s = jax.jit(lambda g: run_on_grads(W.apply_if_finite(optax.adam(0.1), max_errors), g))(GRADS)
    theirs_u, theirs_s = jax.jit(lambda g: run_on_grads(optax.apply_if_finite(optax.adam(0.1), max_errors), g))(GRADS)
    chex.assert_trees_all_equal(ours_u, theirs_u)
    chex.assert_trees_all_equal(tuple(ours_s), tuple(theirs_s))


def test_apply_if_finite_state_by_hand():
    _, s = jax.jit(lambda g: run_on_grads(W.apply_if_finite(optax.sgd(0.1), 2), g))(GRADS)
    np.testing.assert_array_equal(s.last_finite, [not b for b in BAD])
    np.testing.assert_array_equal(s.notfinite_count, [0, 1, 2, 0, 1, 2, 3, 0, 0, 1, 0])
    np.testing.assert_array_equal(s.total_notfinite, np.cumsum(BAD))


def test_apply_if_finite_with_traced_max_errors():
    ms = jnp.array([0, 2, 3])
    got_u, _ = jax.jit(jax.vmap(lambda m: run_on_grads(W.apply_if_finite(optax.sgd(0.1, 0.9), m), GRADS)))(ms)
    for i, m in enumerate(ms.tolist()):
        want_u, _ = run_on_grads(optax.apply_if_finite(optax.sgd(0.1, 0.9), m), GRADS)
        chex.assert_trees_all_equal(jax.tree.map(lambda x, i=i: x[i], got_u), want_u)


def test_apply_if_finite_forwards_extra_args():
    opt = W.apply_if_finite(W.reduce_on_plateau(patience=1), 1)
    state = opt.init(PARAMS0)
    _, state = opt.update(PARAMS0, state, value=2.0)
    _, state = opt.update(PARAMS0, state, value=2.0)
    np.testing.assert_allclose(state.inner_state.scale, 0.1)
    with pytest.raises(ValueError, match=r"max_consecutive_errors=-1 is out of range"):
        W.apply_if_finite(optax.sgd(0.1), -1)


# --------------------------------------------------------------------------------------------
# reduce_on_plateau
# --------------------------------------------------------------------------------------------

P = {"w": jnp.ones(3), "b": jnp.zeros(())}


def plateau_run(opt, losses, params=P):
    """Feed `losses` one by one; the updates of a ones-gradient (= the scale) and the states."""

    def step(state, loss):
        updates, state = opt.update(jax.tree.map(jnp.ones_like, params), state, params, value=loss)
        return state, (updates, state)

    return jax.lax.scan(step, opt.init(params), jnp.asarray(losses))[1]


loss_values = st.lists(st.sampled_from([0.25, 0.5, 0.7, 0.7, 0.7, 1.0, 1.5, 2.0]), min_size=30, max_size=30)
plateau_kwargs = st.fixed_dictionaries(
    {
        "factor": st.sampled_from([0.1, 0.5, 0.8]),
        "patience": st.integers(1, 5),
        "rtol": st.sampled_from([0.0, 1e-4, 0.3]),
        "atol": st.sampled_from([0.0, 0.2]),
        "cooldown": st.integers(0, 3),
        "accumulation_size": st.integers(1, 3),
        "min_scale": st.sampled_from([0.0, 1e-3, 0.05]),
    }
).filter(lambda kw: kw["rtol"] > 0 or kw["atol"] > 0)


@jax.jit
def ours_plateau(losses, kwargs):
    """Every keyword traced: one compilation serves all examples."""
    return plateau_run(W.reduce_on_plateau(**kwargs), losses)


@functools.partial(jax.jit, static_argnames=("factor", "rtol", "atol"))
def optax_plateau(losses, patience, cooldown, accumulation_size, min_scale, *, factor, rtol, atol):
    # optax checks factor, rtol and atol with Python `if`s, so they must be static.
    opt = optax.contrib.reduce_on_plateau(
        factor=factor,
        patience=patience,
        rtol=rtol,
        atol=atol,
        cooldown=cooldown,
        accumulation_size=accumulation_size,
        min_scale=min_scale,
    )
    return plateau_run(opt, losses)


@settings(max_examples=15, deadline=None)
@given(losses=loss_values, kwargs=plateau_kwargs)
def test_reduce_on_plateau_matches_optax_on_positive_losses(losses, kwargs):
    losses = jnp.asarray(losses)
    ours_u, ours_s = ours_plateau(losses, kwargs)
    theirs_u, theirs_s = optax_plateau(losses, **kwargs)
    chex.assert_trees_all_equal(ours_u, theirs_u)
    for field in W.ReduceLROnPlateauState._fields:
        np.testing.assert_array_equal(getattr(ours_s, field), getattr(theirs_s, field), err_msg=field)


def test_reduce_on_plateau_with_traced_keywords():
    losses = jnp.asarray([1.0, 0.9, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7])
    grid = {
        "factor": jnp.array([0.5, 0.1, 0.3]),
        "patience": jnp.array([1, 2, 3]),
        "rtol": jnp.array([1e-4, 0.0, 0.1]),
        "atol": jnp.array([0.0, 0.05, 0.0]),
        "cooldown": jnp.array([0, 1, 2]),
        "accumulation_size": jnp.array([1, 2, 1]),
        "min_scale": jnp.array([0.0, 0.02, 0.0]),
    }
    got_u, _ = jax.jit(jax.vmap(lambda kw: plateau_run(W.reduce_on_plateau(**kw), losses)))(grid)
    for i in range(3):
        kw = {k: v[i].item() for k, v in grid.items()}
        want_u, _ = plateau_run(optax.contrib.reduce_on_plateau(**kw), losses)
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], got_u), want_u, rtol=1e-14)


@pytest.mark.parametrize("level", [1.0, -1.0, -1e6])
def test_reduce_on_plateau_reduces_on_a_flat_loss_of_either_sign(level):
    """A flat loss is a plateau whatever its sign (optax's version never reduces below 0)."""
    _, s = plateau_run(W.reduce_on_plateau(patience=2), [level] * 8)
    np.testing.assert_allclose(s.scale, [1, 1, 0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3], rtol=1e-12)
    np.testing.assert_array_equal(s.plateau_count, [0, 1, 0, 1, 0, 1, 0, 1])


def test_worsening_negative_loss_is_not_an_improvement():
    _, s = plateau_run(W.reduce_on_plateau(patience=3), [-1.0, -0.9, -0.8, -0.7, -0.6])
    np.testing.assert_array_equal(s.best_value, [-1.0] * 5)
    np.testing.assert_array_equal(s.plateau_count, [0, 1, 2, 0, 1])
    np.testing.assert_allclose(s.scale, [1, 1, 1, 0.1, 0.1])


def test_relative_tolerance_is_a_margin_of_the_magnitude():
    """With best b = -100 and rtol 0.01 an improvement must go below -101."""
    _, s = plateau_run(W.reduce_on_plateau(patience=5, rtol=0.01), [-100.0, -100.5, -100.9, -101.5])
    np.testing.assert_array_equal(s.best_value, [-100.0, -100.0, -100.0, -101.5])
    np.testing.assert_array_equal(s.plateau_count, [0, 1, 2, 0])


dyadic_losses = st.lists(st.integers(0, 16).map(lambda i: i / 8), min_size=20, max_size=20)


@jax.jit
def shifted_pair(losses, patience, accumulation):
    make = lambda: W.reduce_on_plateau(patience=patience, rtol=0.0, atol=1 / 16, accumulation_size=accumulation)
    return plateau_run(make(), losses)[0], plateau_run(make(), losses - 64.0)[0]


@settings(max_examples=10, deadline=None)
@given(losses=dyadic_losses, patience=st.integers(1, 4), accumulation=st.integers(1, 2))
def test_absolute_tolerance_alone_is_shift_invariant(losses, patience, accumulation):
    """rtol=0: the decisions depend on loss differences only, so shifting every loss below 0 changes nothing."""
    up, down = shifted_pair(jnp.asarray(losses), patience, accumulation)
    chex.assert_trees_all_equal(up, down)


def test_chain_passes_the_loss_through():
    losses = jnp.asarray([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    chained = optax.chain(optax.adam(0.1), W.reduce_on_plateau(patience=2, factor=0.5))
    ours, states = jax.jit(lambda x: run(chained, PARAMS0, len(losses), extra=x))(losses)
    # The same by hand: adam's update times the scale of a plateau detector fed the same losses.
    adam, rop = optax.adam(0.1), W.reduce_on_plateau(patience=2, factor=0.5)

    @jax.jit
    def by_hand(losses):
        params, adam_state, rop_state = PARAMS0, adam.init(PARAMS0), rop.init(PARAMS0)
        trajectory = []
        for loss in losses:
            updates, adam_state = adam.update(grad_fn(params), adam_state, params)
            updates, rop_state = rop.update(updates, rop_state, value=loss)
            params = optax.apply_updates(params, updates)
            trajectory.append(params)
        return jax.tree.map(lambda *xs: jnp.stack(xs), *trajectory)

    chex.assert_trees_all_close(ours, by_hand(losses), rtol=1e-13)
    np.testing.assert_allclose(states[1].scale, [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_reduce_on_plateau_dtypes_follow_params():
    p32 = {"w": jnp.ones(2, jnp.float32), "b": jnp.ones((), jnp.float16)}
    state = W.reduce_on_plateau().init(p32)
    assert state.scale.dtype == jnp.float16 and state.best_value.dtype == jnp.float32
    updates, _ = W.reduce_on_plateau().update(p32, state, value=1.0)
    chex.assert_trees_all_equal_dtypes(updates, p32)
    assert W.reduce_on_plateau().init(None).scale.dtype == jnp.float32


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"factor": 1.0}, "factor=1.0 is out of range: valid range is (0.0, 1.0)"),
        ({"factor": 0.0}, "factor=0.0 is out of range"),
        ({"patience": -1}, "patience=-1 is out of range"),
        ({"rtol": 1.5}, "rtol=1.5 is out of range: valid range is [0.0, 1.0]"),
        ({"atol": -0.1}, "atol=-0.1 is out of range"),
        ({"rtol": 0.0, "atol": 0.0}, "at least one of rtol and atol must be positive"),
        ({"cooldown": -2}, "cooldown=-2 is out of range"),
        ({"accumulation_size": 0}, "accumulation_size=0 is out of range"),
        ({"min_scale": -1.0}, "min_scale=-1.0 is out of range"),
    ],
)
def test_reduce_on_plateau_bad_values(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        W.reduce_on_plateau(**kwargs)
    assert fragment in str(info.value)


def test_reduce_on_plateau_needs_the_value():
    opt = W.reduce_on_plateau()
    with pytest.raises(ValueError, match="value=loss"):
        opt.update(P, opt.init(P))
