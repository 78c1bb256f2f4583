"""Losses against optax, PyTorch and scikit-learn; masks; penalties and their gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error

from jaxopt_lab import losses
from jaxopt_lab.losses import (
    LOSSES,
    accuracy,
    binary_cross_entropy,
    decay_mask,
    get_loss,
    huber,
    l1_penalty,
    l2_penalty,
    mae,
    mse,
    softmax_cross_entropy,
)

RNG = np.random.default_rng(0)
N, K = 12, 4
LOGITS = RNG.normal(size=(N, K)) * 3
INT_LABELS = RNG.integers(0, K, N)
ONE_HOT = np.eye(K)[INT_LABELS]
BIN_LOGITS = RNG.normal(size=N) * 4
BIN_LABELS = RNG.integers(0, 2, N)
PRED = RNG.normal(size=(N, 3))
TARGET = RNG.normal(size=(N, 3)) * 2


def t(a):
    return torch.from_numpy(np.asarray(a))


def test_softmax_cross_entropy_integer_and_one_hot_match_optax_and_torch():
    want = float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(LOGITS, INT_LABELS)))
    np.testing.assert_allclose(softmax_cross_entropy(LOGITS, INT_LABELS), want, rtol=1e-12)
    np.testing.assert_allclose(softmax_cross_entropy(LOGITS, ONE_HOT), want, rtol=1e-12)
    np.testing.assert_allclose(want, F.cross_entropy(t(LOGITS), t(INT_LABELS)).item(), rtol=1e-12)
    soft = RNG.dirichlet(np.ones(K), N)
    np.testing.assert_allclose(
        softmax_cross_entropy(LOGITS, soft), jnp.mean(optax.softmax_cross_entropy(LOGITS, soft)), rtol=1e-12
    )


def test_softmax_cross_entropy_is_finite_at_huge_logits():
    logits = jnp.asarray([[1000.0, -1000.0], [-1000.0, 1000.0]], jnp.float32)
    loss = softmax_cross_entropy(logits, jnp.asarray([0, 0]))
    np.testing.assert_allclose(loss, 1000.0, rtol=1e-6)  # (0 + 2000) / 2
    assert np.all(np.isfinite(jax.grad(softmax_cross_entropy)(logits, jnp.asarray([0, 0]))))


@pytest.mark.parametrize("shape", [(N,), (N, 1)])
def test_binary_cross_entropy_matches_optax_and_torch(shape):
    logits, labels = BIN_LOGITS.reshape(shape), BIN_LABELS.astype(float)
    want = F.binary_cross_entropy_with_logits(t(BIN_LOGITS), t(labels)).item()
    np.testing.assert_allclose(binary_cross_entropy(logits, labels), want, rtol=1e-12)
    np.testing.assert_allclose(binary_cross_entropy(logits, labels.reshape(shape)), want, rtol=1e-12)
    ref = jnp.mean(optax.sigmoid_binary_cross_entropy(BIN_LOGITS, labels))
    np.testing.assert_allclose(binary_cross_entropy(logits, BIN_LABELS), ref, rtol=1e-12)


def test_binary_cross_entropy_multilabel_sums_outputs():
    labels = RNG.integers(0, 2, (N, K)).astype(float)
    per_element = optax.sigmoid_binary_cross_entropy(LOGITS, labels)
    np.testing.assert_allclose(binary_cross_entropy(LOGITS, labels), jnp.mean(jnp.sum(per_element, 1)), rtol=1e-12)


def test_binary_cross_entropy_is_stable_at_huge_logits():
    z = jnp.asarray([1000.0, -1000.0, 1000.0, -1000.0, 40.0], jnp.float32)
    y = jnp.asarray([1.0, 0.0, 0.0, 1.0, 1.0], jnp.float32)
    # Right answers cost 0 (and exp(-40) ~ 4e-18); wrong ones cost |z|.
    per_example = [binary_cross_entropy(z[i : i + 1], y[i : i + 1]) for i in range(5)]
    np.testing.assert_allclose(per_example, [0.0, 0.0, 1000.0, 1000.0, 0.0], atol=1e-12)
    g = jax.grad(binary_cross_entropy)(z, y)
    np.testing.assert_allclose(g, (jax.nn.sigmoid(z) - y) / 5, atol=1e-12)
    naive = -(y * jnp.log(jax.nn.sigmoid(z)) + (1 - y) * jnp.log(1 - jax.nn.sigmoid(z)))
    assert not np.all(np.isfinite(naive))  # what the stable form avoids


def test_regression_losses_match_sklearn_optax_and_torch():
    np.testing.assert_allclose(mse(PRED, TARGET), mean_squared_error(TARGET, PRED), rtol=1e-12)
    np.testing.assert_allclose(mae(PRED, TARGET), mean_absolute_error(TARGET, PRED), rtol=1e-12)
    for delta in (0.5, 1.0, 3.0):
        want = jnp.mean(optax.huber_loss(PRED, TARGET, delta=delta))
        np.testing.assert_allclose(huber(PRED, TARGET, delta=delta), want, rtol=1e-12)
        np.testing.assert_allclose(want, F.huber_loss(t(PRED), t(TARGET), delta=delta).item(), rtol=1e-12)


def test_column_vs_flat_targets_do_not_broadcast():
    y = RNG.normal(size=N)
    np.testing.assert_allclose(mse(y[:, None], y + 1.0), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="must match"):
        mse(PRED, TARGET[:, :2])


def test_accuracy_matches_sklearn():
    want = accuracy_score(INT_LABELS, LOGITS.argmax(1))
    np.testing.assert_allclose(accuracy(LOGITS, INT_LABELS), want, rtol=1e-12)
    np.testing.assert_allclose(accuracy(LOGITS, ONE_HOT), want, rtol=1e-12)
    want = accuracy_score(BIN_LABELS, (BIN_LOGITS > 0).astype(int))
    np.testing.assert_allclose(accuracy(BIN_LOGITS, BIN_LABELS), want, rtol=1e-12)
    np.testing.assert_allclose(accuracy(BIN_LOGITS[:, None], BIN_LABELS), want, rtol=1e-12)
    assert 0 < want < 1


CASES = {
    "cross_entropy": (LOGITS, INT_LABELS),
    "binary_cross_entropy": (BIN_LOGITS, BIN_LABELS),
    "mse": (PRED, TARGET),
    "mae": (PRED, TARGET),
    "huber": (PRED, TARGET),
    "accuracy": (LOGITS, ONE_HOT),
}
FUNCS = {**{name: get_loss(name) for name in CASES if name != "accuracy"}, "accuracy": accuracy}
# Per-example values from the references, for the masked means.
PER_EXAMPLE = {
    "cross_entropy": np.asarray(optax.softmax_cross_entropy_with_integer_labels(LOGITS, INT_LABELS)),
    "binary_cross_entropy": np.asarray(optax.sigmoid_binary_cross_entropy(BIN_LOGITS, BIN_LABELS.astype(float))),
    "mse": ((PRED - TARGET) ** 2).mean(1),
    "mae": np.abs(PRED - TARGET).mean(1),
    "huber": np.asarray(optax.huber_loss(PRED, TARGET)).mean(1),
    "accuracy": (LOGITS.argmax(1) == INT_LABELS).astype(float),
}


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.lists(st.booleans(), min_size=N, max_size=N))
def test_mask_gives_the_mean_over_the_selected_examples(name, flags):
    pred, target = CASES[name]
    where = np.asarray(flags)
    got = FUNCS[name](pred, target, where=where)
    if where.any():
        np.testing.assert_allclose(got, PER_EXAMPLE[name][where].mean(), rtol=1e-12)
    else:
        assert float(got) == 0.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_all_false_mask_gives_zero_and_finite_gradient(name):
    pred, target = CASES[name]
    where = jnp.zeros(N, bool)
    pred = jnp.asarray(pred).at[0].set(jnp.nan)  # a padded row full of garbage
    assert float(FUNCS[name](pred, target, where=where)) == 0.0
    if name != "accuracy":
        g = jax.grad(FUNCS[name])(jnp.asarray(CASES[name][0]), target, where=where)
        np.testing.assert_array_equal(g, np.zeros_like(g))


def test_get_loss_and_unknown_name():
    assert set(LOSSES) >= {"cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"}
    assert get_loss("cross_entropy") is softmax_cross_entropy
    with pytest.raises(ValueError, match=r"loss='crossentropy'.*did you mean 'cross_entropy'.*valid choices"):
        get_loss("crossentropy")


def test_bad_shapes_and_delta_raise():
    with pytest.raises(ValueError, match="integer labels have shape"):
        softmax_cross_entropy(LOGITS, INT_LABELS[:5])
    with pytest.raises(ValueError, match="one-hot labels have shape"):
        softmax_cross_entropy(LOGITS, ONE_HOT[:, :2])
    with pytest.raises(ValueError, match="where has shape"):
        mse(PRED, TARGET, where=np.ones(3, bool))
    with pytest.raises(ValueError, match=r"delta=0.0 is out of range"):
        huber(PRED, TARGET, delta=0.0)


PARAMS = {
    "dense_0": {"w": jnp.asarray(RNG.normal(size=(3, 4))), "b": jnp.asarray(RNG.normal(size=4))},
    "norm_0": {"scale": jnp.asarray(RNG.normal(size=4)), "bias": jnp.asarray(RNG.normal(size=4))},
    "dense_1": {"w": jnp.asarray(RNG.normal(size=(4, 2))), "b": jnp.asarray(RNG.normal(size=2))},
}


def test_decay_mask_selects_weight_matrices():
    want = {
        "dense_0": {"w": True, "b": False},
        "norm_0": {"scale": False, "bias": False},
        "dense_1": {"w": True, "b": False},
    }
    assert decay_mask(PARAMS) == want


def test_penalties_values_and_gradients():
    w0, w1 = np.asarray(PARAMS["dense_0"]["w"]), np.asarray(PARAMS["dense_1"]["w"])
    every = [np.asarray(x) for x in jax.tree_util.tree_leaves(PARAMS)]
    np.testing.assert_allclose(l2_penalty(PARAMS, decay_mask), 0.5 * ((w0**2).sum() + (w1**2).sum()), rtol=1e-12)
    np.testing.assert_allclose(l2_penalty(PARAMS), 0.5 * sum((x**2).sum() for x in every), rtol=1e-12)
    np.testing.assert_allclose(l1_penalty(PARAMS, decay_mask(PARAMS)), np.abs(w0).sum() + np.abs(w1).sum())
    np.testing.assert_allclose(l1_penalty(PARAMS), sum(np.abs(x).sum() for x in every), rtol=1e-12)

    mask = decay_mask(PARAMS)
    g2 = jax.grad(l2_penalty)(PARAMS, mask)
    g1 = jax.grad(l1_penalty)(PARAMS, mask)
    want2 = jax.tree_util.tree_map(lambda p, m: p if m else jnp.zeros_like(p), PARAMS, mask)
    want1 = jax.tree_util.tree_map(lambda p, m: jnp.sign(p) if m else jnp.zeros_like(p), PARAMS, mask)
    chex.assert_trees_all_close(g2, want2, rtol=1e-12)
    chex.assert_trees_all_close(g1, want1, rtol=1e-12)


def test_l2_gradient_matches_torch_weight_decay():
    """SGD on loss + lam * l2_penalty is torch.optim.SGD(weight_decay=lam)."""
    w = RNG.normal(size=(3, 2))
    x, y = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 2))
    lam, lr = 0.1, 0.05
    tw = torch.tensor(w, requires_grad=True)
    opt = torch.optim.SGD([tw], lr=lr, weight_decay=lam)
    params = {"dense_0": {"w": jnp.asarray(w)}}
    total = lambda p: losses.mse(jnp.asarray(x) @ p["dense_0"]["w"], y) + lam * l2_penalty(p, decay_mask)
    for _ in range(5):
        opt.zero_grad()
        F.mse_loss(t(x) @ tw, t(y)).backward()
        opt.step()
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, jax.grad(total)(params))
    np.testing.assert_allclose(params["dense_0"]["w"], tw.detach().numpy(), rtol=1e-12)


def test_penalty_dtype_follows_params():
    p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), PARAMS)
    assert l2_penalty(p32).dtype == jnp.float32
    assert l1_penalty(p32, decay_mask).dtype == jnp.float32
    assert mse(PRED.astype(np.float32), TARGET.astype(np.float32)).dtype == jnp.float32


def test_losses_jit_with_traced_mask():
    f = jax.jit(lambda z, y, m: (softmax_cross_entropy(z, y, m), accuracy(z, y, m)))
    where = jnp.arange(N) < 7
    got = f(jnp.asarray(LOGITS), jnp.asarray(INT_LABELS), where)
    np.testing.assert_allclose(got[0], softmax_cross_entropy(LOGITS[:7], INT_LABELS[:7]), rtol=1e-12)
    np.testing.assert_allclose(got[1], accuracy(LOGITS[:7], INT_LABELS[:7]), rtol=1e-12)
