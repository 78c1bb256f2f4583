"""Splits: disjoint, covering, sized as documented, stratified, deterministic; k-fold and leave-one-out."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, LeaveOneOut

from jaxopt_lab.data.splits import (
    kfold,
    leave_one_out,
    split_sizes,
    stratified_kfold,
    train_val_test_split,
)


def assert_partition(parts, n):
    for p in parts:
        assert p.dtype == np.int64
        assert np.array_equal(p, np.sort(p))
    joined = np.concatenate(parts)
    assert len(joined) == n, "parts overlap or miss rows"
    assert np.array_equal(np.sort(joined), np.arange(n)), "parts do not cover 0..n-1 exactly once"


def test_sizes():
    assert split_sizes(500, val_fraction=0.2) == (400, 100, 0)
    assert split_sizes(500, val_fraction=0.2, test_fraction=0.1) == (350, 100, 50)
    assert split_sizes(10, val_fraction=0.7) == (3, 7, 0)  # 0.7 * 10 is 7.000000000000001 in floats
    assert split_sizes(10, val_fraction=0.25) == (7, 3, 0)  # 2.5 rounds up
    assert split_sizes(10, val_fraction=0.01) == (9, 1, 0)  # a non-zero fraction gets a row
    assert split_sizes(10, val_fraction=0.0) == (10, 0, 0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 300),
    val=st.floats(0.0, 0.6),
    test=st.floats(0.0, 0.35),
    seed=st.integers(0, 2**32 - 1),
    classes=st.integers(0, 5),
)
def test_train_val_test_partition(n, val, test, seed, classes):
    stratify = None if classes == 0 else np.random.RandomState(seed).randint(0, classes + 1, size=n)
    try:
        sizes = split_sizes(n, val_fraction=val, test_fraction=test)
    except ValueError:
        return  # too small a data set for these fractions: tested below
    parts = train_val_test_split(n, val_fraction=val, test_fraction=test, seed=seed, stratify=stratify)
    assert_partition(parts, n)
    assert tuple(len(p) for p in parts) == sizes
    again = train_val_test_split(n, val_fraction=val, test_fraction=test, seed=seed, stratify=stratify)
    for a, b in zip(parts, again, strict=True):
        assert np.array_equal(a, b)
    if stratify is not None:
        # Each part holds its share of every class, up to the documented rounding.
        for part in parts:
            for c in np.unique(stratify):
                expected = len(part) * np.mean(stratify == c)
                assert abs(np.sum(stratify[part] == c) - expected) < 2


def test_seed_changes_the_split_and_shuffles():
    a = train_val_test_split(100, seed=0)
    b = train_val_test_split(100, seed=1)
    assert not np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], np.arange(80, 100))


def test_time_based_split_keeps_order():
    train, val, test = train_val_test_split(10, val_fraction=0.2, test_fraction=0.3, shuffle=False, seed=5)
    assert train.tolist() == [0, 1, 2, 3, 4]
    assert val.tolist() == [5, 6]
    assert test.tolist() == [7, 8, 9]


def test_stratified_exact_proportions():
    y = np.array([0] * 300 + [1] * 150 + [2] * 50)
    train, val, test = train_val_test_split(500, val_fraction=0.2, test_fraction=0.1, stratify=y, seed=3)
    assert np.bincount(y[val]).tolist() == [60, 30, 10]
    assert np.bincount(y[test]).tolist() == [30, 15, 5]
    assert np.bincount(y[train]).tolist() == [210, 105, 35]
    # Not stratified, a rare class is typically off by several rows.
    _, val_random, _ = train_val_test_split(500, val_fraction=0.2, stratify=None, seed=3)
    assert np.bincount(y[val_random], minlength=3).tolist() != [60, 30, 10]


def test_kfold_unshuffled_equals_sklearn():
    for n, k in [(10, 3), (11, 5), (7, 7), (100, 4)]:
        ours = kfold(n, k, shuffle=False)
        theirs = list(KFold(n_splits=k).split(np.zeros(n)))
        assert len(ours) == k
        for (tr, va), (tr_ref, va_ref) in zip(ours, theirs, strict=True):
            assert np.array_equal(tr, tr_ref) and np.array_equal(va, va_ref)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(2, 12), seed=st.integers(0, 1000))
def test_kfold_partitions(n, k, seed):
    k = min(k, n)
    folds = kfold(n, k, seed=seed)
    assert_partition([va for _, va in folds], n)
    for tr, va in folds:
        assert_partition([tr, va], n)
        assert len(va) in (n // k, n // k + 1)
    assert [len(va) for _, va in folds] == sorted((len(va) for _, va in folds), reverse=True)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold(n, k, seed=seed), strict=True))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(10, 300), k=st.integers(2, 8), classes=st.integers(2, 5), seed=st.integers(0, 1000))
def test_stratified_kfold(n, k, classes, seed):
    y = np.random.RandomState(seed).randint(0, classes, size=n)
    folds = stratified_kfold(y, k, seed=seed)
    assert_partition([va for _, va in folds], n)
    for tr, va in folds:
        assert_partition([tr, va], n)
        assert len(va) in (n // k, n // k + 1)
        for c in np.unique(y):
            assert abs(np.sum(y[va] == c) - len(va) * np.mean(y == c)) < 2


def test_leave_one_out_equals_sklearn():
    ours = leave_one_out(6)
    theirs = list(LeaveOneOut().split(np.zeros(6)))
    assert len(ours) == 6
    for (tr, va), (tr_ref, va_ref) in zip(ours, theirs, strict=True):
        assert np.array_equal(tr, tr_ref) and np.array_equal(va, va_ref)


tvt = train_val_test_split


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tvt(10, val_fraction=1.0), r"val_fraction=1.0 is out of range: valid range is \[0.0, 1.0\)"),
        (lambda: tvt(10, val_fraction=-0.1), r"val_fraction=-0.1 is out of range"),
        (lambda: tvt(10, test_fraction=1.5), r"test_fraction=1.5 is out of range"),
        (lambda: tvt(10, val_fraction=0.6, test_fraction=0.4), r"val_fraction \+ test_fraction="),
        (lambda: tvt(2, val_fraction=0.5, test_fraction=0.3), r"n=2 is too small"),
        (lambda: tvt(1), r"n=1 is out of range: valid range is \[2, inf\)"),
        (lambda: tvt(5, stratify=[0, 1]), r"stratify has 2 labels but n=5"),
        (lambda: tvt(4, stratify=[0, 1, 0, 1], shuffle=False), r"stratify cannot be combined"),
        (lambda: kfold(5, 6), r"k=6 is out of range: valid range is \[2, n=5\]"),
        (lambda: kfold(5, 1), r"k=1 is out of range"),
        (lambda: stratified_kfold([0, 1, 0], 4), r"k=4 is out of range: valid range is \[2, n=3\]"),
        (lambda: leave_one_out(1), r"n=1 is out of range"),
        (lambda: kfold(5, 2, seed=-1), r"seed=-1 is out of range"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
