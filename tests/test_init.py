"""Initializers: same numbers as jax.nn.initializers, the literature's variances, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.nn import init as nn_init
from jaxopt_lab.nn.init import INITIALIZERS, compute_fans, get_initializer

KEY = jax.random.PRNGKey(42)
JAX_SAME = {
    "glorot_normal": jax.nn.initializers.glorot_normal(),
    "glorot_uniform": jax.nn.initializers.glorot_uniform(),
    "xavier_normal": jax.nn.initializers.xavier_normal(),
    "xavier_uniform": jax.nn.initializers.xavier_uniform(),
    "he_normal": jax.nn.initializers.he_normal(),
    "he_uniform": jax.nn.initializers.he_uniform(),
    "kaiming_normal": jax.nn.initializers.kaiming_normal(),
    "kaiming_uniform": jax.nn.initializers.kaiming_uniform(),
    "lecun_normal": jax.nn.initializers.lecun_normal(),
    "lecun_uniform": jax.nn.initializers.lecun_uniform(),
    "normal": jax.nn.initializers.normal(1e-2),
    "normal:0.3": jax.nn.initializers.normal(0.3),
    "zeros": jax.nn.initializers.zeros,
    "ones": jax.nn.initializers.ones,
    "constant:0.5": jax.nn.initializers.constant(0.5),
}


CASES = [(name, jnp.float32, (7, 5)) for name in sorted(JAX_SAME)]
# A float64 convolution kernel: fans include the receptive field, as in jax.
CASES += [(name, jnp.float64, (3, 3, 4, 6)) for name in ("he_normal", "glorot_normal")]


@pytest.mark.parametrize("name, dtype, shape", CASES)
def test_same_numbers_as_jax_nn_initializers(name, dtype, shape):
    got = get_initializer(name)(KEY, shape, dtype)
    want = JAX_SAME[name](KEY, shape, dtype)
    assert got.dtype == want.dtype == dtype
    rtol = 1e-6 if dtype == jnp.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


@pytest.mark.parametrize(
    "shape, fans",
    [((7, 5), (7, 5)), ((3, 3, 4, 6), (36, 54)), ((9,), (9, 9)), ((), (1, 1))],
)
def test_compute_fans(shape, fans):
    assert compute_fans(shape) == fans


FAN_IN, FAN_OUT = 400, 250
# Variances from the papers: Glorot & Bengio 2010 (2 / (in + out)), He et al. 2015
# (2 / in), LeCun 1998 (1 / in); plain normal std^2 and U(-a, a) a^2 / 3.
VARIANCES = {
    "glorot_normal": 2 / (FAN_IN + FAN_OUT),
    "glorot_uniform": 2 / (FAN_IN + FAN_OUT),
    "he_normal": 2 / FAN_IN,
    "he_uniform": 2 / FAN_IN,
    "lecun_normal": 1 / FAN_IN,
    "lecun_uniform": 1 / FAN_IN,
    "normal:0.3": 0.09,
    "uniform:0.1": 0.01 / 3,
    "normal": 1e-4,
    "uniform": 0.05**2 / 3,
}


@pytest.mark.parametrize("name", sorted(VARIANCES))
def test_variance_statistically(name):
    w = np.asarray(get_initializer(name)(KEY, (FAN_IN, FAN_OUT), jnp.float64))
    n = w.size
    var = VARIANCES[name]
    # Standard error of the sample variance is at most sqrt(2 / n) relative (normal);
    # 5 standard errors, and the mean within 5 standard errors of 0.
    assert abs(w.var() / var - 1) < 5 * np.sqrt(2 / n)
    assert abs(w.mean()) < 5 * np.sqrt(var / n)
    if "uniform" in name:
        bound = np.sqrt(3 * var)
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.99 * bound
    elif name.split(":")[0] != "normal":
        # Truncated at two standard deviations of the untruncated normal.
        assert np.abs(w).max() <= 2 * np.sqrt(var) / 0.8796256610342398 * (1 + 1e-12)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(1, 1), (9, 4), (4, 9), (6, 6)]), st.floats(0.0, 3.0))
def test_orthogonal_has_orthonormal_columns_or_rows(shape, gain):
    rows, cols = shape
    w = np.asarray(get_initializer(f"orthogonal:{gain}")(KEY, (rows, cols), jnp.float64))
    gram = w.T @ w if rows >= cols else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-10)


def test_constant_and_zeros():
    np.testing.assert_array_equal(get_initializer("constant:-1.5")(KEY, (2, 3)), np.full((2, 3), -1.5))
    np.testing.assert_array_equal(get_initializer("zeros")(KEY, (2, 3)), np.zeros((2, 3)))


def test_float32_is_the_default_dtype():
    assert get_initializer("he_normal")(KEY, (3, 4)).dtype == jnp.float32


def test_works_under_jit_and_vmap_over_keys():
    init = get_initializer("he_uniform")
    keys = jax.random.split(KEY, 4)
    batched = jax.jit(jax.vmap(lambda k: init(k, (5, 3), jnp.float32)))(keys)
    for i in range(4):
        np.testing.assert_allclose(batched[i], init(keys[i], (5, 3), jnp.float32), rtol=1e-6)


def test_traced_stddev_under_vmap():
    stds = jnp.asarray([0.1, 1.0, 2.0])
    out = jax.vmap(lambda s: nn_init.normal(s)(KEY, (4, 4), jnp.float64))(stds)
    for i, s in enumerate([0.1, 1.0, 2.0]):
        np.testing.assert_allclose(out[i], nn_init.normal(s)(KEY, (4, 4), jnp.float64), rtol=1e-12)


def test_every_listed_name_resolves():
    for name in INITIALIZERS:
        concrete = name.replace("C", "0.25").replace("STD", "0.3").replace(":A", ":0.1").replace("GAIN", "2")
        assert get_initializer(concrete)(KEY, (3, 2), jnp.float32).shape == (3, 2), name


@pytest.mark.parametrize("name", ["normal:-0.3", "uniform:-1", "orthogonal:-2"])
def test_negative_scale_raises(name):
    with pytest.raises(ValueError, match=r"out of range: valid range is \[0.0, inf\)"):
        get_initializer(name)


def test_negative_std_in_factory_raises():
    with pytest.raises(ValueError, match=r"stddev=-1.0 is out of range"):
        nn_init.normal(-1.0)


def test_unknown_name_suggests_closest_and_lists_choices():
    with pytest.raises(ValueError, match=r"init='he_normall'.*did you mean 'he_normal'\?.*glorot_uniform"):
        get_initializer("he_normall")
    with pytest.raises(ValueError, match=r"init='xavier_norm'.*did you mean 'xavier_normal'"):
        get_initializer("xavier_norm")


@pytest.mark.parametrize("name", ["constant", "normal:abc"])
def test_malformed_names_raise(name):
    with pytest.raises(ValueError, match="init="):
        get_initializer(name)


def test_bad_mode_and_distribution_raise():
    with pytest.raises(ValueError, match="mode='fan_ni'.*did you mean 'fan_in'"):
        nn_init.variance_scaling(1.0, "fan_ni", "normal")
    with pytest.raises(ValueError, match="distribution="):
        nn_init.variance_scaling(1.0, "fan_in", "gauss")
