"""The quartic of the initialization lecture and its printed results, reproduced with jaxopt_lab's optimizers.

f(x) = 319/8400 x^4 + 43/4200 x^3 - 6799/8400 x^2 - 299/840 x + 6 has its global
minimum near 3.27 and a local one near -3.25. The lecture runs 100 iterations
of plain GD, momentum GD, Nesterov GD, GD with learning-rate decay and GD with
gradient-based learning-rate control, and prints the final x for the first
two. The printed numbers are checked directly; for the schemes without a
printed number, the lecture's own loop (transcribed below in plain Python) is
the reference.

How the lecture's loops map onto the library:
* `momentum_gd`: m <- mu*m - alpha*f'(x); x <- x + m. With m = -alpha*v this is
  v <- f'(x) + mu*v; x <- x - alpha*v, i.e. `sgd(alpha, momentum=mu)`.
* `nesterov_gd`: m <- mu*m - alpha*f'(x); x <- x + mu*m - alpha*f'(x), i.e.
  `sgd(alpha, momentum=mu, nesterov=True)`.
* `vanilla_gd_lrdecay`: alpha is multiplied by K *before* each step, so step t
  (from 0) uses alpha*K**(t+1): `sgd(schedule)` with that schedule.
* `vanilla_gd_gradlr`: alpha <- alpha / (1 + c*sqrt|f'(x)|) then x <- x - alpha*f'(x):
  `gradient_lr_control(alpha, control_factor=c)`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

from jaxopt_lab.optim import aliases as al
from jaxopt_lab.optim.base import apply_updates

GLOBAL_MIN = 3.2727653395584366
LOCAL_MIN = -3.254993730859254
TOL = 1e-12


def obj_fun(val):
    a4, a3, a2, a1, a0 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6
    return a4 * val**4 + a3 * val**3 + a2 * val**2 + a1 * val + a0


def obj_fun_deriv(val):
    """The lecture's derivative, written as it writes it (works on floats and JAX arrays)."""
    a4, a3, a2, a1 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840
    return 4 * a4 * val**3 + 3 * a3 * val**2 + 2 * a2 * val + a1


# ---- the lecture's loops, transcribed (the notes' indentation typos fixed) ----


def lecture_vanilla_gd(start_val, alpha=0.1, n_iter=100):
    val = start_val
    for _ in range(n_iter):
        val -= alpha * obj_fun_deriv(val)
    return val


def lecture_momentum_gd(start_val, alpha=0.1, mu=0.1, n_iter=100):
    val, mom = start_val, 0
    for _ in range(n_iter):
        grad = -alpha * obj_fun_deriv(val)
        mom = mu * mom + grad
        val += mom
    return val


def lecture_nesterov_gd(start_val, alpha=0.1, mu=0.1, n_iter=100):
    val, mom = start_val, 0
    for _ in range(n_iter):
        grad = -alpha * obj_fun_deriv(val)
        mom = mu * mom + grad
        val += mu * mom + grad
    return val


def lecture_gd_lrdecay(start_val, alpha=0.1, alpha_decay_fac=0.99, n_iter=100):
    val = start_val
    for _ in range(n_iter):
        alpha *= alpha_decay_fac
        val += -alpha * obj_fun_deriv(val)
    return val


def lecture_gd_gradlr(start_val, alpha=0.1, alpha_control_fac=0.99, n_iter=100):
    val = start_val
    for _ in range(n_iter):
        grad = obj_fun_deriv(val)
        alpha *= 1 / (1 + alpha_control_fac * math.sqrt(abs(grad)))
        val += -alpha * grad
    return val


# ---- the library's optimizers on the same problem ----


def run(opt, start_val, n_iter=100):
    """n_iter steps of `opt` from `start_val` (float64), the gradient being the lecture's f'."""

    @jax.jit
    def loop(x0):
        def step(carry, _):
            x, state = carry
            updates, state = opt.update(obj_fun_deriv(x), state, x)
            return (apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=n_iter)
        return x

    return float(loop(jnp.asarray(start_val, jnp.float64)))


def test_the_lectures_derivative_is_the_derivative_of_f():
    xs = jnp.linspace(-6.0, 6.0, 13, dtype=jnp.float64)
    assert jnp.allclose(jax.vmap(jax.grad(obj_fun))(xs), obj_fun_deriv(xs), rtol=1e-13, atol=1e-13)
    # The two printed minima are stationary points, the global one lower.
    assert abs(obj_fun_deriv(GLOBAL_MIN)) < 1e-13 and abs(obj_fun_deriv(LOCAL_MIN)) < 1e-13
    assert obj_fun(GLOBAL_MIN) < obj_fun(LOCAL_MIN)


@pytest.mark.parametrize(
    "start, printed",
    [(5.0, 3.2727653395584366), (-5.0, -3.254993730859254)],
)
def test_vanilla_gd_reaches_the_printed_minima(start, printed):
    assert lecture_vanilla_gd(start) == pytest.approx(printed, abs=TOL)  # the transcription is right
    assert run(al.sgd(0.1), start) == pytest.approx(printed, abs=TOL)


@pytest.mark.parametrize(
    "start, mu, printed",
    [
        (5.0, 0.1, 3.272765339558436),  # case 1: good start, little momentum
        (-5.0, 0.1, -3.254993730859254),  # case 2: bad start, little momentum: trapped
        (-5.0, 0.9, 3.267681061691328),  # case 3: enough momentum escapes the local minimum
    ],
)
def test_momentum_gd_printed_cases(start, mu, printed):
    assert lecture_momentum_gd(start, mu=mu) == pytest.approx(printed, abs=TOL)
    assert run(al.sgd(0.1, momentum=mu), start) == pytest.approx(printed, abs=TOL)
    assert run(al.momentum(0.1, momentum=mu), start) == pytest.approx(printed, abs=TOL)


def test_momentum_escape_is_not_reached_by_plain_gd():
    # The escape in case 3 is the momentum's doing: plain GD from -5 stays trapped.
    assert run(al.sgd(0.1), -5.0) == pytest.approx(LOCAL_MIN, abs=TOL)
    assert run(al.sgd(0.1, momentum=0.9), -5.0) > 3.0


@pytest.mark.parametrize("start, mu", [(5.0, 0.1), (-5.0, 0.1), (-5.0, 0.9), (5.0, 0.9)])
def test_nesterov_gd_matches_the_lecture_loop(start, mu):
    expected = lecture_nesterov_gd(start, mu=mu)
    assert run(al.sgd(0.1, momentum=mu, nesterov=True), start) == pytest.approx(expected, abs=TOL)
    assert run(al.nesterov(0.1, momentum=mu), start) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("start, decay", [(5.0, 0.99), (-5.0, 0.99), (-5.0, 0.9)])
def test_lr_decay_matches_the_lecture_loop(start, decay):
    expected = lecture_gd_lrdecay(start, alpha_decay_fac=decay)
    schedule = lambda count: 0.1 * decay ** (count + 1)  # alpha is decayed before each step
    assert run(al.sgd(schedule), start) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("start, c", [(5.0, 0.99), (-5.0, 0.99), (5.0, 0.1), (-5.0, 0.0)])
def test_gradient_lr_control_matches_the_lecture_loop(start, c):
    expected = lecture_gd_gradlr(start, alpha_control_fac=c)
    assert run(al.gradient_lr_control(0.1, control_factor=c), start) == pytest.approx(expected, abs=TOL)
    assert run(al.lecture_gradient_lr_control(0.1, c), start) == pytest.approx(expected, abs=TOL)


def test_gradient_lr_control_with_zero_factor_is_plain_gd():
    assert run(al.gradient_lr_control(0.1, control_factor=0.0), 5.0) == pytest.approx(GLOBAL_MIN, abs=TOL)


def test_gradient_lr_control_keeps_per_element_rates():
    # Two independent copies of the quartic in one array: each element's rate
    # must depend only on its own gradients, as if run alone.
    opt = al.gradient_lr_control(0.1, control_factor=0.5)
    x = jnp.asarray([5.0, -5.0], jnp.float64)
    state = opt.init(x)
    for _ in range(30):
        u, state = opt.update(obj_fun_deriv(x), state, x)
        x = apply_updates(x, u)
    assert float(x[0]) == pytest.approx(lecture_gd_gradlr(5.0, alpha_control_fac=0.5, n_iter=30), abs=TOL)
    assert float(x[1]) == pytest.approx(lecture_gd_gradlr(-5.0, alpha_control_fac=0.5, n_iter=30), abs=TOL)
