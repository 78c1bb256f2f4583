"""Mini-batches inside `jit`: a per-epoch permutation from a key, cut into fixed-size batches.

An epoch over `n` training rows with batch size `b` is `num_batches(n, b)`
batches of exactly `b` row indices each (fixed shapes, so a `lax.scan` over
the batches compiles once). The hyperparameter lecture: batch size = examples per step; an
epoch = every training example used once (1000 rows, batch 20: 50 steps).

- `batch_size == 0`: full batch, one batch of all `n` rows in their original
  order (no shuffle), every row real.
- `batch_size == 1`: plain SGD, `n` batches of one row.
- `n % b != 0`, `drop_last=False` (the default): the last batch is padded up
  to `b` with rows that repeat the epoch's first ones (valid indices, so
  gathering them is safe) and whose mask is False. A loss averaged with
  `jaxopt_lab.losses.masked_mean(per_example_loss, mask)` (which selects the real
  rows rather than multiplying by the mask, so a padded row's inf or nan cannot
  leak in) is then the exact mean over the real rows of the batch, and every row
  is used exactly once per epoch.
- `drop_last=True`: the `n % b` rows at the end of the permutation are left
  out of that epoch (a different random set each epoch); the mask is all True.

`n` and `batch_size` are static Python ints (they fix shapes); the key may be
traced, so `jax.vmap(lambda k: epoch_batches(k, n, b))(keys)` gives every run
of a sweep its own shuffle. Fold the epoch number into the key
(`jax.random.fold_in(key, epoch)`) for a fresh permutation each epoch.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["num_batches", "epoch_batches"]


def _check_sizes(n: Any, batch_size: Any) -> tuple[int, int]:
    for name, value in (("n", n), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}={value!r} must be a static Python int (it fixes array shapes)")
    if n < 1:
        raise ValueError(f"n={n!r} is out of range: valid range is [1, inf)")
    if not 0 <= batch_size <= n:
        raise ValueError(
            f"batch_size={batch_size!r} is out of range: valid range is [0, {n}] "
            f"(the training split has n={n} rows; 0 means full batch)"
        )
    return int(n), int(batch_size)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches per epoch: 1 for full batch (`batch_size == 0`), else `ceil(n / b)` (`n // b` if drop_last)."""
    n, b = _check_sizes(n, batch_size)
    if b == 0:
        return 1
    return n // b if drop_last else -(-n // b)


def epoch_batches(
    key: Any,
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Row indices and validity mask of one epoch's mini-batches.

    Args:
      key: PRNG key of this epoch (may be traced / vmapped); unused (may be
        None) for full batch or `shuffle=False`.
      n: number of training rows (static).
      batch_size: rows per batch (static), `0..n`; 0 means full batch.
      shuffle: permute the rows (with `key`); False keeps their order.
      drop_last: leave the partial last batch out instead of padding and masking it.

    Returns:
      `(idx, mask)`: `int32` and `bool` arrays of shape `(num_batches, b)`
      (`b = n` for full batch). `x[idx[i]]` is batch `i`; `mask[i, j]` says
      whether slot `j` holds a real row (False only for padding).
    """
    n, b = _check_sizes(n, batch_size)
    if b == 0:
        return jnp.arange(n, dtype=jnp.int32)[None, :], jnp.ones((1, n), dtype=bool)
    order = jax.random.permutation(key, n).astype(jnp.int32) if shuffle else jnp.arange(n, dtype=jnp.int32)
    count = num_batches(n, b, drop_last)
    slots = count * b
    if drop_last:
        return order[:slots].reshape(count, b), jnp.ones((count, b), dtype=bool)
    padded = jnp.concatenate([order, order[: slots - n]])
    mask = jnp.arange(slots) < n
    return padded.reshape(count, b), mask.reshape(count, b)
