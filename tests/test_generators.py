"""Generators: bit-for-bit parity with scikit-learn, the lecture's call, and bad input."""

import subprocess
import sys

import numpy as np
import pytest
import sklearn.datasets as skd
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.data import generators as g


def assert_same(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)


PAIRS = [(g.make_moons, skd.make_moons), (g.make_circles, skd.make_circles)]


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=["moons", "circles"])
@pytest.mark.parametrize("n_samples", [2, 3, 7, 100, 101, (3, 5), (10, 1)])
@pytest.mark.parametrize("noise", [None, 0.0, 0.1, 0.25])
@pytest.mark.parametrize("shuffle", [True, False])
def test_two_class_generators_match_sklearn(ours, theirs, n_samples, noise, shuffle):
    for random_state in (0, 7, 12345):
        kw = dict(n_samples=n_samples, noise=noise, shuffle=shuffle, random_state=random_state)
        assert_same(ours(**kw), theirs(**kw))


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 400),
    noise=st.one_of(st.none(), st.floats(0.0, 2.0)),
    seed=st.integers(0, 2**32 - 1),
    shuffle=st.booleans(),
    factor=st.floats(0.0, 0.99),
)
def test_random_arguments_match_sklearn(n, noise, seed, shuffle, factor):
    kw = dict(n_samples=n, noise=noise, shuffle=shuffle, random_state=seed)
    assert_same(g.make_moons(**kw), skd.make_moons(**kw))
    assert_same(g.make_circles(factor=factor, **kw), skd.make_circles(factor=factor, **kw))


def test_seed_000_lecture_call_is_reproduced_bit_for_bit():
    x, y = g.make_moons(n_samples=500, noise=0.25, random_state=7)
    x_ref, y_ref = skd.make_moons(n_samples=500, noise=0.25, random_state=7)
    assert np.array_equal(x, x_ref)
    assert np.array_equal(y, y_ref)
    assert x.shape == (500, 2) and x.dtype == np.float64
    assert np.bincount(y).tolist() == [250, 250]


def test_random_state_none_and_instance_follow_sklearn():
    # None is NumPy's global RandomState, as in scikit-learn.
    np.random.seed(3)  # noqa: NPY002 - the legacy global state is what None means
    ours = g.make_moons(50, noise=0.1)
    np.random.seed(3)  # noqa: NPY002
    theirs = skd.make_moons(50, noise=0.1)
    assert_same(ours, theirs)
    # A RandomState instance is advanced: two calls in a row match too.
    r1, r2 = np.random.RandomState(9), np.random.RandomState(9)
    for _ in range(2):
        ours = g.make_circles(31, noise=0.2, random_state=r1)
        assert_same(ours, skd.make_circles(31, noise=0.2, random_state=r2))


BLOB_CASES = [
    dict(),
    dict(n_samples=101, n_features=3, centers=4, cluster_std=0.5),
    dict(n_samples=[3, 4, 5]),
    dict(n_samples=[3, 4], centers=[[0.0, 0.0], [1.0, 1.0]], cluster_std=[0.1, 2.0]),
    dict(n_samples=50, centers=np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])),
    dict(n_samples=7, centers=5, shuffle=False, center_box=(-1.0, 1.0)),
]


@pytest.mark.parametrize("kw", BLOB_CASES)
def test_make_blobs_matches_sklearn(kw):
    for random_state in (0, 42):
        assert_same(
            g.make_blobs(random_state=random_state, return_centers=True, **kw),
            skd.make_blobs(random_state=random_state, return_centers=True, **kw),
        )


def test_moons_geometry_without_noise():
    # Closed form, independent of scikit-learn: points on the two unit half circles.
    x, y = g.make_moons(9, shuffle=False)
    outer, inner = x[y == 0], x[y == 1]
    assert len(outer) == 4 and len(inner) == 5
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, rtol=1e-15)
    assert (outer[:, 1] >= 0).all() and (inner[:, 1] <= 0.5).all()


def test_spirals_and_xor():
    x, y = g.make_spirals(101, n_classes=3, random_state=0)
    assert x.shape == (101, 2) and x.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [34, 34, 33]
    # Without noise every point lies within the unit disc, arm k rotated by 2 pi k / 3 from arm 0.
    assert (np.hypot(x[:, 0], x[:, 1]) <= 1 + 1e-12).all()
    x0, y0 = g.make_spirals(30, n_classes=3, shuffle=False)
    arm0, arm1 = x0[y0 == 0], x0[y0 == 1]
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    np.testing.assert_allclose(arm0 @ np.array([[c, s], [-s, c]]), arm1, atol=1e-12)

    x, y = g.make_xor(200, random_state=1)
    assert set(np.unique(y)) == {0, 1}
    assert np.array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int64))
    noisy, y_noisy = g.make_xor(200, noise=0.3, random_state=1)
    assert np.array_equal(y_noisy, y)  # noise moves points, labels keep the clean rule
    assert not np.array_equal(noisy, x)


def test_same_seed_same_data_different_seed_different_data():
    for make in (g.make_spirals, g.make_xor, g.make_regression_1d, g.make_regression_2d):
        a, b, c = make(50, random_state=3), make(50, random_state=3), make(50, random_state=4)
        assert_same(a, b)
        assert not np.array_equal(a[0], c[0])


def test_regression_sets():
    x, y = g.make_regression_1d(200, noise=None, random_state=0)
    assert x.shape == (200, 1) and y.shape == (200,) and y.dtype == np.float64
    np.testing.assert_array_equal(y, np.sin(x[:, 0]))
    assert x.min() >= -np.pi and x.max() <= np.pi
    x, y = g.make_regression_1d(100, function="cubic", noise=None, x_range=(0.0, 2.0), random_state=0)
    np.testing.assert_allclose(y, x[:, 0] ** 3 - x[:, 0])
    assert x.min() >= 0.0
    _, y_noisy = g.make_regression_1d(2000, noise=0.5, random_state=0)
    x_clean, y_clean = g.make_regression_1d(2000, noise=None, random_state=0)
    assert abs(np.std(y_noisy - y_clean) - 0.5) < 0.05

    x, y = g.make_regression_2d(100, function="saddle", noise=None, random_state=0)
    np.testing.assert_allclose(y, x[:, 0] ** 2 - x[:, 1] ** 2)
    # Franke's function at (0, 0): the sum of its four published terms.
    x, y = g.make_regression_2d(2, noise=None, x_range=(0.0, 1e-300), random_state=0)
    expected = (
        0.75 * np.exp(-2.0) + 0.75 * np.exp(-1 / 49 - 0.1) + 0.5 * np.exp(-49 / 4 - 9 / 4) - 0.2 * np.exp(-65)
    )
    np.testing.assert_allclose(y, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: g.make_moons(1), r"n_samples=1 is out of range: valid range is \[2, inf\)"),
        (lambda: g.make_circles(0), r"n_samples=0 is out of range"),
        (lambda: g.make_moons(10, noise=-0.1), r"noise=-0.1 is out of range: valid range is \[0.0, inf\)"),
        (lambda: g.make_circles(10, factor=1.0), r"factor=1.0 is out of range: valid range is \[0.0, 1.0\)"),
        (lambda: g.make_moons((0, 5)), r"n_samples\[0\]=0 is out of range"),
        (lambda: g.make_blobs(1), r"n_samples=1 is out of range"),
        (lambda: g.make_blobs(10, cluster_std=-1.0), r"cluster_std=-1.0 is out of range"),
        (lambda: g.make_spirals(10, n_classes=1), r"n_classes=1 is out of range"),
        (lambda: g.make_spirals(3, n_classes=4), r"n_classes=4 is out of range"),
        (lambda: g.make_xor(10, noise=-1), r"noise=-1 is out of range"),
        (lambda: g.make_regression_1d(10, function="sin"), r"'sin' is not a valid choice \(did you mean 'sine'"),
        (lambda: g.make_regression_2d(1), r"n_samples=1 is out of range"),
        (lambda: g.make_moons(10, random_state=-1), r"random_state=-1 is out of range"),
    ],
)
def test_bad_input_names_argument_value_and_range(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="n_samples"):
        g.make_moons(10.5)
    with pytest.raises(TypeError, match="random_state"):
        g.make_moons(10, random_state=np.random.default_rng(0))


def test_package_does_not_import_sklearn():
    code = "import sys, jaxopt_lab.data, jaxopt_lab.data.datasets; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
