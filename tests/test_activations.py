"""Activations against PyTorch/numpy closed forms, and the lectures' initializer table."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.nn.activations import ACTIVATIONS, get_activation, recommended_init

X = np.linspace(-8.0, 8.0, 161)
X2 = np.random.default_rng(0).normal(size=(5, 7)) * 3


def _torch(fn, x, **kw):
    return fn(torch.from_numpy(np.asarray(x, np.float64)), **kw).numpy()


REFERENCES = {
    "linear": lambda x: x,
    "none": lambda x: x,
    "identity": lambda x: x,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: _torch(F.leaky_relu, x),
    "elu": lambda x: _torch(F.elu, x),
    "selu": lambda x: _torch(F.selu, x),
    "gelu": lambda x: _torch(F.gelu, x),
    "gelu_tanh": lambda x: _torch(F.gelu, x, approximate="tanh"),
    "swish": lambda x: _torch(F.silu, x),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "mish": lambda x: _torch(F.mish, x),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softmax": lambda x: _torch(torch.softmax, x, dim=-1),
}


def test_every_name_has_a_reference():
    assert set(ACTIVATIONS) == set(REFERENCES)
    required = {"linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu"}
    assert required | {"swish", "silu", "mish", "softplus", "softmax"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("x", [X, X2], ids=["grid", "matrix"])
def test_matches_reference(name, x):
    got = get_activation(name)(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), REFERENCES[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, ref",
    [
        ("sigmoid", jax.nn.sigmoid),
        ("relu", jax.nn.relu),
        ("selu", jax.nn.selu),
        ("gelu_tanh", lambda x: jax.nn.gelu(x, approximate=True)),
        ("gelu", lambda x: jax.nn.gelu(x, approximate=False)),
        ("mish", jax.nn.mish),
        ("elu", jax.nn.elu),
        ("leaky_relu", jax.nn.leaky_relu),
    ],
)
def test_matches_jax_nn(name, ref):
    x = jnp.asarray(X)
    np.testing.assert_allclose(get_activation(name)(x), ref(x), rtol=1e-12, atol=1e-14)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(set(ACTIVATIONS) - {"softmax"})), st.floats(-30, 30))
def test_gradient_matches_central_difference(name, x):
    f = get_activation(name)
    h = 1e-6
    if name in ("relu", "leaky_relu", "selu") and abs(x) < 2 * h:
        x = 0.5  # their derivative jumps at 0
    fd = (f(jnp.asarray(x + h)) - f(jnp.asarray(x - h))) / (2 * h)
    np.testing.assert_allclose(jax.grad(f)(jnp.asarray(x)), fd, rtol=1e-6, atol=1e-8)


def test_no_overflow_at_large_inputs():
    x = jnp.asarray([-1e4, 1e4], jnp.float32)

    def total(name, v):
        return jnp.sum(get_activation(name)(v))

    @jax.jit
    def values_and_grads(v):
        return {n: jax.value_and_grad(total, argnums=1)(n, v) for n in ACTIVATIONS}

    for name, (value, grad) in values_and_grads(x).items():
        assert np.isfinite(value) and np.all(np.isfinite(grad)), name


def test_dtype_is_preserved():
    x = jnp.asarray(X, jnp.float32)
    for name in ACTIVATIONS:
        assert get_activation(name)(x).dtype == jnp.float32, name


def test_softmax_normalizes_last_axis():
    y = get_activation("softmax")(jnp.asarray(X2))
    np.testing.assert_allclose(jnp.sum(y, axis=-1), np.ones(5), rtol=1e-12)


def test_names_are_case_insensitive():
    assert get_activation("ReLU") is get_activation("relu")


def test_unknown_name_names_argument_choices_and_closest():
    with pytest.raises(ValueError, match=r"activation='rleu'.*did you mean 'relu'\?.*valid choices:.*tanh"):
        get_activation("rleu")
    with pytest.raises(ValueError, match="activation='nope'"):
        recommended_init("nope")


@pytest.mark.parametrize(
    "activation, expected",
    # The gradients-and-activations lecture's table: Glorot for tanh, sigmoid, softmax (and no activation);
    # He for ReLU, Leaky ReLU, ELU, GELU, Swish, Mish; LeCun for SELU.
    [("linear", "glorot"), ("none", "glorot"), ("tanh", "glorot"), ("sigmoid", "glorot")]
    + [("softmax", "glorot"), ("relu", "he"), ("leaky_relu", "he"), ("elu", "he"), ("gelu", "he")]
    + [("swish", "he"), ("silu", "he"), ("mish", "he"), ("selu", "lecun")],
)
def test_recommended_init_follows_lecture_table(activation, expected):
    assert recommended_init(activation).split("_")[0] == expected
