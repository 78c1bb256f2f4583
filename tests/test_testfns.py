"""Test functions: values against references, gradients vanish at the minima, the lecture's GD numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

from jaxopt_lab.nn.testfns import TEST_FUNCTIONS, beale, get_test_function, quartic, ravine, rosenbrock

# The quartic lecture's quartic, highest power first.
QUARTIC = [319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6]
FUNCTIONS = [quartic(), rosenbrock(), beale(), ravine(), ravine(condition_number=100.0, angle=0.6, center=(1.0, -2.0))]
IDS = ["quartic", "rosenbrock", "beale", "ravine", "rotated_ravine"]


def test_quartic_values_and_minima_from_numpy_polynomial():
    q = quartic()
    xs = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(jax.vmap(q.f)(jnp.asarray(xs)), np.polyval(QUARTIC, xs), rtol=1e-13)
    d = np.polyder(QUARTIC)
    roots = np.sort(np.roots(d).real)
    minima = roots[np.polyval(np.polyder(d), roots) > 0]
    np.testing.assert_allclose(sorted(float(m.x[0]) for m in q.minima), minima, rtol=1e-12)
    for m in q.minima:
        np.testing.assert_allclose(m.value, np.polyval(QUARTIC, m.x[0]), rtol=1e-13)
    assert q.global_minimum.kind == "global" and q.global_minimum.x[0] > 3
    # The values the lecture prints: "Global min: 3.2727653395584366", "Local, non-global min: -3.254993730859254".
    np.testing.assert_allclose(q.minima[0].x, [3.2727653395584366], rtol=1e-14)
    np.testing.assert_allclose(q.minima[1].x, [-3.254993730859254], rtol=1e-14)


def _lecture_runs(start, alpha, mu, n_iter=100):
    """The quartic lecture's vanilla_gd / momentum_gd loops (mu = 0 is vanilla) on our quartic's jax.grad."""
    grad = jax.grad(quartic().f)

    def body(carry, _):
        val, mom = carry
        g = -alpha * grad(val)
        mom = mu * mom + g
        val = val + mom
        return (val, mom), None

    (val, _), _ = jax.lax.scan(body, (jnp.asarray(start), jnp.asarray(0.0)), None, length=n_iter)
    return float(val)


@pytest.mark.parametrize(
    "start, mu, printed",
    [
        (5.0, 0.0, 3.2727653395584366),  # vanilla GD from 5 finds the global minimum
        (-5.0, 0.0, -3.254993730859254),  # ... from -5 it is trapped
        (5.0, 0.1, 3.272765339558436),  # momentum, good scenario
        (-5.0, 0.9, 3.267681061691328),  # enough momentum escapes the local minimum
    ],
)
def test_reproduces_the_lecture_printed_gradient_descent_results(start, mu, printed):
    np.testing.assert_allclose(_lecture_runs(start, 0.1, mu), printed, rtol=1e-14)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=IDS)
def test_gradient_vanishes_and_hessian_is_positive_definite_at_minima(fn):
    for m in fn.minima:
        x = jnp.asarray(m.x)
        np.testing.assert_allclose(fn.f(x), m.value, atol=1e-12)
        np.testing.assert_allclose(jax.grad(fn.f)(x), np.zeros(fn.dim), atol=1e-12)
        assert np.all(np.linalg.eigvalsh(np.asarray(jax.hessian(fn.f)(x)).reshape(fn.dim, fn.dim)) > 0)
    assert fn.global_minimum.value == min(m.value for m in fn.minima)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=IDS)
def test_minima_and_starts_lie_in_the_domain(fn):
    low, high = np.asarray(fn.domain).T
    for point in [m.x for m in fn.minima] + list(fn.starts):
        assert point.shape == (fn.dim,)
        assert np.all((low <= point) & (point <= high))
    for start in fn.starts:
        assert fn.f(jnp.asarray(start)) > fn.global_minimum.value + 1e-3


def test_rosenbrock_matches_scipy():
    pts = np.random.default_rng(0).uniform(-2, 2, (20, 2))
    f = rosenbrock().f
    np.testing.assert_allclose([f(jnp.asarray(p)) for p in pts], [rosen(p) for p in pts], rtol=1e-13)
    np.testing.assert_allclose([jax.grad(f)(jnp.asarray(p)) for p in pts], [rosen_der(p) for p in pts], rtol=1e-12)
    shifted = rosenbrock(a=2.0, b=10.0)
    np.testing.assert_allclose(shifted.minima[0].x, [2.0, 4.0])


def test_beale_known_values():
    f = beale().f
    # At the origin every term is its constant: 1.5^2 + 2.25^2 + 2.625^2.
    np.testing.assert_allclose(f(jnp.zeros(2)), 1.5**2 + 2.25**2 + 2.625**2, rtol=1e-14)
    # At (1, 1): (1.5)^2 + (2.25)^2 + (2.625)^2 as well, since -x + xy^k = 0.
    np.testing.assert_allclose(f(jnp.ones(2)), 1.5**2 + 2.25**2 + 2.625**2, rtol=1e-14)


def test_ravine_hessian_has_the_condition_number():
    fn = ravine(condition_number=80.0, angle=0.3)
    h = np.asarray(jax.hessian(fn.f)(jnp.zeros(2)))
    eig = np.linalg.eigvalsh(h)
    np.testing.assert_allclose(eig, [1.0, 80.0], rtol=1e-12)
    # The steep direction is the second axis rotated by the angle.
    steep = np.array([-np.sin(0.3), np.cos(0.3)])
    np.testing.assert_allclose(h @ steep, 80.0 * steep, rtol=1e-12)


def test_dtype_follows_input_and_jit_works():
    for fn in FUNCTIONS:
        x = jnp.asarray(fn.starts[0], jnp.float32)
        assert fn.f(x).dtype == jnp.float32
    f = jax.jit(quartic().f)
    np.testing.assert_allclose(f(jnp.asarray(2.0)), np.polyval(QUARTIC, 2.0), rtol=1e-13)


def test_registry_and_unknown_name():
    assert set(TEST_FUNCTIONS) >= {"quartic", "rosenbrock", "beale", "ravine"}
    assert get_test_function("ravine", condition_number=10.0).name == "ravine"
    with pytest.raises(ValueError, match=r"name='rosenbrok'.*did you mean 'rosenbrock'"):
        get_test_function("rosenbrok")
    with pytest.raises(ValueError, match="condition_number=0.5 is out of range"):
        ravine(condition_number=0.5)
