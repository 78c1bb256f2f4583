"""Toy data sets: scikit-learn-compatible classification generators and small regression sets.

`make_moons`, `make_circles` and `make_blobs` return, bit for bit, what
`sklearn.datasets` returns for the same arguments: they consume NumPy's legacy
`RandomState` stream in the same order (shuffle permutation first, then the
Gaussian noise), so the lecture's `make_moons(n_samples=500, noise=0.25,
random_state=7)` (the moons lecture) is reproduced exactly. scikit-learn is not imported:
it is only the reference the tests compare against.

`make_spirals`, `make_xor`, `make_regression_1d` and `make_regression_2d` have no
scikit-learn counterpart; they follow the same conventions (a `random_state`
seeding a legacy `RandomState`, `float64` features of shape `(n, d)`, `int64`
class labels or `float64` targets of shape `(n,)`).

All generators run in NumPy, outside `jit`: data are made once per run, before
the compiled training loop.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxopt_lab._checks import unknown_choice

__all__ = [
    "check_random_state",
    "make_moons",
    "make_circles",
    "make_blobs",
    "make_spirals",
    "make_xor",
    "make_regression_1d",
    "make_regression_2d",
    "REGRESSION_1D_FUNCTIONS",
    "REGRESSION_2D_FUNCTIONS",
]

RandomStateLike = int | np.random.RandomState | None

_MAX_SEED = 2**32 - 1


def _range_error(name: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"{name}={value!r} is out of range: valid range is {valid}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_random_state(random_state: RandomStateLike) -> np.random.RandomState:
    """The legacy `RandomState` a generator draws from, as scikit-learn resolves it.

    None is NumPy's global `RandomState` (the one `np.random.seed` seeds), an
    integer seeds a fresh `RandomState`, and a `RandomState` is used as is (and
    advanced). `np.random.Generator` is refused: its streams differ from the
    legacy ones, so it could not reproduce scikit-learn's data.
    """
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if _is_int(random_state):
        if not 0 <= int(random_state) <= _MAX_SEED:
            raise _range_error("random_state", random_state, f"[0, {_MAX_SEED}]")
        return np.random.RandomState(int(random_state))
    raise TypeError(
        f"random_state={random_state!r} is not valid: use None, an int in [0, {_MAX_SEED}] "
        "or a numpy.random.RandomState"
    )


def _check_n_samples(n_samples: Any, *, name: str = "n_samples", low: int = 2) -> int:
    if not _is_int(n_samples):
        raise TypeError(f"{name}={n_samples!r} must be an int")
    if n_samples < low:
        raise _range_error(name, n_samples, f"[{low}, inf)")
    return int(n_samples)


def _check_noise(noise: Any, *, name: str = "noise") -> float | None:
    if noise is None:
        return None
    value = float(noise)
    if not value >= 0.0 or not np.isfinite(value):
        raise _range_error(name, noise, "[0.0, inf)")
    return value


def _two_class_sizes(n_samples: Any) -> tuple[int, int]:
    """(n_first, n_second) from an int (first class gets the floor half) or a pair."""
    if _is_int(n_samples):
        n = _check_n_samples(n_samples)
        return n // 2, n - n // 2
    if isinstance(n_samples, Sequence | np.ndarray) and len(n_samples) == 2:
        n_first, n_second = n_samples
        _check_n_samples(n_first, name="n_samples[0]", low=1)
        _check_n_samples(n_second, name="n_samples[1]", low=1)
        return int(n_first), int(n_second)
    raise TypeError(f"n_samples={n_samples!r} must be an int or a pair of ints (one per class)")


def _shuffle_rows(
    generator: np.random.RandomState, *arrays: np.ndarray
) -> tuple[np.ndarray, ...]:
    # The same draws as sklearn.utils.shuffle: an in-place shuffle of arange(n).
    order = np.arange(arrays[0].shape[0])
    generator.shuffle(order)
    return tuple(a[order] for a in arrays)


def _finish(
    x: np.ndarray,
    y: np.ndarray,
    generator: np.random.RandomState,
    shuffle: bool,
    noise: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    # Order matters for bit-for-bit reproduction: permutation first, then noise.
    if shuffle:
        x, y = _shuffle_rows(generator, x, y)
    if noise is not None:
        x = x + generator.normal(scale=noise, size=x.shape)
    return x, y


def make_moons(
    n_samples: int | tuple[int, int] = 100,
    *,
    shuffle: bool = True,
    noise: float | None = None,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, identical to `sklearn.datasets.make_moons`.

    Class 0 lies on the upper unit half circle, `(cos t, sin t)` for `t` evenly
    spaced in `[0, pi]`; class 1 on the lower one shifted right and down,
    `(1 - cos t, 1 - sin t - 0.5)`. With an int `n_samples` class 0 gets
    `n_samples // 2` points. Rows are shuffled, then `N(0, noise^2)` is added to
    every coordinate.

    Args:
      n_samples: total number of points (>= 2), or `(n_class0, n_class1)`.
      shuffle: shuffle the rows (otherwise class 0 comes first).
      noise: standard deviation of the Gaussian noise (>= 0), or None for none.
      random_state: None, a seed in `[0, 2**32 - 1]` or a `numpy.random.RandomState`.

    Returns:
      `(x, y)`: `float64` of shape `(n, 2)` and `int64` labels of shape `(n,)`.
    """
    n_out, n_in = _two_class_sizes(n_samples)
    noise = _check_noise(noise)
    generator = check_random_state(random_state)

    outer_x = np.cos(np.linspace(0, np.pi, n_out))
    outer_y = np.sin(np.linspace(0, np.pi, n_out))
    inner_x = 1 - np.cos(np.linspace(0, np.pi, n_in))
    inner_y = 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5

    x = np.stack([np.concatenate([outer_x, inner_x]), np.concatenate([outer_y, inner_y])], axis=1)
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    return _finish(x, y, generator, shuffle, noise)


def make_circles(
    n_samples: int | tuple[int, int] = 100,
    *,
    shuffle: bool = True,
    noise: float | None = None,
    random_state: RandomStateLike = None,
    factor: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """A circle inside a larger one, identical to `sklearn.datasets.make_circles`.

    Class 0 lies on the unit circle and class 1 on the circle of radius `factor`,
    each at angles evenly spaced in `[0, 2 pi)` (the endpoint is left out so no
    point repeats). With an int `n_samples` the outer circle gets
    `n_samples // 2` points. Rows are shuffled, then `N(0, noise^2)` is added.

    Args:
      n_samples: total number of points (>= 2), or `(n_outer, n_inner)`.
      shuffle: shuffle the rows (otherwise class 0 comes first).
      noise: standard deviation of the Gaussian noise (>= 0), or None for none.
      random_state: None, a seed in `[0, 2**32 - 1]` or a `numpy.random.RandomState`.
      factor: radius of the inner circle, in `[0, 1)`.

    Returns:
      `(x, y)`: `float64` of shape `(n, 2)` and `int64` labels of shape `(n,)`.
    """
    n_out, n_in = _two_class_sizes(n_samples)
    noise = _check_noise(noise)
    if not 0.0 <= float(factor) < 1.0:
        raise _range_error("factor", factor, "[0.0, 1.0)")
    generator = check_random_state(random_state)

    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.stack(
        [
            np.concatenate([np.cos(t_out), np.cos(t_in) * factor]),
            np.concatenate([np.sin(t_out), np.sin(t_in) * factor]),
        ],
        axis=1,
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    return _finish(x, y, generator, shuffle, noise)


def make_blobs(
    n_samples: int | Sequence[int] = 100,
    n_features: int = 2,
    *,
    centers: int | np.ndarray | Sequence[Sequence[float]] | None = None,
    cluster_std: float | Sequence[float] = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    shuffle: bool = True,
    random_state: RandomStateLike = None,
    return_centers: bool = False,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters, identical to `sklearn.datasets.make_blobs`.

    Cluster `i` draws `n_i` points from `N(centers[i], cluster_std[i]^2 I)`.
    Centers, when not given, are drawn uniformly from `center_box` (3 of them by
    default, or one per entry when `n_samples` is a list of per-cluster counts).
    With an int `n_samples` the counts are `n_samples // k`, the first
    `n_samples % k` clusters getting one more. The draws happen in
    scikit-learn's order: centers, then each cluster's points, then the shuffle.

    Args:
      n_samples: total number of points (>= 2), or one count per cluster.
      n_features: dimension of the points when the centers are drawn.
      centers: number of clusters, or their coordinates `(k, n_features)`.
      cluster_std: standard deviation (>= 0), one for all or one per cluster.
      center_box: `(low, high)` bounds of randomly drawn centers.
      shuffle: shuffle the rows (otherwise ordered by cluster).
      random_state: None, a seed in `[0, 2**32 - 1]` or a `numpy.random.RandomState`.
      return_centers: also return the centers.

    Returns:
      `(x, y)` or `(x, y, centers)`: `float64` `(n, d)`, `int64` `(n,)`, `float64` `(k, d)`.
    """
    # Over 80 lines only with its docstring (22 lines); the code itself is 69.
    generator = check_random_state(random_state)
    per_cluster_counts = not _is_int(n_samples)
    if per_cluster_counts:
        counts = [
            _check_n_samples(c, name=f"n_samples[{i}]", low=1) for i, c in enumerate(n_samples)
        ]
        if sum(counts) < 2:
            raise _range_error("sum(n_samples)", sum(counts), "[2, inf)")
    else:
        _check_n_samples(n_samples)
    _check_n_samples(n_features, name="n_features", low=1)

    if per_cluster_counts and centers is None:
        centers = len(counts)
    if centers is None:
        centers = 3
    if _is_int(centers):
        _check_n_samples(centers, name="centers", low=1)
        centers = generator.uniform(center_box[0], center_box[1], size=(int(centers), n_features))
    else:
        centers = np.asarray(centers, dtype=np.float64)
        if centers.ndim != 2 or centers.shape[0] < 1:
            raise ValueError(f"centers must be an int or an array of shape (k, n_features), got {centers!r}")
    n_centers = centers.shape[0]

    if per_cluster_counts:
        if len(counts) != n_centers:
            raise ValueError(
                f"n_samples has {len(counts)} counts but there are {n_centers} centers: give one per center"
            )
    else:
        counts = [int(n_samples) // n_centers] * n_centers
        for i in range(int(n_samples) % n_centers):
            counts[i] += 1

    if np.ndim(cluster_std) == 0:
        stds = [float(cluster_std)] * n_centers
    else:
        stds = [float(s) for s in cluster_std]
        if len(stds) != n_centers:
            raise ValueError(
                f"cluster_std has {len(stds)} entries but there are {n_centers} centers: give one per center"
            )
    for i, s in enumerate(stds):
        if not s >= 0.0:
            name = f"cluster_std[{i}]" if np.ndim(cluster_std) else "cluster_std"
            raise _range_error(name, s, "[0.0, inf)")

    d = centers.shape[1]
    x = np.concatenate(
        [generator.normal(loc=c, scale=s, size=(k, d)) for c, s, k in zip(centers, stds, counts, strict=True)]
    )
    y = np.concatenate([np.full(k, i, dtype=np.int64) for i, k in enumerate(counts)])
    if shuffle:
        x, y = _shuffle_rows(generator, x, y)
    if return_centers:
        return x, y, centers
    return x, y


def make_spirals(
    n_samples: int = 100,
    *,
    n_classes: int = 2,
    turns: float = 1.0,
    shuffle: bool = True,
    noise: float | None = None,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (a classic non-linearly separable set).

    Arm `c` of `K = n_classes` holds points at radius `r` evenly spaced in
    `(0, 1]` and angle `2 pi (c / K + turns * r)`: `x = r (cos a, sin a)`. Counts
    follow `make_blobs`: `n_samples // K` per arm, the first `n_samples % K` arms
    one more. Rows are shuffled, then `N(0, noise^2)` is added.

    Returns:
      `(x, y)`: `float64` of shape `(n, 2)` and `int64` labels in `0..K-1`.
    """
    n = _check_n_samples(n_samples)
    _check_n_samples(n_classes, name="n_classes", low=2)
    if n_classes > n:
        raise _range_error("n_classes", n_classes, f"[2, n_samples={n}]")
    if not float(turns) > 0.0:
        raise _range_error("turns", turns, "(0.0, inf)")
    noise = _check_noise(noise)
    generator = check_random_state(random_state)

    counts = [n // n_classes + (1 if c < n % n_classes else 0) for c in range(n_classes)]
    xs, ys = [], []
    for c, k in enumerate(counts):
        r = np.linspace(0.0, 1.0, k + 1)[1:]
        angle = 2 * np.pi * (c / n_classes + turns * r)
        xs.append(np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1))
        ys.append(np.full(k, c, dtype=np.int64))
    return _finish(np.concatenate(xs), np.concatenate(ys), generator, shuffle, noise)


def make_xor(
    n_samples: int = 100,
    *,
    shuffle: bool = True,
    noise: float | None = None,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: label 1 where the two coordinates have opposite signs.

    Points are drawn uniformly from `[-1, 1]^2`, labelled `y = [x0 * x1 < 0]`,
    and only then moved by `N(0, noise^2)` noise, so noise blurs the boundary
    (the labels keep the clean rule). The uniform draw is already in random
    order; `shuffle` is accepted for a uniform interface and consumes no draws.

    Returns:
      `(x, y)`: `float64` of shape `(n, 2)` and `int64` labels in `{0, 1}`.
    """
    n = _check_n_samples(n_samples)
    noise = _check_noise(noise)
    generator = check_random_state(random_state)
    del shuffle
    x = generator.uniform(-1.0, 1.0, size=(n, 2))
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    if noise is not None:
        x = x + generator.normal(scale=noise, size=x.shape)
    return x, y


def _franke(x: np.ndarray) -> np.ndarray:
    # Franke (1979), "A critical comparison of some methods for interpolation of scattered data".
    a, b = 9 * x[:, 0], 9 * x[:, 1]
    return (
        0.75 * np.exp(-((a - 2) ** 2) / 4 - ((b - 2) ** 2) / 4)
        + 0.75 * np.exp(-((a + 1) ** 2) / 49 - (b + 1) / 10)
        + 0.5 * np.exp(-((a - 7) ** 2) / 4 - ((b - 3) ** 2) / 4)
        - 0.2 * np.exp(-((a - 4) ** 2) - (b - 7) ** 2)
    )


REGRESSION_1D_FUNCTIONS = {
    "sine": (lambda t: np.sin(t), (-np.pi, np.pi)),
    "cubic": (lambda t: t**3 - t, (-1.5, 1.5)),
    "abs": (lambda t: np.abs(t), (-1.0, 1.0)),
    "step": (lambda t: (t > 0).astype(np.float64), (-1.0, 1.0)),
}
"""name -> (f, default x range) of `make_regression_1d`."""

REGRESSION_2D_FUNCTIONS = {
    "franke": (_franke, (0.0, 1.0)),
    "saddle": (lambda x: x[:, 0] ** 2 - x[:, 1] ** 2, (-1.0, 1.0)),
    "ripple": (lambda x: np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1]), (-1.0, 1.0)),
}
"""name -> (f, default box for both coordinates) of `make_regression_2d`."""


def _check_function(name: str, function: str, table: dict) -> None:
    if function not in table:
        raise unknown_choice(name, function, table)


def _check_range_pair(name: str, bounds: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(b) for b in bounds)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"{name}={bounds!r} is not valid: need finite low < high")
    return low, high


def _noisy_samples(n_samples: int, function: str, table: dict, noise: float | None,
                   x_range: tuple[float, float] | None, random_state: RandomStateLike,
                   dim: int) -> tuple[np.ndarray, np.ndarray]:
    """`y = f(x) + N(0, noise^2)` at `x ~ U(x_range)^dim` for `f = table[function]`: the x draw first."""
    n = _check_n_samples(n_samples)
    _check_function("function", function, table)
    noise = _check_noise(noise)
    f, default_range = table[function]
    low, high = _check_range_pair("x_range", default_range if x_range is None else x_range)
    generator = check_random_state(random_state)
    x = generator.uniform(low, high, size=(n, dim))
    y = f(x[:, 0] if dim == 1 else x)
    if noise is not None:
        y = y + generator.normal(scale=noise, size=n)
    return x, y.astype(np.float64)


def make_regression_1d(
    n_samples: int = 100,
    *,
    function: str = "sine",
    noise: float | None = 0.1,
    x_range: tuple[float, float] | None = None,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy samples of a 1-D function: `y = f(x) + N(0, noise^2)`, `x ~ U(x_range)`.

    `function` is one of `REGRESSION_1D_FUNCTIONS`: "sine" (`sin x` on
    `[-pi, pi]`, the default), "cubic" (`x^3 - x`), "abs" (`|x|`), "step"
    (`[x > 0]`). The x draw comes first, then the noise.

    Returns:
      `(x, y)`: `float64` of shape `(n, 1)` and `float64` targets of shape `(n,)`.
    """
    return _noisy_samples(n_samples, function, REGRESSION_1D_FUNCTIONS, noise, x_range, random_state, 1)


def make_regression_2d(
    n_samples: int = 200,
    *,
    function: str = "franke",
    noise: float | None = 0.05,
    x_range: tuple[float, float] | None = None,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy samples of a surface: `y = f(x1, x2) + N(0, noise^2)`, `x ~ U(x_range)^2`.

    `function` is one of `REGRESSION_2D_FUNCTIONS`: "franke" (Franke's 1979
    test surface on `[0, 1]^2`, the default), "saddle" (`x1^2 - x2^2`),
    "ripple" (`sin(pi x1) cos(pi x2)`).

    Returns:
      `(x, y)`: `float64` of shape `(n, 2)` and `float64` targets of shape `(n,)`.
    """
    return _noisy_samples(n_samples, function, REGRESSION_2D_FUNCTIONS, noise, x_range, random_state, 2)
