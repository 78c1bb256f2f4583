"""The digits loader: shape, content against scikit-learn's own copy, and the missing-package error."""

import sys

import numpy as np
import pytest

from jaxopt_lab.data.digits import load_digits


def test_digits_shape_classes_and_values():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert sorted(np.unique(y).tolist()) == list(range(10))
    assert x.min() == 0.0 and x.max() == 16.0
    assert np.array_equal(x, np.round(x))  # integer intensities
    counts = np.bincount(y)
    assert counts.min() >= 170 and counts.sum() == 1797


def test_digits_equal_sklearn_images():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x, y = load_digits(as_images=True)
    assert x.shape == (1797, 8, 8)
    assert np.array_equal(x, bunch.images)
    assert np.array_equal(y, bunch.target)


def test_n_class_keeps_the_first_classes():
    x, y = load_digits(n_class=3)
    assert set(np.unique(y).tolist()) == {0, 1, 2}
    x_all, y_all = load_digits()
    assert np.array_equal(x, x_all[y_all < 3])


@pytest.mark.parametrize("n_class", [1, 11, 0])
def test_bad_n_class(n_class):
    with pytest.raises(ValueError, match=rf"n_class={n_class} is out of range: valid range is \[2, 10\]"):
        load_digits(n_class=n_class)


def test_missing_sklearn_says_how_to_install(monkeypatch):
    # A None entry in sys.modules makes `import sklearn...` raise ImportError.
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"pip install scikit-learn"):
        load_digits()
