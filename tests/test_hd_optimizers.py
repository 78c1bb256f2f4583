"""Hypergradient descent (Baydin et al., 2018) against a NumPy float64 transcription of the paper's Algorithm 1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim

STEPS = 100


def _problem():
    """A logistic regression with an L2 term, parameters in two leaves: smooth, not quadratic."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=40) > 0).astype(np.float64)

    def loss(p):
        z = x @ p["w"] + p["b"]
        return np.mean(np.logaddexp(0.0, z) - y * z) + 0.05 * np.sum(p["w"] ** 2)

    def grad(p):
        z = x @ p["w"] + p["b"]
        r = (1 / (1 + np.exp(-z)) - y) / len(y)
        return {"w": x.T @ r + 0.1 * p["w"], "b": np.array([r.sum()])}

    def jloss(p):
        z = x @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.05 * jnp.sum(p["w"] ** 2)

    p0 = {"w": rng.normal(size=3), "b": np.zeros(1)}
    return p0, loss, grad, jloss


def _flat(p):
    return np.concatenate([p["w"], p["b"]])


def _unflat(v):
    return {"w": v[:3], "b": v[3:]}


def numpy_sgd_hd(p0, grad, alpha0, beta, steps):
    """Algorithm 1 (SGD-HD): alpha_t = alpha_{t-1} - beta h_t, h_t = g_t . (-g_{t-1}); theta -= alpha_t g_t."""
    theta = _flat(p0).copy()
    alpha, g_prev = alpha0, np.zeros_like(theta)
    alphas = []
    for _ in range(steps):
        g = _flat(grad(_unflat(theta)))
        h = g @ (-g_prev)
        alpha = alpha - beta * h
        theta = theta - alpha * g
        g_prev = g
        alphas.append(alpha)
    return theta, np.array(alphas)


def numpy_adam_hd(p0, grad, alpha0, beta, b1, b2, eps, steps):
    """Algorithm 1 (Adam-HD): h_t = g_t . grad_alpha u_{t-1}, u = -alpha mhat / (sqrt(vhat) + eps)."""
    theta = _flat(p0).copy()
    alpha = alpha0
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    du_dalpha = np.zeros_like(theta)
    alphas = []
    for t in range(1, steps + 1):
        g = _flat(grad(_unflat(theta)))
        h = g @ du_dalpha
        alpha = alpha - beta * h
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        u = -alpha * mhat / (np.sqrt(vhat) + eps)
        du_dalpha = -mhat / (np.sqrt(vhat) + eps)
        theta = theta + u
        alphas.append(alpha)
    return theta, np.array(alphas)


def _run(opt, p0, jloss, steps=STEPS):
    @jax.jit
    def run(p):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(jloss)(p), s, p)
            return (optax.apply_updates(p, updates), s), s.learning_rate

        (p, _), rates = jax.lax.scan(step, (p, opt.init(p)), None, length=steps)
        return p, rates

    return run(jax.tree.map(jnp.asarray, p0))


def test_hd_sgd_matches_the_papers_algorithm():
    p0, loss, grad, jloss = _problem()
    ref_theta, ref_alphas = numpy_sgd_hd(p0, grad, 0.05, 0.02, STEPS)
    p, rates = _run(optim.hd_sgd(0.05, hypergrad_lr=0.02), p0, jloss)
    np.testing.assert_allclose(np.asarray(rates), ref_alphas, rtol=1e-10)
    np.testing.assert_allclose(_flat(jax.tree.map(np.asarray, p)), ref_theta, rtol=1e-10)
    assert ref_alphas[-1] > 1.5 * 0.05  # the rate really adapted (grew: gradients agree here)
    assert loss(_unflat(ref_theta)) < loss(p0)


def test_hd_adam_matches_the_papers_algorithm():
    p0, loss, grad, jloss = _problem()
    ref_theta, ref_alphas = numpy_adam_hd(p0, grad, 0.01, 1e-3, 0.9, 0.999, 1e-8, STEPS)
    p, rates = _run(optim.hd_adam(0.01, hypergrad_lr=1e-3), p0, jloss)
    np.testing.assert_allclose(np.asarray(rates), ref_alphas, rtol=1e-10)
    np.testing.assert_allclose(_flat(jax.tree.map(np.asarray, p)), ref_theta, rtol=1e-10)
    assert abs(ref_alphas[-1] / 0.01 - 1) > 0.1  # the rate really adapted


@pytest.mark.parametrize(
    "ours,theirs", [(optim.hd_sgd(0.05, hypergrad_lr=0.0), optax.sgd(0.05)),
                    (optim.hd_adam(0.01, hypergrad_lr=0.0), optax.adam(0.01))],
)
def test_zero_hypergrad_lr_is_the_plain_optimizer(ours, theirs):
    p0, _, _, jloss = _problem()
    p, _ = _run(ours, p0, jloss, steps=30)
    q = jax.tree.map(jnp.asarray, p0)
    s = theirs.init(q)
    for _ in range(30):
        u, s = theirs.update(jax.grad(jloss)(q), s, q)
        q = optax.apply_updates(q, u)
    for k in q:
        np.testing.assert_allclose(p[k], q[k], rtol=1e-10)


def test_hyperparameters_are_traceable_under_vmap():
    p0, _, grad, jloss = _problem()
    betas = jnp.array([0.0, 0.01, 0.02])

    def final_rate(beta):
        opt = optim.hd_sgd(jnp.asarray(0.05), hypergrad_lr=beta)
        p = jax.tree.map(jnp.asarray, p0)
        s = opt.init(p)
        for _ in range(5):
            u, s = opt.update(jax.grad(jloss)(p), s, p)
            p = optax.apply_updates(p, u)
        return s.learning_rate

    rates = jax.jit(jax.vmap(final_rate))(betas)
    for beta, rate in zip(betas, rates, strict=True):
        np.testing.assert_allclose(rate, numpy_sgd_hd(p0, grad, 0.05, float(beta), 5)[1][-1], rtol=1e-12)


def test_bad_hyperparameters_name_the_valid_range():
    with pytest.raises(ValueError, match="hypergrad_lr.*valid range"):
        optim.hd_sgd(0.1, hypergrad_lr=-1.0)
    with pytest.raises(ValueError, match="b2.*valid range"):
        optim.hd_adam(0.1, b2=1.0)
