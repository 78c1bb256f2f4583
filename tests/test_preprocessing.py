"""Standardization (fitted on training rows only, no leakage) and one-hot labels."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from jaxopt_lab.data.generators import make_moons
from jaxopt_lab.data.preprocessing import Standardizer, one_hot
from jaxopt_lab.data.splits import train_val_test_split

RNG = np.random.RandomState(0)
# The last column is constant.
X = np.concatenate([RNG.normal(3.0, 2.0, size=(60, 3)), np.full((60, 1), 0.1)], axis=1)


def test_matches_sklearn_standard_scaler():
    ours = Standardizer.fit(X)
    ref = StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean, ref.mean_, rtol=1e-13)
    np.testing.assert_allclose(ours.std, ref.scale_, rtol=1e-13)  # sklearn also uses 1 for constant columns
    assert ours.std[-1] == 1.0
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)), X, rtol=1e-13)
    z = ours.transform(X)
    np.testing.assert_allclose(z[:, :3].mean(0), 0.0, atol=1e-13)
    np.testing.assert_allclose(z[:, :3].std(0), 1.0, rtol=1e-13)
    np.testing.assert_allclose(z[:, 3], 0.0, atol=1e-13)


def test_no_leakage_statistics_come_from_training_rows_only():
    x, y = make_moons(200, noise=0.2, random_state=0)
    train, val, test = train_val_test_split(200, val_fraction=0.2, test_fraction=0.1, seed=1, stratify=y)
    fitted = Standardizer.fit(x[train])
    # Wildly different validation/test rows change nothing that was fitted.
    tampered = x.copy()
    tampered[val] = 1e6
    tampered[test] = -1e6
    refit = Standardizer.fit(tampered[train])
    assert np.array_equal(fitted.mean, refit.mean) and np.array_equal(fitted.std, refit.std)
    np.testing.assert_allclose(fitted.mean, x[train].mean(0), rtol=1e-14)
    assert not np.allclose(fitted.mean, x.mean(0), rtol=1e-6)  # the full-data mean would differ
    # The mask form used inside jit gives the same statistics.
    mask = np.zeros(200, dtype=bool)
    mask[train] = True
    masked = Standardizer.fit(tampered, where=mask)
    np.testing.assert_allclose(masked.mean, fitted.mean, rtol=1e-13)
    np.testing.assert_allclose(masked.std, fitted.std, rtol=1e-13)


@jax.jit
def _fit_and_transform(x, mask):
    s = Standardizer.fit(x, where=mask)
    return s, s.transform(x)


def test_inside_jit_and_vmap():
    x = jnp.asarray(X)
    masks = jnp.asarray(RNG.rand(3, 60) < 0.7)
    stats, z = jax.vmap(_fit_and_transform, in_axes=(None, 0))(x, masks)
    chex.assert_shape((stats.mean, stats.std), (3, 4))
    for i in range(3):
        ref = Standardizer.fit(X[np.asarray(masks[i])])
        np.testing.assert_allclose(stats.mean[i], ref.mean, rtol=1e-12)
        np.testing.assert_allclose(stats.std[i], ref.std, rtol=1e-12)
        np.testing.assert_allclose(z[i], ref.transform(X), rtol=1e-11, atol=1e-12)


def test_float32_without_x64():
    with jax.enable_x64(False):
        s = Standardizer.fit(jnp.asarray(X, jnp.float32))
        assert s.mean.dtype == jnp.float32 and s.transform(jnp.asarray(X, jnp.float32)).dtype == jnp.float32
        np.testing.assert_allclose(s.mean, X.mean(0), rtol=1e-5)
        assert float(s.std[-1]) == 1.0


def test_one_hot():
    y = np.array([0, 2, 1, 2])
    np.testing.assert_array_equal(one_hot(y, 3), np.eye(3)[y])
    assert one_hot(y, 3).dtype == np.float64
    yj = jnp.asarray(y)
    out = jax.jit(one_hot, static_argnums=1)(yj, 4)
    chex.assert_trees_all_close(out, jax.nn.one_hot(yj, 4, dtype=jnp.float32))
    assert out.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"label 3 in y is out of range: valid range is \[0, 2\]"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"num_classes=0 is out of range"):
        one_hot(y, 0)
    with pytest.raises(ValueError, match="integer labels"):
        one_hot(np.array([0.5]), 2)
