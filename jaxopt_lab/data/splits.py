"""Data splits as index arrays, all deterministic from a seed (the optimizers-and-overfitting lecture's list).

- random: `train_val_test_split(n, ...)`, a shuffled split into train/validation/test;
- stratified: the same with `stratify=labels`, each part keeping the class proportions;
- time-based: `shuffle=False`, the rows kept in order (train first, then
  validation, then test), so no example from "the future" is trained on;
- k-fold: `kfold(n, k)`, `k` near-equal parts, each the validation part once;
- stratified k-fold: `stratified_kfold(y, k)`, the same keeping class proportions;
- leave-one-out: `leave_one_out(n)`, k-fold with `k = n`.

Every function returns NumPy `int64` index arrays, sorted increasingly, whose
parts are disjoint and together cover `0..n-1`. Randomness comes from NumPy's
legacy `RandomState(seed)`, whose streams NumPy keeps fixed across releases,
so a split is the same on every machine and version.

Sizes: a fraction `f` of `n` rows is `round(f * n)` rows (halves rounded up),
and at least one when `f > 0`; what is left is the training part, which must
keep at least one row. k-fold parts have `n // k` or `n // k + 1` rows, the
larger ones first (as in scikit-learn's `KFold`).

Stratification works by spreading each class evenly over a line: the `j`-th of
a class's `n_c` (shuffled) members sits at `(j + 1/2) / n_c`, ties broken at
random, and parts are contiguous stretches of that line. Any stretch holding
`m` rows then holds `m * n_c / n` members of each class up to rounding (within
one or two), while the part sizes are exactly those of the unstratified split.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "split_sizes",
    "train_val_test_split",
    "kfold",
    "stratified_kfold",
    "leave_one_out",
]

_MAX_SEED = 2**32 - 1


def _check_n(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name}={n!r} must be an int")
    if n < 2:
        raise ValueError(f"{name}={n!r} is out of range: valid range is [2, inf)")
    return int(n)


def _check_fraction(name: str, value: Any) -> float:
    f = float(value)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"{name}={value!r} is out of range: valid range is [0.0, 1.0)")
    return f


def _rng(seed: Any) -> np.random.RandomState:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed={seed!r} must be an int")
    if not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed={seed!r} is out of range: valid range is [0, {_MAX_SEED}]")
    return np.random.RandomState(int(seed))


def _count(fraction: float, n: int) -> int:
    if fraction == 0.0:
        return 0
    return max(1, int(np.floor(fraction * n + 0.5)))


def split_sizes(n: int, *, val_fraction: float = 0.2, test_fraction: float = 0.0) -> tuple[int, int, int]:
    """`(n_train, n_val, n_test)` of `train_val_test_split` (see the module docstring).

    Raises:
      ValueError: a fraction outside `[0, 1)`, `val_fraction + test_fraction >= 1`,
        or no row left for training.
    """
    n = _check_n(n)
    val = _check_fraction("val_fraction", val_fraction)
    test = _check_fraction("test_fraction", test_fraction)
    if val + test >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction={val + test!r} is out of range: valid range is [0.0, 1.0) "
            f"(val_fraction={val_fraction!r}, test_fraction={test_fraction!r})"
        )
    n_val, n_test = _count(val, n), _count(test, n)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(
            f"n={n} is too small for val_fraction={val_fraction!r} and test_fraction={test_fraction!r}: "
            f"{n_val} validation and {n_test} test rows leave no training row"
        )
    return n_train, n_val, n_test


def _labels(y: Any, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
    return y


def _stratified_order(y: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """All rows ordered so that every class is spread evenly along the order."""
    n = y.shape[0]
    _, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1)
    position = np.empty(n, dtype=np.float64)
    for c in range(int(codes.max()) + 1):
        members = np.flatnonzero(codes == c)
        members = members[rng.permutation(members.shape[0])]
        position[members] = (np.arange(members.shape[0]) + 0.5) / members.shape[0]
    tie_break = rng.permutation(n)
    return np.lexsort((tie_break, position))


def train_val_test_split(
    n: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    stratify: Any = None,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split `0..n-1` into train, validation and test index arrays.

    Args:
      n: number of rows (>= 2).
      val_fraction: share of rows for validation, in `[0, 1)`; 0 gives an empty part.
      test_fraction: share of rows for testing, in `[0, 1)`; with `val_fraction`, below 1.
      seed: seed of the shuffle, in `[0, 2**32 - 1]`.
      stratify: labels of shape `(n,)`; each part then keeps the class proportions.
      shuffle: False gives the time-based split: rows in order, train first,
        then validation, then test. Cannot be combined with `stratify`.

    Returns:
      `(train_idx, val_idx, test_idx)`: sorted `int64` arrays, disjoint, covering `0..n-1`.
    """
    n = _check_n(n)
    n_train, n_val, n_test = split_sizes(n, val_fraction=val_fraction, test_fraction=test_fraction)
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify cannot be combined with shuffle=False (time-based split, order kept)")
        order = np.arange(n)
        parts = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
        return tuple(p.astype(np.int64) for p in parts)

    rng = _rng(seed)
    if stratify is None:
        order = rng.permutation(n)
    else:
        y = _labels(stratify, "stratify")
        if y.shape[0] != n:
            raise ValueError(f"stratify has {y.shape[0]} labels but n={n}: give one label per row")
        order = _stratified_order(y, rng)
    # Validation and test take the head of the order so their class mix is the best balanced.
    val_idx = order[:n_val]
    test_idx = order[n_val : n_val + n_test]
    train_idx = order[n_val + n_test :]
    return tuple(np.sort(p).astype(np.int64) for p in (train_idx, val_idx, test_idx))


def _folds_from_order(order: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = order.shape[0]
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    folds = []
    for i in range(k):
        in_fold = np.zeros(n, dtype=bool)
        in_fold[order[bounds[i] : bounds[i + 1]]] = True
        folds.append((np.flatnonzero(~in_fold).astype(np.int64), np.flatnonzero(in_fold).astype(np.int64)))
    return folds


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k={k!r} must be an int")
    if not 2 <= k <= n:
        raise ValueError(f"k={k!r} is out of range: valid range is [2, n={n}]")
    return int(k)


def kfold(n: int, k: int, *, seed: int = 0, shuffle: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation: `k` near-equal validation parts, each used once.

    Args:
      n: number of rows (>= 2).
      k: number of folds, in `[2, n]`.
      seed: seed of the shuffle.
      shuffle: False makes each validation part a contiguous block of rows.

    Returns:
      `k` pairs `(train_idx, val_idx)` of sorted `int64` arrays; the validation
      parts are disjoint and cover `0..n-1`.
    """
    n = _check_n(n)
    k = _check_k(k, n)
    order = _rng(seed).permutation(n) if shuffle else np.arange(n)
    return _folds_from_order(order, k)


def stratified_kfold(y: Any, k: int, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation whose validation parts keep the class proportions of `y`.

    Args:
      y: labels of shape `(n,)`.
      k: number of folds, in `[2, n]`. A class with fewer than `k` members
        cannot appear in every validation part; it is spread as evenly as it can.
      seed: seed of the shuffle.

    Returns:
      `k` pairs `(train_idx, val_idx)`, as `kfold`.
    """
    y = _labels(y, "y")
    n = _check_n(y.shape[0], "len(y)")
    k = _check_k(k, n)
    return _folds_from_order(_stratified_order(y, _rng(seed)), k)


def leave_one_out(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-one-out: `n` pairs `(train_idx, val_idx)`, the `i`-th validating on row `i` alone."""
    n = _check_n(n)
    rows = np.arange(n, dtype=np.int64)
    return [(np.delete(rows, i), rows[i : i + 1]) for i in range(n)]
