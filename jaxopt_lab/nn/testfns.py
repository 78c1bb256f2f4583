"""Test functions for optimizer trajectories, with their known minima.

Each is a `TestFunction`: a scalar function `f(x)` of a point `x` of shape
`(dim,)` (shape `()` works too for the 1-D quartic), its minima, a plotting
domain and interesting starting points. The functions follow `x`'s dtype.

- `quartic` (the initialization-and-quartic lecture): ``f(x) = 319/8400 x^4 + 43/4200 x^3 - 6799/8400 x^2
  - 299/840 x + 6``, global minimum near 3.27, local one near -3.25 and a local
  maximum near -0.22 between them; gradient descent from x0 = 5 finds the
  global minimum, from x0 = -5 it is trapped in the local one.
- `rosenbrock` (Rosenbrock, 1960): ``(a - x)^2 + b (y - x^2)^2``, minimum 0 at
  ``(a, a^2)`` at the bottom of a curved, flat valley.
- `beale` (Beale, 1958): ``(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 +
  (2.625 - x + xy^3)^2``, minimum 0 at (3, 0.5), with steep walls.
- `ravine` (the hyperparameter lecture's "ravines"): ``0.5 (x - c)^T H (x - c)``, ``H = R diag(1,
  kappa) R^T`` with R a rotation by `angle`; the condition number `kappa` makes
  plain gradient descent zig-zag across the steep direction (it needs a step
  below ``2 / kappa`` and then crawls along the flat one at rate ``1 - step``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab._checks import check_range, unknown_choice

__all__ = [
    "TEST_FUNCTIONS",
    "Minimum",
    "TestFunction",
    "beale",
    "get_test_function",
    "quartic",
    "ravine",
    "rosenbrock",
]


class Minimum(NamedTuple):
    """A minimizer `x` (shape `(dim,)`), its value, and "global" or "local"."""

    x: np.ndarray
    value: float
    kind: str


class TestFunction(NamedTuple):
    """A function to minimize with what is known about it.

    Attributes:
      name: registry name.
      f: `x -> scalar`, differentiable and jittable.
      minima: every minimum, the global one(s) first.
      domain: `(low, high)` per coordinate, a window for plots.
      starts: starting points used in the lectures or the literature.
    """

    __test__ = False  # not a pytest test class, despite its name

    name: str
    f: Callable[[jax.Array], jax.Array]
    minima: tuple[Minimum, ...]
    domain: tuple[tuple[float, float], ...]
    starts: tuple[np.ndarray, ...]

    @property
    def dim(self) -> int:
        return len(self.domain)

    @property
    def global_minimum(self) -> Minimum:
        return min(self.minima, key=lambda m: m.value)


# The quartic lecture's coefficients, highest power first.
_QUARTIC = (319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6.0)


def _quartic(x: jax.Array) -> jax.Array:
    a4, a3, a2, a1, a0 = _QUARTIC
    # Horner form; the sum makes shape (1,) and () both give a scalar.
    return jnp.sum((((a4 * x + a3) * x + a2) * x + a1) * x + a0)


def quartic() -> TestFunction:
    """The quartic lecture's quartic; its minima are the roots of f' where f'' > 0 (Newton-polished)."""
    return TestFunction(
        name="quartic",
        f=_quartic,
        minima=(
            Minimum(np.array([3.272765339558436]), 0.8812471800601571, "global"),
            Minimum(np.array([-3.2549937308592534]), 2.4928824573455466, "local"),
        ),
        domain=((-5.5, 5.5),),
        starts=(np.array([5.0]), np.array([-5.0])),
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> TestFunction:
    """Rosenbrock's banana function ``(a - x)^2 + b (y - x^2)^2``; minimum 0 at ``(a, a^2)``."""
    check_range("b", b, low=0.0, low_inclusive=False)
    a, b = float(a), float(b)

    def f(x: jax.Array) -> jax.Array:
        return (a - x[0]) ** 2 + b * (x[1] - x[0] ** 2) ** 2

    return TestFunction(
        name="rosenbrock",
        f=f,
        minima=(Minimum(np.array([a, a * a]), 0.0, "global"),),
        domain=((a - 3.0, a + 1.0), (a * a - 2.0, a * a + 2.0)),
        starts=(np.array([-1.2, 1.0]),),
    )


def _beale(x: jax.Array) -> jax.Array:
    u, v = x[0], x[1]
    return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v**2) ** 2 + (2.625 - u + u * v**3) ** 2


def beale() -> TestFunction:
    """Beale's function; minimum 0 at (3, 0.5)."""
    return TestFunction(
        name="beale",
        f=_beale,
        minima=(Minimum(np.array([3.0, 0.5]), 0.0, "global"),),
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        starts=(np.array([1.0, 1.5]),),
    )


def ravine(condition_number: float = 50.0, angle: float = 0.0, center: Any = (0.0, 0.0)) -> TestFunction:
    """An ill-conditioned 2-D quadratic ``0.5 (x - c)^T H (x - c)``.

    `H` has eigenvalues 1 and `condition_number`; its steep eigenvector is the
    second axis rotated by `angle` (radians). Minimum 0 at `center`.
    """
    check_range("condition_number", condition_number, low=1.0)
    kappa, theta = float(condition_number), float(angle)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    hessian = rot @ np.diag([1.0, kappa]) @ rot.T
    h = tuple(tuple(float(v) for v in row) for row in hessian)
    center = np.asarray(center, dtype=np.float64).reshape(2)
    c0, c1 = float(center[0]), float(center[1])

    def f(x: jax.Array) -> jax.Array:
        d0, d1 = x[0] - c0, x[1] - c1
        return 0.5 * (h[0][0] * d0 * d0 + 2.0 * h[0][1] * d0 * d1 + h[1][1] * d1 * d1)

    return TestFunction(
        name="ravine",
        f=f,
        minima=(Minimum(center, 0.0, "global"),),
        domain=((c0 - 5.0, c0 + 5.0), (c1 - 2.0, c1 + 2.0)),
        starts=(center + rot @ np.array([-4.5, 1.0]),),
    )


_FACTORIES: dict[str, Callable[..., TestFunction]] = {
    "quartic": quartic,
    "rosenbrock": rosenbrock,
    "beale": beale,
    "ravine": ravine,
    "ill_conditioned_quadratic": ravine,
}

TEST_FUNCTIONS: tuple[str, ...] = tuple(_FACTORIES)
"""Every test-function name, aliases included."""


def get_test_function(name: str, **kwargs: Any) -> TestFunction:
    """The test function called `name`, built with `kwargs` (e.g. ``condition_number=100``)."""
    key = str(name).lower()
    if key not in _FACTORIES:
        raise unknown_choice("name", name, TEST_FUNCTIONS)
    return _FACTORIES[key](**kwargs)
