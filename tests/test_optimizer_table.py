"""optax's table-driven optimizer checks (optax/_src/alias_test.py), ported: one table, every optimizer.

Each optimizer in `TABLE` runs in float32, float64, bfloat16 and complex64 on
optax's parabola and (real dtypes) Rosenbrock targets; the state keeps its
shapes, dtypes and shardings across `update` (checked, as optax does, by a
`lax.cond` between the old and the new state, which only compiles when they
match, with the parameters placed on an explicit one-device mesh); `None`
updates and empty trees pass through. A new optimizer is tested by adding
one line to `TABLE`.

x64 is on for the whole suite (tests/conftest.py), so float64 runs here are
real float64 and float32/bfloat16/complex64 runs check that float64
hyperparameters never promote them.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim


class Case(NamedTuple):
    """One optimizer of the table.

    make: builds the optimizer (hyperparameters chosen so the parabola converges in `STEPS` steps).
    complex_ok: runs on complex parameters (False: optax skips it too, or it is undefined there).
    """

    make: Callable[[], Any]
    complex_ok: bool = True


#: Every optimizer of `jaxopt_lab.optim.aliases`, one line each.
TABLE: dict[str, Case] = {
    "sgd": Case(lambda: optim.sgd(0.1)),
    "momentum": Case(lambda: optim.momentum(0.05)),
    "nesterov": Case(lambda: optim.nesterov(0.05)),
    "noisy_sgd": Case(lambda: optim.noisy_sgd(0.1, eta=1e-6, key=0)),
    "sign_sgd": Case(lambda: optim.sign_sgd(0.15), complex_ok=False),  # sign of a complex number: optax skips it
    "asgd": Case(lambda: optim.asgd(0.1)),
    "gradient_lr_control": Case(lambda: optim.gradient_lr_control(0.1, control_factor=0.01)),
    "lecture_gradient_lr_control": Case(lambda: optim.lecture_gradient_lr_control(0.1, control_factor=0.01)),
    "adagrad": Case(lambda: optim.adagrad(1.0)),
    "rmsprop": Case(lambda: optim.rmsprop(0.1)),
    "adadelta": Case(lambda: optim.adadelta(100.0)),
    "adam": Case(lambda: optim.adam(0.3)),
    "adamw": Case(lambda: optim.adamw(0.3)),
    "nadam": Case(lambda: optim.nadam(0.3)),
    "nadamw": Case(lambda: optim.nadamw(0.3)),
    "adamax": Case(lambda: optim.adamax(0.3)),
    "adamaxw": Case(lambda: optim.adamaxw(0.3)),
    "amsgrad": Case(lambda: optim.amsgrad(0.3)),
    "lion": Case(lambda: optim.lion(0.3), complex_ok=False),  # sign-based, as sign_sgd
    "radam": Case(lambda: optim.radam(0.3)),
    "adabelief": Case(lambda: optim.adabelief(0.3)),
    "lamb": Case(lambda: optim.lamb(0.1)),
    "yogi": Case(lambda: optim.yogi(0.3)),
    "adabound": Case(lambda: optim.adabound(0.3, final_lr=0.3), complex_ok=False),  # clips a step size: real only
}

#: Names in `aliases.__all__` that are not optimizers.
NOT_OPTIMIZERS = {"asgd_averaged_params"}

DTYPES = ("float32", "float64", "bfloat16", "complex64")
STEPS = 100


def test_the_table_lists_every_optimizer():
    assert set(optim.aliases.__all__) - NOT_OPTIMIZERS == set(TABLE)


def _parabola(dtype):
    """optax's parabola: x0 = (-1, 10, 1), minimum (1, -1, 1) (times 1 + 1j for complex)."""
    x0 = jnp.asarray([-1.0, 10.0, 1.0], dtype)
    target = jnp.asarray([1.0, -1.0, 1.0], dtype)
    if jnp.iscomplexobj(x0):
        target = target * (1 + 1j)
    return x0, lambda x: jnp.sum(jnp.abs(x - target) ** 2)


def _rosenbrock(dtype):
    """optax's Rosenbrock target from (0, 0), minimum at (1, 1), scaled by 1e-3.

    The scale lets the table's learning rates (set for the parabola) serve here too:
    adaptive optimizers do not see it, and plain SGD's largest stable step becomes ~1e-2/1e-3.
    """
    x0 = jnp.zeros((2,), dtype)
    return x0, lambda x: 1e-3 * ((1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2)


def _descent(loss):
    # The gradient of a real loss of complex parameters must be conjugated to descend.
    return lambda x: jnp.conj(jax.grad(loss)(x))


def _run(opt, x0, loss, steps):
    grad = _descent(loss)

    def step(carry, _):
        x, s = carry
        u, s = opt.update(grad(x), s, x)
        return (optax.apply_updates(x, u), s), None

    (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
    return x


def _stable_state_step(opt, x0, loss):
    """One update whose new state is chosen by a data-dependent `lax.cond` against the old one (optax's check)."""
    state = opt.init(x0)
    updates, new_state = opt.update(_descent(loss)(x0), state, x0)
    pick_new = jnp.sum(jnp.abs(updates)) >= 0  # always true, unknown at compile time
    chosen = jax.lax.cond(pick_new, lambda: new_state, lambda: state)
    return updates, chosen


def _cases():
    cases = []
    for name, case in TABLE.items():
        for dtype in DTYPES:
            if dtype == "complex64" and not case.complex_ok:
                continue
            cases.append(pytest.param(name, dtype, id=f"{name}-{dtype}"))
    return cases


@pytest.mark.parametrize("name,dtype", _cases())
def test_optimizer_converges_and_keeps_dtype_and_state(name, dtype):
    dtype = jnp.dtype(dtype)
    opt = TABLE[name].make()
    x0, parabola = _parabola(dtype)
    r0, rosenbrock = _rosenbrock(dtype)
    real = not jnp.iscomplexobj(x0)
    # Parameters placed with an explicit sharding (a one-device mesh here): the state must keep it.
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("data",))
    x0 = jax.device_put(x0, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))

    @jax.jit
    def everything():
        x = _run(opt, x0, parabola, STEPS)
        # Rosenbrock's valley is narrow: the parabola's rates, cut tenfold, only have to make progress.
        r = _run(optax.chain(opt, optax.scale(0.1)), r0, rosenbrock, STEPS) if real else r0
        updates, state = _stable_state_step(opt, x0, parabola)
        return x, r, updates, state

    x, r, updates, state = everything()
    assert x.dtype == dtype and updates.dtype == dtype and r.dtype == dtype
    start, end = float(parabola(x0)), float(parabola(x))
    # bfloat16 keeps ~3 significant digits: the parabola's 100+ start only gets to within its resolution.
    assert np.isfinite(end) and end < (0.05 if dtype != jnp.bfloat16 else 0.5) * start, (start, end)
    if real:
        r_end = float(rosenbrock(r.astype(jnp.float32)))
        assert np.isfinite(r_end) and r_end < float(rosenbrock(r0.astype(jnp.float32))), r_end

    # The chosen state has the initial state's structure, dtypes, shapes (the cond compiled) and shardings.
    init_state = opt.init(x0)
    assert jax.tree.structure(state) == jax.tree.structure(init_state)
    for new, old in zip(jax.tree.leaves(state), jax.tree.leaves(init_state), strict=True):
        assert new.dtype == old.dtype and new.shape == old.shape
        if not jnp.issubdtype(old.dtype, jax.dtypes.prng_key):
            assert new.sharding.is_equivalent_to(old.sharding, old.ndim), (new.sharding, old.sharding)


@pytest.mark.parametrize("name", list(TABLE))
def test_none_updates_and_empty_trees_pass_through(name):
    opt = TABLE[name].make()
    # Empty trees: nothing to update, nothing raised.
    empty_updates, _ = opt.update({}, opt.init({}), {})
    assert empty_updates == {}
    # A parameter without a gradient (None) stays None; the others move as if it were absent.
    params = {"w": jnp.asarray([1.0, -2.0], jnp.float32), "frozen": jnp.asarray([3.0], jnp.float32)}
    grads = {"w": jnp.asarray([0.5, 0.25], jnp.float32), "frozen": None}
    got, _ = opt.update(grads, opt.init(params), params)
    assert got["frozen"] is None
    if name != "noisy_sgd":  # its noise is drawn per leaf of the whole tree
        alone = {"w": params["w"]}
        want, _ = opt.update({"w": grads["w"]}, opt.init(alone), alone)
        np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(want["w"]))
