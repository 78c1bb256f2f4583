"""Diagnostics: the gradients lecture's worked backprop example, gradient checks, norms, verdicts, dead ReLUs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import diagnostics, losses
from jaxopt_lab.nn import mlp

# The gradients-and-activations lecture's 2-2-1 ReLU network, in the lecture's order
# (w11^(1), w21^(1), b1^(1), w12^(1), w22^(1), b2^(1), w11^(2), w21^(2), b1^(2)),
# w_ij^(l) joining unit i of layer l-1 to unit j of layer l.
LECTURE_THETA = [1.0, 4.0, 3.0, 2.0, 1.0, -2.0, 2.0, 3.0, -2.0]
LECTURE_GRAD = [-40.0, 16.0, 8.0, 0.0, 0.0, 0.0, 24.0, 0.0, 4.0]
LECTURE_STEP = [1.08, 3.968, 2.984, 2.0, 1.0, -2.0, 1.952, 3.0, -2.008]
X0, TARGET = np.array([[-5.0, 2.0]]), np.array([[8.0]])


def to_params(v):
    w11, w21, b1, w12, w22, b2, v11, v21, c1 = v
    return {
        "dense_0": {"w": jnp.asarray([[w11, w12], [w21, w22]]), "b": jnp.asarray([b1, b2])},
        "dense_1": {"w": jnp.asarray([[v11], [v21]]), "b": jnp.asarray([c1])},
    }


def to_vector(p):
    (w11, w12), (w21, w22) = np.asarray(p["dense_0"]["w"])
    b1, b2 = np.asarray(p["dense_0"]["b"])
    (v11,), (v21,) = np.asarray(p["dense_1"]["w"])
    return [w11, w21, b1, w12, w22, b2, v11, v21, float(p["dense_1"]["b"][0])]


def squared_error(p):
    # One example: the mean squared error is the lecture's (y - t)^2.
    return losses.mse(mlp.apply(p, jnp.asarray(X0))[0], jnp.asarray(TARGET))


def test_worked_backprop_example_of_seed_003():
    p = to_params(LECTURE_THETA)
    np.testing.assert_allclose(mlp.apply(p, jnp.asarray(X0))[0], [[10.0]])  # 2 * relu(6) + 3 * relu(-10) - 2
    grads = jax.grad(squared_error)(p)
    np.testing.assert_allclose(to_vector(grads), LECTURE_GRAD, rtol=1e-12)
    stepped = jax.tree_util.tree_map(lambda w, g: w - 0.002 * g, p, grads)
    np.testing.assert_allclose(to_vector(stepped), LECTURE_STEP, rtol=1e-12)


def test_worked_example_by_finite_differences():
    """Idea #1 on the same network agrees with idea #2 (the kinks at 0 are 6 and 10 away)."""
    errors = diagnostics.finite_difference_check(squared_error, to_params(LECTURE_THETA))
    assert set(errors) == {"dense_0/w", "dense_0/b", "dense_1/w", "dense_1/b"}
    assert max(errors.values()) < 1e-8


def _smooth_problem(dtype):
    rng = np.random.default_rng(0)
    p = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(size=a.shape) * 0.5, dtype),
        {"dense_0": {"w": np.zeros((3, 5)), "b": np.zeros(5)}, "dense_1": {"w": np.zeros((5, 2)), "b": np.zeros(2)}},
    )
    x, y = jnp.asarray(rng.normal(size=(10, 3)), dtype), jnp.asarray(rng.integers(0, 2, 10))
    return p, lambda q: losses.softmax_cross_entropy(mlp.apply(q, x, activation="tanh")[0], y)


@pytest.mark.parametrize("dtype, tol", [(jnp.float64, 1e-8), (jnp.float32, 3e-3)])
def test_finite_difference_check_passes_on_correct_gradients(dtype, tol):
    p, f = _smooth_problem(dtype)
    errors = diagnostics.finite_difference_check(f, p)
    assert max(errors.values()) < tol


def test_finite_difference_check_catches_a_wrong_backward_pass():
    @jax.custom_vjp
    def buggy_tanh(z):
        return jnp.tanh(z)

    buggy_tanh.defvjp(lambda z: (jnp.tanh(z), z), lambda z, g: (g * (1 - jnp.tanh(z)),))  # not squared

    p, _ = _smooth_problem(jnp.float64)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(10, 3)))
    f = lambda q: jnp.mean(buggy_tanh(x @ q["dense_0"]["w"] + q["dense_0"]["b"]) @ q["dense_1"]["w"])
    errors = diagnostics.finite_difference_check(f, p)
    assert errors["dense_1/w"] < 1e-8  # the last layer does not go through the bug
    assert errors["dense_0/w"] > 1e-2 and errors["dense_0/b"] > 1e-2


def test_layer_grad_norms_and_update_ratios_match_numpy():
    p, f = _smooth_problem(jnp.float64)
    g = jax.grad(f)(p)
    norms = jax.jit(diagnostics.layer_grad_norms)(g)
    for name in ("dense_0", "dense_1"):
        flat = np.concatenate([np.ravel(g[name]["w"]), np.ravel(g[name]["b"])])
        np.testing.assert_allclose(norms[name], np.linalg.norm(flat), rtol=1e-12)
    updates = jax.tree_util.tree_map(lambda a: -0.01 * a, g)
    ratios = diagnostics.update_ratios(updates, p)
    for name in ("dense_0", "dense_1"):
        pn = np.linalg.norm(np.concatenate([np.ravel(p[name]["w"]), np.ravel(p[name]["b"])]))
        np.testing.assert_allclose(ratios[name], 0.01 * float(norms[name]) / pn, rtol=1e-12)
    zero = diagnostics.update_ratios({"a": jnp.ones(2), "b": jnp.zeros(2)}, {"a": jnp.zeros(2), "b": jnp.zeros(2)})
    assert float(zero["a"]) == np.inf and float(zero["b"]) == 0.0
    single = diagnostics.layer_grad_norms(jnp.asarray([3.0, 4.0]))
    np.testing.assert_allclose(single["params"], 5.0)


@pytest.mark.parametrize(
    "norms, verdict",
    [
        ([0.1, 0.5, 1.0], "healthy"),
        ([1e-5, 1e-3, 1.0], "vanishing"),  # first layer 1e5 times smaller than the last
        ([1e-8, 1e-8, 1e-8], "vanishing"),  # below float32 resolution everywhere
        ([5e3, 10.0, 1.0], "exploding"),
        ([2.0, 1.0, 1e-4], "exploding"),  # grows 2e4 times from output to input
        ([0.1, float("nan"), 1.0], "exploding"),
        ([float("inf")], "exploding"),
        ([0.3], "healthy"),
    ],
)
def test_gradient_verdict_thresholds(norms, verdict):
    assert diagnostics.gradient_verdict(norms) == verdict
    as_dict = {f"dense_{i}": n for i, n in reversed(list(enumerate(norms)))}  # order comes from the names
    assert diagnostics.gradient_verdict(as_dict) == verdict


def _deep_grad_norms(activation, std_of_fans, depth=10, width=16):
    rng = np.random.default_rng(0)
    sizes = [4] + [width] * depth + [2]
    p = {
        f"dense_{i}": {"w": jnp.asarray(rng.normal(size=(a, b)) * std_of_fans(a, b)), "b": jnp.zeros(b)}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    }
    x = jnp.asarray(rng.normal(size=(32, 4)))
    y = jnp.arange(32) % 2
    loss = lambda q: losses.softmax_cross_entropy(mlp.apply(q, x, activation=activation)[0], y)
    return diagnostics.layer_grad_norms(jax.jit(jax.grad(loss))(p))


def test_verdict_on_real_networks():
    # Deep sigmoid stack: sigmoid' <= 1/4 per layer shrinks the first layer's gradient (the quartic lecture).
    # Glorot's variance, made for tanh, is too small for sigmoid: the signal shrinks layer after layer.
    norms = _deep_grad_norms("sigmoid", lambda a, b: np.sqrt(2 / (a + b)))
    assert list(norms) == [f"dense_{i}" for i in range(11)]  # input to output, not "dense_10" after "dense_1"
    assert diagnostics.gradient_verdict(norms) == "vanishing"
    # Weights with std 3 and no nonlinearity: each layer multiplies the backward signal by ~3 sqrt(16).
    assert diagnostics.gradient_verdict(_deep_grad_norms("linear", lambda a, b: 3.0)) == "exploding"
    # He's variance keeps a ReLU network's gradients at the same scale through the layers.
    assert diagnostics.gradient_verdict(_deep_grad_norms("relu", lambda a, b: np.sqrt(2 / a))) == "healthy"


def test_dead_relu_fraction_counts_units_never_active():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(64, 3)))
    w0, w1 = rng.normal(size=(3, 10)), rng.normal(size=(10, 6))
    b0 = np.zeros(10)
    b0[:4] = -100.0  # four units pushed far below zero: dead
    b1 = np.zeros(6)
    b1[-1] = -1e3
    p = {
        "dense_0": {"w": jnp.asarray(w0), "b": jnp.asarray(b0)},
        "dense_1": {"w": jnp.asarray(w1), "b": jnp.asarray(b1)},
        "dense_2": {"w": jnp.ones((6, 2)), "b": jnp.zeros(2)},
    }
    frac = jax.jit(diagnostics.dead_relu_fraction)(p, x)
    z0 = np.asarray(x) @ w0 + b0
    z1 = np.maximum(z0, 0) @ w1 + b1
    np.testing.assert_allclose(frac["dense_0"], np.mean(np.all(z0 <= 0, axis=0)), rtol=1e-12)
    np.testing.assert_allclose(frac["dense_1"], np.mean(np.all(z1 <= 0, axis=0)), rtol=1e-12)
    assert float(frac["dense_0"]) == pytest.approx(0.4) and float(frac["dense_1"]) >= 1 / 6
    # Dead units get exactly zero gradient on their incoming weights.
    y = jnp.zeros(64, int)
    g = jax.grad(lambda q: losses.softmax_cross_entropy(mlp.apply(q, x)[0], y))(p)
    np.testing.assert_array_equal(g["dense_0"]["w"][:, :4], 0.0)


def test_fd_vs_backprop_timing_grows_with_parameter_count():
    rows = diagnostics.fd_vs_backprop_timing([[2, 2, 2], [2, 48, 2]], n_examples=8, repeats=2)
    small, large = rows
    assert small["num_params"] == mlp.num_params(mlp.init(jax.random.PRNGKey(0), [2, 2, 2])) == 12
    assert large["num_params"] == 2 * 48 + 48 + 48 * 2 + 2
    assert large["forward_passes_fd"] == 2 * large["num_params"]
    for row in rows:
        assert row["backprop_seconds"] > 0 and row["finite_difference_seconds"] > 0
    # 2 * 242 forward passes against 2 * 12: finite differences get clearly slower.
    assert large["finite_difference_seconds"] > 2 * small["finite_difference_seconds"]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="empty"):
        diagnostics.gradient_verdict([])
    with pytest.raises(ValueError, match="scalar"):
        diagnostics.finite_difference_check(lambda q: q["a"] * 2, {"a": jnp.ones(3)})
    with pytest.raises(ValueError, match="eps=-1"):
        diagnostics.finite_difference_check(lambda q: jnp.sum(q["a"]), {"a": jnp.ones(3)}, eps=-1.0)
    with pytest.raises(ValueError, match="layer 'x'"):
        diagnostics.update_ratios({"x": jnp.ones(2)}, {"y": jnp.ones(2)})
