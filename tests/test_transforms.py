"""Each primitive against its formula, worked by hand in numpy for a few steps.

The inputs are a fixed sequence of three gradients of a 3-vector (one element
negative, one small, one large) and fixed parameters; the references below
are written from the papers' formulas, independently of the implementation.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab.optim import transforms as tr
from jaxopt_lab.optim.base import apply_updates, chain

G = [np.array([0.5, -1.5, 0.02]), np.array([0.4, 2.0, -0.03]), np.array([-0.3, 1.0, 0.05])]
W = np.array([1.0, -2.0, 0.0])
TOL = dict(rtol=1e-13, atol=1e-15)


def run(tx, grads=G, params=W):
    """Eager updates of `tx` for each gradient (params held fixed), as numpy arrays."""
    state = tx.init(jnp.asarray(params))
    out = []
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, jnp.asarray(params))
        out.append(np.asarray(u))
    return out, state


def check(tx, expected, grads=G, params=W, tol=TOL):
    out, state = run(tx, grads, params)
    assert len(out) == len(expected)
    for t, (ours, ref) in enumerate(zip(out, expected, strict=True)):
        np.testing.assert_allclose(ours, ref, err_msg=f"step {t + 1}", **tol)
    return state


# ------------------------------------------------------------------ scaling


def test_scale():
    check(tr.scale(-0.3), [-0.3 * g for g in G])


def test_scale_by_learning_rate_flips_the_sign():
    check(tr.scale_by_learning_rate(0.1), [-0.1 * g for g in G])
    check(tr.scale_by_learning_rate(jnp.asarray(0.1)), [-0.1 * g for g in G])
    check(tr.scale_by_learning_rate(0.1, flip_sign=False), [0.1 * g for g in G])
    # A schedule is evaluated at the step count 0, 1, 2.
    check(tr.scale_by_learning_rate(lambda t: 0.1 / (1 + t)), [-0.1 / (1 + t) * g for t, g in enumerate(G)])
    check(tr.scale_by_learning_rate(None), G)  # optax's convention: None is the identity


def test_scale_by_schedule_counts_steps():
    state = check(tr.scale_by_schedule(lambda t: 2.0**t), [2.0**t * g for t, g in enumerate(G)])
    assert int(state.count) == 3


# ------------------------------------------------------------------ momentum


def test_trace_heavy_ball_and_nesterov():
    mu = 0.9
    v, heavy, nest = np.zeros(3), [], []
    for g in G:
        v = g + mu * v
        heavy.append(v.copy())
        nest.append(g + mu * v)
    check(tr.trace(mu), heavy)
    check(tr.trace(mu, nesterov=True), nest)


def test_trace_accumulator_dtype():
    state = tr.trace(0.5, accumulator_dtype=jnp.float32).init(jnp.zeros(3, jnp.float64))
    assert state.trace.dtype == jnp.float32


# ------------------------------------------------------------------ adaptive scalings


def test_scale_by_rss_both_eps_placements():
    s0, eps = 0.1, 1e-7
    s, inside, outside = np.full(3, s0), [], []
    for g in G:
        s = s + g**2
        inside.append(g / np.sqrt(s + eps))
        outside.append(g / (np.sqrt(s) + eps))
    check(tr.scale_by_rss(s0, eps), inside)
    check(tr.scale_by_rss(s0, eps, eps_in_sqrt=False), outside)


def test_scale_by_rss_zero_accumulator_gives_zero_not_nan():
    out, _ = run(tr.scale_by_rss(0.0), grads=[np.zeros(3)])
    np.testing.assert_array_equal(out[0], np.zeros(3))


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_scale_by_rms(eps_in_sqrt, bias_correction):
    rho, eps, nu0 = 0.8, 1e-3, 0.5
    nu, expected = np.full(3, nu0), []
    for t, g in enumerate(G, start=1):
        nu = rho * nu + (1 - rho) * g**2
        nu_hat = nu / (1 - rho**t) if bias_correction else nu
        expected.append(g / np.sqrt(nu_hat + eps) if eps_in_sqrt else g / (np.sqrt(nu_hat) + eps))
    state = check(tr.scale_by_rms(rho, eps, nu0, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction), expected)
    assert ("count" in state._fields) == bias_correction


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_scale_by_stddev(eps_in_sqrt):
    rho, eps = 0.7, 1e-2
    mu, nu, expected = np.zeros(3), np.zeros(3), []
    for g in G:
        mu = rho * mu + (1 - rho) * g
        nu = rho * nu + (1 - rho) * g**2
        var = nu - mu**2
        expected.append(g / np.sqrt(var + eps) if eps_in_sqrt else g / (np.sqrt(var) + eps))
    check(tr.scale_by_stddev(rho, eps, eps_in_sqrt=eps_in_sqrt), expected)


def test_scale_by_adadelta():
    rho, eps = 0.9, 1e-6
    eg, ex, expected = np.zeros(3), np.zeros(3), []
    for g in G:
        eg = rho * eg + (1 - rho) * g**2
        d = np.sqrt(ex + eps) / np.sqrt(eg + eps) * g
        ex = rho * ex + (1 - rho) * d**2
        expected.append(d)
    check(tr.scale_by_adadelta(rho, eps), expected)


def _adam_moments(b1, b2):
    m, v, out = np.zeros(3), np.zeros(3), []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        out.append((t, g, m.copy(), v.copy()))
    return out


def test_scale_by_adam():
    b1, b2, eps, eps_root = 0.9, 0.99, 1e-3, 1e-4
    expected = [(m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t) + eps_root) + eps) for t, g, m, v in _adam_moments(b1, b2)]
    state = check(tr.scale_by_adam(b1, b2, eps, eps_root), expected)
    assert state._fields == ("count", "mu", "nu") and int(state.count) == 3


def test_scale_by_adam_nesterov():
    b1, b2, eps = 0.8, 0.99, 1e-8
    expected = []
    for t, g, m, v in _adam_moments(b1, b2):
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        expected.append(m_hat / (np.sqrt(v / (1 - b2**t)) + eps))
    check(tr.scale_by_adam(b1, b2, eps, nesterov=True), expected)


@pytest.mark.parametrize("raw_max", [False, True])
def test_scale_by_amsgrad(raw_max):
    # Gradients whose second moment falls, so the running maximum matters.
    grads = [np.array([3.0, -1.0, 0.1]), np.array([0.1, 0.2, -0.1]), np.array([0.05, -0.1, 0.2])]
    b1, b2, eps = 0.9, 0.5, 1e-8
    m, v, vmax, expected = np.zeros(3), np.zeros(3), np.zeros(3), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if raw_max:  # PyTorch: max over the raw moment, corrected afterwards
            vmax = np.maximum(vmax, v)
            v_eff = vmax / (1 - b2**t)
        else:  # optax: max over the corrected moment
            vmax = np.maximum(vmax, v / (1 - b2**t))
            v_eff = vmax
        expected.append((m / (1 - b1**t)) / (np.sqrt(v_eff) + eps))
    check(tr.scale_by_amsgrad(b1, b2, eps, max_before_bias_correction=raw_max), expected, grads=grads)


def test_scale_by_adamax():
    b1, b2, eps = 0.9, 0.99, 1e-8
    m, n, expected = np.zeros(3), np.zeros(3), []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        n = np.maximum(b2 * n, np.abs(g) + eps)
        expected.append(m / ((1 - b1**t) * n))
    check(tr.scale_by_adamax(b1, b2, eps), expected)


def test_scale_by_nadam_dozat_schedule():
    b1, b2, eps, psi = 0.9, 0.999, 1e-8, 0.004
    m, v, prod, expected = np.zeros(3), np.zeros(3), 1.0, []
    for t, g in enumerate(G, start=1):
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod *= mu_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        denom = np.sqrt(v / (1 - b2**t)) + eps
        expected.append((1 - mu_t) / (1 - prod) * g / denom + mu_next / (1 - prod * mu_next) * m / denom)
    state = check(tr.scale_by_nadam(b1, b2, eps, momentum_decay=psi), expected)
    assert float(state.mu_product) == pytest.approx(prod, rel=1e-14)


@pytest.mark.parametrize("eps_before", [False, True])
def test_scale_by_radam(eps_before):
    # b2 = 0.8 (rho_inf = 9) makes rho_t cross the threshold at step 6.
    grads = G + [np.array([0.2, -0.4, 0.6]), np.array([1.0, 0.1, -0.2])] * 2
    b1, b2, eps, threshold = 0.9, 0.8, 1e-2, 4.5
    rho_inf = 2 / (1 - b2) - 1
    m, v, expected, rectified = np.zeros(3), np.zeros(3), [], []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho >= threshold:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            if eps_before:
                expected.append(r * m_hat * np.sqrt(1 - b2**t) / (np.sqrt(v) + eps))
            else:
                expected.append(r * m_hat / (np.sqrt(v / (1 - b2**t)) + eps))
        else:
            expected.append(m_hat)
        rectified.append(bool(rho >= threshold))
    assert rectified[0] is False and rectified[-1] is True  # both branches are exercised
    check(tr.scale_by_radam(b1, b2, eps, threshold=threshold, eps_before_bias_correction=eps_before), expected, grads)


def test_scale_by_belief():
    b1, b2, eps, eps_root = 0.9, 0.99, 1e-8, 1e-6
    m, s, expected = np.zeros(3), np.zeros(3), []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps_root
        expected.append((m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps))
    check(tr.scale_by_belief(b1, b2, eps, eps_root), expected)


def test_scale_by_yogi():
    b1, b2, eps, v0 = 0.9, 0.99, 1e-3, 1e-6
    m, v, expected = np.full(3, v0), np.full(3, v0), []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g**2) * g**2
        expected.append((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    check(tr.scale_by_yogi(b1, b2, eps), expected)


@pytest.mark.parametrize("mode", ["hard", "smooth", "refined"])
def test_scale_by_lion(mode):
    b1, b2, beta = 0.9, 0.99, 3.0
    m, expected = np.zeros(3), []
    for g in G:
        c = b1 * m + (1 - b1) * g
        expected.append(
            {"hard": np.sign(c), "smooth": np.tanh(beta * c), "refined": np.where(np.abs(c) < 1, c, np.sign(c))}[mode]
        )
        m = b2 * m + (1 - b2) * g
    check(tr.scale_by_lion(b1, b2, mode=mode, smooth_beta=beta), expected)


def test_scale_by_trust_ratio_per_array():
    params = {"a": np.array([3.0, 4.0]), "z": np.zeros(2)}
    grads = {"a": np.array([0.6, 0.8]), "z": np.array([1.0, 1.0])}
    tx = tr.scale_by_trust_ratio(trust_coefficient=0.5, eps=0.1)
    u, _ = tx.update(jax.tree.map(jnp.asarray, grads), tx.init(params), jax.tree.map(jnp.asarray, params))
    # ||a|| = 5, ||g_a|| = 1: ratio 0.5 * 5 / (1 + 0.1); zero parameters keep ratio 1.
    np.testing.assert_allclose(u["a"], grads["a"] * 0.5 * 5 / 1.1, **TOL)
    np.testing.assert_allclose(u["z"], grads["z"], **TOL)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(grads, tx.init(params))


@pytest.mark.parametrize("amsbound", [False, True])
def test_scale_by_adabound_clips_like_the_authors_code(amsbound):
    # The authors' update, for lr alpha = base_lr (no schedule), then divided by alpha:
    # step = clip(alpha*sqrt(bc2)/bc1/(sqrt(v)+eps), lb, ub) * m.
    grads = [np.array([1e-4, -1.5, 50.0]), np.array([2e-4, 2.0, -30.0]), np.array([-1e-4, 1.0, 10.0])]
    alpha, b1, b2, eps, final_lr, gamma = 1e-3, 0.9, 0.999, 1e-8, 0.1, 0.5
    m, v, vmax, expected, clipped = np.zeros(3), np.zeros(3), np.zeros(3), [], set()
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsbound else v) + eps
        raw = alpha * np.sqrt(1 - b2**t) / (1 - b1**t) / denom
        lower = final_lr * (1 - 1 / (gamma * t + 1))
        upper = final_lr * (1 + 1 / (gamma * t))
        clipped |= {"lower" for _ in [0] if np.any(raw < lower)} | {"upper" for _ in [0] if np.any(raw > upper)}
        expected.append(np.clip(raw, lower, upper) * m / alpha)
    assert clipped == {"lower", "upper"}  # both bounds act in this example
    tx = tr.scale_by_adabound(b1, b2, eps, final_lr, gamma, base_learning_rate=alpha, amsbound=amsbound)
    check(tx, expected, grads=grads)


def test_scale_by_sign():
    check(tr.scale_by_sign(), [np.sign(g) for g in G])


def test_add_noise_is_annealed_gaussian_like_optax():
    eta, gamma = 0.3, 0.55
    ours, _ = run(tr.add_noise(eta, gamma, key=5))
    ref, _ = run(optax.add_noise(eta, gamma, key=5))
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, **TOL)
    # Statistically: the noise of step t has variance eta / t**gamma.
    tx = tr.add_noise(eta, gamma, key=0)
    zeros = jnp.zeros(20000)
    state = tx.init(zeros)
    for t in (1, 2, 3):
        u, state = tx.update(zeros, state)
        assert float(jnp.var(u)) == pytest.approx(eta / t**gamma, rel=0.05)


# ------------------------------------------------------------------ regularization


def test_add_decayed_weights_and_l2_penalty_add_lambda_w():
    for factory in (tr.add_decayed_weights, tr.add_l2_penalty_grad):
        check(factory(0.1), [g + 0.1 * W for g in G])
        # A schedule is evaluated at the step count.
        check(factory(lambda t: 0.1 * (t + 1)), [g + 0.1 * (t + 1) * W for t, g in enumerate(G)])


def test_add_l1_penalty_adds_lambda_sign_w():
    check(tr.add_l1_penalty_grad(0.2), [g + 0.2 * np.sign(W) for g in G])


def test_weight_decay_mask():
    params = {"w": jnp.asarray(W), "b": jnp.asarray([1.0, 2.0])}
    grads = {"w": jnp.asarray(G[0]), "b": jnp.asarray([0.5, 0.5])}
    for mask in ({"w": True, "b": False}, lambda p: {"w": True, "b": False}):
        tx = tr.add_decayed_weights(0.1, mask=mask)
        u, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_allclose(u["w"], G[0] + 0.1 * W, **TOL)
        np.testing.assert_allclose(u["b"], [0.5, 0.5], **TOL)


def test_transforms_that_need_params_say_so():
    for tx in (tr.add_decayed_weights(0.1), tr.add_l1_penalty_grad(0.1), tr.average_iterates()):
        with pytest.raises(ValueError, match="needs params"):
            tx.update(jnp.asarray(G[0]), tx.init(jnp.asarray(W)))


# ------------------------------------------------------------------ clipping


def test_clip():
    check(tr.clip(0.5), [np.clip(g, -0.5, 0.5) for g in G])


def test_clip_by_global_norm():
    grads = {"a": jnp.asarray([3.0, 0.0]), "b": jnp.asarray([4.0])}  # global norm 5
    tx = tr.clip_by_global_norm(2.0)
    u, _ = tx.update(grads, tx.init(grads))
    chex.assert_trees_all_close(u, {"a": jnp.asarray([1.2, 0.0]), "b": jnp.asarray([1.6])}, rtol=1e-14)
    u, _ = tr.clip_by_global_norm(10.0).update(grads, ())
    chex.assert_trees_all_close(u, grads, rtol=0)


# ------------------------------------------------------------------ the lectures' schemes


def test_scale_by_gradient_lr_control():
    c = 0.99
    a, expected = np.ones(3), []
    for g in G:
        a = a / (1 + c * np.sqrt(np.abs(g)))
        expected.append(a * g)
    state = check(tr.scale_by_gradient_lr_control(c), expected)
    np.testing.assert_allclose(state.lr_scale, a, **TOL)
    # Chained with the learning rate it is the lecture's alpha_t * g_t step.
    check(chain(tr.scale_by_gradient_lr_control(c), tr.scale_by_learning_rate(0.1)), [-0.1 * e for e in expected])


@pytest.mark.parametrize("t0", [0.0, 1.0, 1e6])
def test_average_iterates_is_pytorchs_asgd_average(t0):
    tx = chain(tr.scale_by_learning_rate(0.1), tr.average_iterates(t0))
    grads = G + [np.array([0.3, 0.3, -0.3]), np.array([-1.0, 0.5, 0.2])]
    p, state = jnp.asarray(W), tx.init(jnp.asarray(W))
    x, ax = W.copy(), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        u, state = tx.update(jnp.asarray(g), state, p)
        p = apply_updates(p, u)
        x = x - 0.1 * g
        mu = 1 / max(1.0, t - 1 - t0)  # torch: the mu computed after step t-1 (1 at start)
        ax = ax + mu * (x - ax)
        np.testing.assert_allclose(tr.averaged_params(state), ax, **TOL)
    if t0 >= 1e6:
        np.testing.assert_array_equal(tr.averaged_params(state), np.asarray(p))
    else:  # the running mean of the iterates from step t0 + 1 on
        assert not np.allclose(ax, x)


def test_averaged_params_needs_an_averaging_state():
    with pytest.raises(ValueError, match="average_iterates"):
        tr.averaged_params(tr.trace(0.9).init(jnp.zeros(2)))


# ------------------------------------------------------------------ contracts


@pytest.mark.parametrize(
    "name",
    [
        "scale",
        "scale_by_learning_rate",
        "scale_by_schedule",
        "trace",
        "scale_by_rss",
        "scale_by_rms",
        "scale_by_stddev",
        "scale_by_adadelta",
        "scale_by_adam",
        "scale_by_amsgrad",
        "scale_by_adamax",
        "scale_by_radam",
        "scale_by_belief",
        "scale_by_yogi",
        "scale_by_lion",
        "scale_by_trust_ratio",
        "add_decayed_weights",
        "add_noise",
        "clip",
        "clip_by_global_norm",
    ],
)
def test_same_keywords_and_defaults_as_optax(name):
    ours = inspect.signature(getattr(tr, name)).parameters
    for kw, p in inspect.signature(getattr(optax, name)).parameters.items():
        assert kw in ours, f"{name} lacks optax's {kw}"
        assert ours[kw].default == p.default, f"{name}({kw}) default"
        assert ours[kw].kind == p.kind, f"{name}({kw}) kind"


@pytest.mark.parametrize(
    "factory, kwargs, arg",
    [
        (tr.scale_by_learning_rate, dict(learning_rate=-1.0), "learning_rate"),
        (tr.trace, dict(decay=1.5), "decay"),
        (tr.scale_by_adam, dict(b1=-0.1), "b1"),
        (tr.scale_by_adam, dict(eps_root=-1.0), "eps_root"),
        (tr.scale_by_rss, dict(initial_accumulator_value=-0.1), "initial_accumulator_value"),
        (tr.scale_by_rms, dict(eps=0.0), "eps"),
        (tr.scale_by_adamax, dict(eps=0.0), "eps"),
        (tr.scale_by_radam, dict(threshold=2.0), "threshold"),
        (tr.clip, dict(max_delta=-1.0), "max_delta"),
        (tr.clip_by_global_norm, dict(max_norm=0.0), "max_norm"),
        (tr.add_decayed_weights, dict(weight_decay=-1e-4), "weight_decay"),
        (tr.add_l1_penalty_grad, dict(weight_decay=-1e-4), "weight_decay"),
        (tr.scale_by_trust_ratio, dict(min_norm=-1.0), "min_norm"),
        (tr.scale_by_gradient_lr_control, dict(control_factor=-1.0), "control_factor"),
        (tr.average_iterates, dict(t0=-1.0), "t0"),
        (tr.add_noise, dict(eta=-1.0, gamma=0.5), "eta"),
    ],
)
def test_out_of_range_values_raise(factory, kwargs, arg):
    with pytest.raises(ValueError, match=rf"^{arg}=.* is out of range: valid range is "):
        factory(**kwargs)


def test_check_choice_suggests_the_closest_name():
    tr.check_choice("mode", "hard", ("hard", "smooth"))
    with pytest.raises(ValueError, match=r"^mode='hrad' is not a valid choice \(did you mean 'hard'\?\); "
                       r"valid choices: hard, smooth"):
        tr.check_choice("mode", "hrad", ("hard", "smooth"))


def test_states_keep_their_dtypes_under_float64_hyperparameters():
    # float32 parameters, float64 (x64 on) traced hyperparameters: nothing is promoted.
    p = jnp.ones(3, jnp.float32)
    g = jnp.asarray(G[0], jnp.float32)
    b1 = jnp.asarray(0.9, jnp.float64)
    for tx in (tr.scale_by_adam(b1), tr.trace(b1), tr.scale_by_rms(b1), tr.scale_by_nadam(b1), tr.scale(b1)):
        state = tx.init(p)
        u, new_state = tx.update(g, state, p)
        assert u.dtype == jnp.float32
        chex.assert_trees_all_equal_dtypes(new_state, state)


def test_zero_coupled_weight_decay_reads_no_parameters():
    """`g + 0 * p` costs a pass over every parameter per step; a plain zero coefficient skips it
    (optax's add_decayed_weights does too), and a nonzero or traced one does not."""
    g = {"w": jnp.array([1.0, -2.0])}
    p = {"w": jnp.array([jnp.inf, 3.0])}  # 0 * inf would be NaN
    tx = tr.add_l2_penalty_grad(0.0)
    out, _ = tx.update(g, tx.init(p), p)
    chex.assert_trees_all_equal(out, g)
    out, _ = tx.update(g, tx.init(p), None)  # nothing to read, so no params needed
    chex.assert_trees_all_equal(out, g)

    def uses_params(opt):
        jaxpr = jax.make_jaxpr(lambda params: opt.update(g, opt.init(params), params)[0])(p).jaxpr
        used = {v for eqn in jaxpr.eqns for v in eqn.invars if isinstance(v, jax.extend.core.Var)}
        return any(v in used or v in jaxpr.outvars for v in jaxpr.invars)

    from jaxopt_lab.optim import aliases

    assert not uses_params(aliases.adadelta(1.0))
    assert uses_params(aliases.adadelta(1.0, weight_decay=0.1))
    nonzero = tr.add_l2_penalty_grad(0.1)
    with pytest.raises(ValueError, match="needs params"):
        nonzero.update(g, nonzero.init(p), None)
