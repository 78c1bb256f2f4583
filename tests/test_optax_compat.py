"""Behaviours optax's own test files check, written in optax's style against optax 0.2.8 itself.

Each test here failed before the fix it guards (docs/optimizers.md, "optax's own tests"):
complex parameters, `None` updates, the safe norm of the trust ratio, lookahead's
`LookaheadParams` form, evaluated annotations, and the warning of `noisy_sgd` without a key.
"""

import inspect
import typing
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim import transforms as tr
from jaxopt_lab.optim import wrappers as W
from jaxopt_lab.optim.parity import PARITY_CASES

# --------------------------------------------------------------------------- complex parameters


def _complex_problem():
    """A complex least-squares problem: parameters and the steepest-descent direction of the loss."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3)), jnp.complex64)
    b = jnp.asarray(rng.normal(size=(4,)) + 1j * rng.normal(size=(4,)), jnp.complex64)
    params = {
        "z": jnp.asarray([1 + 1j, -0.5 + 2j, 0.3 - 0.7j], jnp.complex64),
        "c": jnp.asarray([[0.5j, -1.0], [2.0 - 1j, 0.0]], jnp.complex64),
    }

    def loss(p):
        return jnp.sum(jnp.abs(a @ p["z"] - b) ** 2) + jnp.sum(jnp.abs(p["c"] - 1j) ** 2)

    # jax.grad of a real loss of complex inputs is the conjugate of the descent direction.
    return params, lambda p: jax.tree.map(jnp.conj, jax.grad(loss)(p))


def _trajectory(opt, params, direction, steps):
    def step(carry, _):
        p, s = carry
        u, s = opt.update(direction(p), s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p

    return jax.lax.scan(step, (params, opt.init(params)), None, length=steps)[1]


def test_complex64_every_shared_optimizer_follows_optax_for_100_steps():
    params, direction = _complex_problem()
    # adadelta is left out: optax squares complex gradients there (g**2, not |g|^2); see the next test.
    cases = [(name, kw) for name, kw in PARITY_CASES if name != "adadelta"]

    @jax.jit
    def run_all(p0):
        out = []
        for name, kwargs in cases:
            ours = _trajectory(getattr(optim, name)(**kwargs), p0, direction, 100)
            ref = _trajectory(getattr(optax, name)(**kwargs), p0, direction, 100)
            out.append((ours, ref))
        return out

    failures = []
    for (name, kwargs), (ours, ref) in zip(cases, run_all(params), strict=True):
        for key in ("z", "c"):
            assert ours[key].dtype == jnp.complex64, (name, key, ours[key].dtype)
            scale = max(1.0, float(jnp.max(jnp.abs(ref[key]))))
            err = float(jnp.max(jnp.abs(ours[key] - ref[key]))) / scale
            if not err < 1e-6:
                failures.append(f"{name}({kwargs}) leaf {key}: {err:.3g}")
    assert not failures, failures


def test_complex_second_moment_is_the_squared_modulus():
    # optax's own example: adam on [1j] must step along the imaginary axis.
    opt = optim.adam(0.1)
    params = [jnp.asarray([0j], jnp.complex64)]
    updates, state = opt.update([jnp.asarray([1j], jnp.complex64)], opt.init(params))
    np.testing.assert_allclose(np.asarray(updates[0]), [-0.1j], atol=1e-6)
    nu = state[0].nu[0]
    assert float(jnp.real(nu[0])) > 0 and float(jnp.imag(nu[0])) == 0


def test_complex_adadelta_uses_the_squared_modulus():
    # One step from zero state, by hand: E[g^2] = (1 - rho)|g|^2, step = sqrt(eps)/sqrt(E[g^2] + eps) g.
    rho, eps = 0.9, 1e-6
    g = jnp.asarray([1j, 3 - 4j], jnp.complex64)
    opt = tr.scale_by_adadelta(rho, eps)
    step, state = opt.update(g, opt.init(jnp.zeros(2, jnp.complex64)))
    e_g = (1 - rho) * np.abs(np.asarray(g)) ** 2
    np.testing.assert_allclose(np.asarray(state.e_g), e_g, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(step), np.sqrt(eps) / np.sqrt(e_g + eps) * np.asarray(g), rtol=1e-5)


# --------------------------------------------------------------------------- None updates


def _none_cases():
    sched = optax.constant_schedule(0.1)
    return [
        ("add_decayed_weights", lambda m: m.add_decayed_weights(0.1)),
        ("add_decayed_weights(schedule)", lambda m: m.add_decayed_weights(sched)),
        ("trace", lambda m: m.trace(0.9)),
        ("trace(nesterov)", lambda m: m.trace(0.9, nesterov=True)),
        ("scale_by_stddev", lambda m: m.scale_by_stddev()),
        ("scale_by_rms", lambda m: m.scale_by_rms()),
        ("scale_by_rss", lambda m: m.scale_by_rss()),
        ("scale_by_adam", lambda m: m.scale_by_adam()),
        ("scale_by_amsgrad", lambda m: m.scale_by_amsgrad()),
        ("scale_by_adamax", lambda m: m.scale_by_adamax()),
        ("scale_by_radam", lambda m: m.scale_by_radam()),
        ("scale_by_belief", lambda m: m.scale_by_belief()),
        ("scale_by_yogi", lambda m: m.scale_by_yogi()),
        ("scale_by_lion", lambda m: m.scale_by_lion()),
        ("sgd(momentum)", lambda m: m.sgd(0.1, momentum=0.9)),
        ("sgd(nesterov)", lambda m: m.sgd(0.1, momentum=0.9, nesterov=True)),
        ("rmsprop", lambda m: m.rmsprop(0.1)),
        ("rmsprop(centered, momentum)", lambda m: m.rmsprop(0.1, centered=True, momentum=0.9)),
        ("adamax", lambda m: m.adamax(0.1)),
        ("adamaxw", lambda m: m.adamaxw(0.1)),
        ("radam", lambda m: m.radam(0.1)),
        ("adabelief", lambda m: m.adabelief(0.1)),
        ("adamw", lambda m: m.adamw(0.1)),
        ("adam", lambda m: m.adam(0.1)),
    ]


@pytest.mark.parametrize("label,build", _none_cases(), ids=[c[0] for c in _none_cases()])
def test_none_updates_pass_through_like_optax(label, build):
    params = {"w": jnp.asarray([1.0, -2.0], jnp.float32), "b": jnp.asarray([0.5], jnp.float32)}
    updates = {"w": jnp.asarray([0.3, 0.1], jnp.float32), "b": None}
    ours, ref = build(optim), build(optax)
    got, _ = ours.update(updates, ours.init(params), params)
    # The reference: optax on the tree without the gradient-free leaf (several of optax's
    # own transforms, e.g. scale_by_adam, still fail on a None update).
    only_w = {"w": params["w"]}
    want, _ = ref.update({"w": updates["w"]}, ref.init(only_w), only_w)
    assert got["b"] is None
    np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(want["w"]))


def test_decayed_weights_of_none_updates_is_none():
    # optax's `test_none_argument`: the whole update tree may be None.
    weights = (jnp.ones((2,), jnp.float32), {"a": jnp.ones((2,), jnp.float32)})
    assert optim.add_decayed_weights(0.1).update(None, optim.EmptyState(), weights)[0] is None


# --------------------------------------------------------------------------- safe norm


@pytest.mark.parametrize("lib", [optim, optax], ids=["ours", "optax"])
def test_gradient_through_a_lamb_step_is_finite_at_a_zero_bias(lib):
    params = {"w": jnp.asarray([[0.5, -1.0], [2.0, 0.3]], jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    x = jnp.asarray([1.0, 2.0], jnp.float32)

    def loss(p):
        return jnp.sum(jnp.tanh(p["w"] @ x + p["b"]) ** 2)

    def after_one_step(p):
        opt = lib.lamb(0.1)
        grads = jax.tree.map(jnp.zeros_like, p)  # a zero update too: both norms at 0
        grads["w"] = jax.grad(loss)(p)["w"]
        u, _ = opt.update(grads, opt.init(p), p)
        return loss(optax.apply_updates(p, u))

    g = jax.jit(jax.grad(after_one_step))(params)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
    if lib is optim:
        ref = jax.jit(jax.grad(lambda p: _optax_after_one_step(p, loss)))(params)
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def _optax_after_one_step(p, loss):
    opt = optax.lamb(0.1)
    grads = jax.tree.map(jnp.zeros_like, p)
    grads["w"] = jax.grad(loss)(p)["w"]
    u, _ = opt.update(grads, opt.init(p), p)
    return loss(optax.apply_updates(p, u))


def test_trust_ratio_min_norm_matches_optax():
    params = {"w": jnp.asarray([1e-3, 0.0], jnp.float32), "v": jnp.asarray([3.0, 4.0], jnp.float32)}
    updates = {"w": jnp.asarray([1.0, 1.0], jnp.float32), "v": jnp.asarray([1e-4, 0.0], jnp.float32)}
    for kw in ({}, {"min_norm": 0.01}, {"min_norm": 0.01, "trust_coefficient": 0.5, "eps": 1e-3}):
        got = tr.scale_by_trust_ratio(**kw).update(updates, optim.EmptyState(), params)[0]
        want = optax.scale_by_trust_ratio(**kw).update(updates, optax.EmptyState(), params)[0]
        for k in params:
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-6)


# --------------------------------------------------------------------------- lookahead with LookaheadParams


def _lookahead_run(lib, inner, k, alpha, reset, steps):
    opt = lib.lookahead(inner, k, alpha, reset)
    target = {"x": jnp.asarray([1.0, -2.0]), "y": jnp.asarray(0.5)}
    params = optax.LookaheadParams.init_synced({"x": jnp.asarray([3.0, 1.0]), "y": jnp.asarray(-1.0)})
    state = opt.init(params)
    out = []
    for _ in range(steps):
        grads = jax.tree.map(lambda p, t: p - t, params.fast, target)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


@pytest.mark.parametrize("reset", [False, True])
def test_lookahead_accepts_optax_lookahead_params(reset):
    inner = optax.sgd(0.2, momentum=0.5)
    ours, ours_state = _lookahead_run(W, inner, 3, 0.4, reset, 7)
    ref, ref_state = _lookahead_run(optax, inner, 3, 0.4, reset, 7)
    for a, b in zip(ours, ref, strict=True):
        assert isinstance(a, optax.LookaheadParams)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(jax.tree.leaves(ours_state.fast_state), jax.tree.leaves(ref_state.fast_state), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert int(ours_state.steps_since_sync) == int(ref_state.steps_since_sync)


def test_lookahead_state_maps_params_like_optax():
    # optax.tree.map_params initialises with a placeholder: both parameter forms must survive it.
    opt = W.lookahead(optax.adam(0.1), 2, 0.5)
    paired = optax.LookaheadParams.init_synced({"x": jnp.ones(2)})
    mapped = optax.tree.map_params(opt, lambda v: v + 1, opt.init({"x": jnp.ones(2)}))
    np.testing.assert_array_equal(np.asarray(mapped.slow["x"]), [2.0, 2.0])
    state = opt.init(paired)
    assert optax.tree.map_params(opt, lambda v: v, state).slow is None


# --------------------------------------------------------------------------- annotations


def test_learning_rate_annotation_is_the_real_schedule_type():
    # optax's schedule tests skip any optimizer whose annotation is not `optax.ScalarOrSchedule` itself.
    for name in optim.aliases.__all__:
        fn = getattr(optim, name)
        if not callable(fn) or "learning_rate" not in inspect.signature(fn).parameters:
            continue
        annotation = inspect.signature(fn).parameters["learning_rate"].annotation
        assert not isinstance(annotation, str), name
        typing.get_type_hints(fn)  # every annotation evaluates
        if name != "adadelta":  # None is allowed there, as in optax: Optional[ScalarOrSchedule]
            assert annotation is optax.ScalarOrSchedule, (name, annotation)


def test_every_public_callable_has_evaluated_annotations():
    for module in (optim.transforms, optim.aliases, optim.wrappers, optim.base):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                for param in inspect.signature(obj).parameters.values():
                    assert not isinstance(param.annotation, str), (module.__name__, name, param.name)


# --------------------------------------------------------------------------- noisy_sgd's key


def test_noisy_sgd_without_a_key_warns_like_optax():
    with pytest.warns(UserWarning, match="key"):
        optim.noisy_sgd(0.1)
    with pytest.warns(UserWarning):
        optax.noisy_sgd(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.noisy_sgd(0.1, key=3)
    with pytest.warns(DeprecationWarning, match="seed"):
        optim.add_noise(0.1, 0.5, seed=1)
