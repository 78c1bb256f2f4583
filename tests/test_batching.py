"""Batching inside jit(vmap(...)): per-run shuffles, every row once per epoch, exact masked means."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab.data.batching import epoch_batches, num_batches
from jaxopt_lab.losses import masked_mean

N, B, RUNS = 23, 5, 4


@jax.jit
def _sweep_batches(keys):
    return jax.vmap(lambda k: epoch_batches(k, N, B))(keys)


def test_num_batches_closed_forms():
    assert num_batches(1000, 20) == 50  # the hyperparameter lecture: 1000 samples, batch 20 -> 50 iterations
    assert num_batches(23, 5) == 5 and num_batches(23, 5, drop_last=True) == 4
    assert num_batches(23, 0) == 1 and num_batches(23, 1) == 23 and num_batches(23, 23) == 1


def test_vmapped_runs_shuffle_with_their_own_keys():
    keys = jax.random.split(jax.random.key(0), RUNS)
    idx, mask = _sweep_batches(keys)
    chex.assert_shape((idx, mask), (RUNS, 5, B))
    assert idx.dtype == jnp.int32 and mask.dtype == jnp.bool_
    idx, mask = np.asarray(idx), np.asarray(mask)
    expected_mask = (np.arange(5 * B) < N).reshape(5, B)
    orders = []
    for r in range(RUNS):
        assert np.array_equal(mask[r], expected_mask)
        real = idx[r][mask[r]]
        assert np.array_equal(np.sort(real), np.arange(N)), "each row exactly once per epoch"
        assert ((idx[r] >= 0) & (idx[r] < N)).all(), "padding points at valid rows"
        # The run's order is the permutation its own key gives, run by run outside vmap.
        assert np.array_equal(real, np.asarray(jax.random.permutation(keys[r], N)))
        orders.append(tuple(real))
    assert len(set(orders)) == RUNS, "every run shuffles differently"
    again, _ = _sweep_batches(keys)
    assert np.array_equal(np.asarray(again), idx), "same keys, same batches"


def test_masked_losses_are_exact_means_over_real_rows():
    values = jnp.asarray(np.random.RandomState(0).normal(size=N))
    idx, mask = epoch_batches(jax.random.key(1), N, B)
    per_batch = jax.vmap(lambda i, m: masked_mean(values[i], m))(idx, mask)
    for i in range(idx.shape[0]):
        real = np.asarray(idx[i])[np.asarray(mask[i])]
        np.testing.assert_allclose(per_batch[i], np.mean(np.asarray(values)[real]), rtol=1e-13)
    total = jnp.sum(jax.vmap(lambda i, m: jnp.sum(values[i] * m))(idx, mask))
    np.testing.assert_allclose(total / N, np.mean(np.asarray(values)), rtol=1e-13)


def test_full_batch_and_sgd():
    idx, mask = jax.jit(lambda k: epoch_batches(k, N, 0))(jax.random.key(3))
    assert idx.shape == (1, N) and np.array_equal(np.asarray(idx[0]), np.arange(N))
    assert bool(mask.all())
    idx0, _ = epoch_batches(None, N, 0)  # no key needed for full batch
    assert np.array_equal(np.asarray(idx0), np.asarray(idx))
    idx, mask = epoch_batches(jax.random.key(3), N, 1)
    assert idx.shape == (N, 1) and bool(mask.all())
    assert np.array_equal(np.sort(np.asarray(idx[:, 0])), np.arange(N))


def test_drop_last_and_no_shuffle():
    idx, mask = epoch_batches(jax.random.key(4), N, B, drop_last=True)
    assert idx.shape == (4, B) and bool(mask.all())
    flat = np.asarray(idx).ravel()
    assert len(np.unique(flat)) == 4 * B and flat.max() < N
    idx, mask = epoch_batches(None, N, B, shuffle=False)
    assert np.array_equal(np.asarray(idx)[np.asarray(mask)], np.arange(N))


def test_epochs_differ_when_the_epoch_is_folded_into_the_key():
    key = jax.random.key(5)
    e0, _ = epoch_batches(jax.random.fold_in(key, 0), N, B)
    e1, _ = epoch_batches(jax.random.fold_in(key, 1), N, B)
    assert not np.array_equal(np.asarray(e0), np.asarray(e1))


def test_without_x64_indices_stay_int32():
    with jax.enable_x64(False):
        idx, mask = epoch_batches(jax.random.PRNGKey(0), N, B)
        assert idx.dtype == jnp.int32
        assert masked_mean(jnp.ones(B, jnp.float32), mask[-1]).dtype == jnp.float32


@pytest.mark.parametrize(
    "batch_size, error, match",
    [
        (24, ValueError, r"batch_size=24 is out of range: valid range is \[0, 23\]"),
        (-1, ValueError, r"batch_size=-1 is out of range"),
        (2.0, TypeError, r"batch_size=2.0 must be a static Python int"),
    ],
)
def test_bad_batch_sizes(batch_size, error, match):
    with pytest.raises(error, match=match):
        num_batches(N, batch_size)
    with pytest.raises(error, match=match):
        epoch_batches(jax.random.key(0), N, batch_size)


def test_bad_n():
    with pytest.raises(ValueError, match=r"n=0 is out of range"):
        num_batches(0, 0)
