"""Schedules against optax's, against the lectures' formulas, and under vmap/jit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab import schedules as S

STEPS = np.arange(0, 160)
SETTINGS = settings(max_examples=15, deadline=None)


def values(schedule, steps=STEPS):
    """The schedule at every step (vmapped: some schedules take scalar steps only)."""
    return np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))


def assert_same(ours, theirs, steps=STEPS):
    np.testing.assert_array_equal(values(ours, steps), values(theirs, steps))
    # Python-int steps take different promotion paths (e.g. cosine's int -> float).
    for t in (0, 7, 159):
        np.testing.assert_array_equal(np.asarray(ours(t)), np.asarray(theirs(t)))


# --------------------------------------------------------------------------------------------
# Same values as optax
# --------------------------------------------------------------------------------------------

CASES = {
    "constant": lambda m: m.constant_schedule(0.3),
    "linear": lambda m: m.linear_schedule(1.0, 0.01, 100, 5),
    "linear_zero_steps": lambda m: m.linear_schedule(1.0, 0.01, 0),
    "polynomial": lambda m: m.polynomial_schedule(1.0, 0.01, 2, 100, 5),
    "polynomial_float_power": lambda m: m.polynomial_schedule(0.5, 0.1, 0.7, 60),
    "polynomial_negative_begin": lambda m: m.polynomial_schedule(1.0, 0.0, 3, 50, -4),
    "polynomial_negative_steps": lambda m: m.polynomial_schedule(1.0, 0.0, 3, -5),
    "exponential": lambda m: m.exponential_decay(0.01, 20, 0.1),
    "exponential_begin_staircase": lambda m: m.exponential_decay(1.0, 7, 0.5, 3, True),
    "exponential_end_lower": lambda m: m.exponential_decay(1.0, 7, 0.5, 3, False, 0.1),
    "exponential_end_upper": lambda m: m.exponential_decay(1.0, 9, 1.5, 0, True, 4.0),
    "exponential_zero_rate": lambda m: m.exponential_decay(1.0, 9, 0.0),
    "exponential_zero_steps": lambda m: m.exponential_decay(1.0, 0, 0.5),
    "exponential_negative_begin": lambda m: m.exponential_decay(1.0, 10, 0.5, -3),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(0.01, {5: 0.5, 15: 0.2, 90: 0.1}),
    "piecewise_constant_empty": lambda m: m.piecewise_constant_schedule(0.01),
    "piecewise_linear": lambda m: m.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01, 60: 3.0}),
    "piecewise_cosine": lambda m: m.piecewise_interpolate_schedule("cosine", 1.0, {10: 0.5, 30: 0.1}),
    "cosine": lambda m: m.cosine_decay_schedule(1.0, 70),
    "cosine_alpha_exponent": lambda m: m.cosine_decay_schedule(0.5, 70, 0.1, 2.0),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(100, 1.0),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(120, 0.8, 0.25, 10.0, 100.0),
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.0, 1.0, 10),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 10, 70, 0.1, 2.0),
    "warmup_cosine_zero_peak": lambda m: m.warmup_cosine_decay_schedule(0.0, 0.0, 10, 70, 0.1),
    "warmup_exponential": lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.7, 3, True, 0.2),
    "join": lambda m: m.join_schedules(
        [m.constant_schedule(1.0), m.linear_schedule(1.0, 0.0, 20), m.constant_schedule(0.3)], [10, 50]
    ),
    "sgdr": lambda m: m.sgdr_schedule(
        [
            dict(init_value=0.0, peak_value=1.0, warmup_steps=5, decay_steps=30),
            dict(init_value=0.1, peak_value=0.5, warmup_steps=3, decay_steps=40, end_value=0.05),
            dict(init_value=0.0, peak_value=0.2, warmup_steps=2, decay_steps=50),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_values_as_optax(name):
    assert_same(CASES[name](S), CASES[name](optax))


def test_every_optax_schedule_has_a_namesake():
    optax_names = {
        n for n in dir(optax.schedules) if n.endswith(("_schedule", "_decay", "_schedules")) and n[0] != "_"
    }
    assert len(optax_names) >= 14
    missing = sorted(n for n in optax_names if not hasattr(S, n))
    assert not missing


positive = st.floats(1e-3, 10.0)
unit = st.floats(0.0, 1.0)


@SETTINGS
@given(
    init=positive,
    end=positive,
    power=st.one_of(st.integers(0, 4), st.floats(0.1, 3.0)),
    steps=st.integers(-5, 120),
    begin=st.integers(-5, 40),
)
def test_polynomial_matches_optax(init, end, power, steps, begin):
    assert_same(
        S.polynomial_schedule(init, end, power, steps, begin),
        optax.polynomial_schedule(init, end, power, steps, begin),
    )


@SETTINGS
@given(
    init=positive,
    steps=st.integers(-3, 60),
    rate=st.one_of(st.just(0.0), st.floats(0.05, 2.0)),
    begin=st.integers(-5, 30),
    staircase=st.booleans(),
    end=st.one_of(st.none(), positive),
)
def test_exponential_decay_matches_optax(init, steps, rate, begin, staircase, end):
    ours = S.exponential_decay(init, steps, rate, begin, staircase, end)
    assert_same(ours, optax.exponential_decay(init, steps, rate, begin, staircase, end))


@SETTINGS
@given(init=positive, decay=st.integers(1, 200), alpha=unit, exponent=st.floats(0.5, 3.0))
def test_cosine_decay_matches_optax(init, decay, alpha, exponent):
    assert_same(
        S.cosine_decay_schedule(init, decay, alpha, exponent),
        optax.cosine_decay_schedule(init, decay, alpha, exponent),
    )


@SETTINGS
@given(
    init=unit,
    peak=positive,
    warmup=st.integers(0, 30),
    extra=st.integers(1, 100),
    end=unit,
    exponent=st.floats(0.5, 2),
)
def test_warmup_cosine_matches_optax(init, peak, warmup, extra, end, exponent):
    args = (init, peak, warmup, warmup + extra, end, exponent)
    assert_same(S.warmup_cosine_decay_schedule(*args), optax.warmup_cosine_decay_schedule(*args))


boundaries_and_scales = st.dictionaries(st.integers(0, 150), st.floats(0.0, 3.0), min_size=3, max_size=3)


@settings(max_examples=10, deadline=None)
@given(init=positive, bs=boundaries_and_scales, kind=st.sampled_from(["linear", "cosine"]))
def test_piecewise_matches_optax(init, bs, kind):
    assert_same(S.piecewise_constant_schedule(init, bs), optax.piecewise_constant_schedule(init, bs))
    assert_same(
        S.piecewise_interpolate_schedule(kind, init, bs), optax.piecewise_interpolate_schedule(kind, init, bs)
    )


# --------------------------------------------------------------------------------------------
# Traced parameters
# --------------------------------------------------------------------------------------------

LRS = jnp.array([0.5, 1.0, 0.01, 2.0])
RATES = jnp.array([0.1, 0.5, 0.99, 1.3])
STEP_INTS = jnp.array([3, 10, 17, 40])


def per_element(make, *arrays, step=37):
    return np.array([make(*[a[i].item() for a in arrays])(step) for i in range(len(arrays[0]))])


def test_exponential_decay_vmapped_over_value_and_rate():
    got = jax.vmap(lambda lr, k: S.exponential_decay(lr, 10, k)(37))(LRS, RATES)
    np.testing.assert_allclose(
        got, per_element(lambda lr, k: optax.exponential_decay(lr, 10, k), LRS, RATES), rtol=1e-13
    )


@pytest.mark.parametrize(
    "make_ours, make_ref",
    [
        (
            lambda lr, k, n: S.exponential_decay(lr, n, k, 2, True, 0.3 * lr),
            lambda lr, k, n: optax.exponential_decay(lr, n, k, 2, True, 0.3 * lr),
        ),
        (
            lambda lr, k, n: S.polynomial_schedule(lr, 0.1 * lr, 1.0 + k, n, n // 3),
            lambda lr, k, n: optax.polynomial_schedule(lr, 0.1 * lr, 1.0 + k, n, n // 3),
        ),
        (
            lambda lr, k, n: S.cosine_decay_schedule(lr, n, k / 2, 1 + k),
            lambda lr, k, n: optax.cosine_decay_schedule(lr, n, k / 2, 1 + k),
        ),
        (
            lambda lr, k, n: S.warmup_cosine_decay_schedule(0.0, lr, n, 3 * n, k / 2 * lr),
            lambda lr, k, n: optax.warmup_cosine_decay_schedule(0.0, lr, n, 3 * n, k / 2 * lr),
        ),
        (
            lambda lr, k, n: S.warmup_exponential_decay_schedule(0.0, lr, n, 5, k),
            lambda lr, k, n: optax.warmup_exponential_decay_schedule(0.0, lr, n, 5, k),
        ),
        (
            lambda lr, k, n: S.piecewise_constant_schedule(lr, {10: k, 30: k}),
            lambda lr, k, n: optax.piecewise_constant_schedule(lr, {10: k, 30: k}),
        ),
        (
            lambda lr, k, n: S.piecewise_interpolate_schedule("cosine", lr, {10: k, 50: 2 * k}),
            lambda lr, k, n: optax.piecewise_interpolate_schedule("cosine", lr, {10: k, 50: 2 * k}),
        ),
        (
            lambda lr, k, n: S.cosine_onecycle_schedule(100, lr, 0.3, 1 + 10 * k),
            lambda lr, k, n: optax.cosine_onecycle_schedule(100, lr, 0.3, 1 + 10 * k),
        ),
    ],
    ids=[
        "exponential",
        "polynomial",
        "cosine",
        "warmup_cosine",
        "warmup_exponential",
        "piecewise",
        "interpolate",
        "onecycle",
    ],
)
def test_vmapped_parameters_equal_per_value(make_ours, make_ref):
    steps = jnp.array([0, 5, 12, 37, 90])
    got = jax.vmap(lambda lr, k, n: jax.vmap(make_ours(lr, k, n))(steps))(LRS, RATES, STEP_INTS)
    want = np.array(
        [
            [make_ref(lr.item(), k.item(), n.item())(int(t)) for t in steps]
            for lr, k, n in zip(LRS, RATES, STEP_INTS, strict=True)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_traced_edge_cases_match_optax_branches():
    """optax decides these with Python `if`s; traced, they must give the same values."""
    steps_ = jnp.array([-3, 0, 10])
    rates = jnp.array([0.5, 0.0, 0.5])
    begins = jnp.array([0, 2, -4])
    got = jax.vmap(lambda n, k, b: S.exponential_decay(2.0, n, k, b)(25))(steps_, rates, begins)
    want = [
        optax.exponential_decay(2.0, int(n), float(k), int(b))(25)
        for n, k, b in zip(steps_, rates, begins, strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    peaks = jnp.array([0.0, 2.0])
    got = jax.vmap(lambda p: S.warmup_cosine_decay_schedule(0.0, p, 5, 40, 0.1)(20))(peaks)
    want = [optax.warmup_cosine_decay_schedule(0.0, float(p), 5, 40, 0.1)(20) for p in peaks]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_new_values_do_not_recompile():
    @jax.jit
    def value(lr, k, step):
        return S.exponential_decay(lr, 10, k, staircase=True)(step) + S.power_schedule(lr, 5.0, k)(step)

    value(jnp.asarray(0.1), jnp.asarray(0.5), jnp.asarray(3))
    value(jnp.asarray(0.2), jnp.asarray(0.7), jnp.asarray(9))
    assert value._cache_size() == 1


def test_checks_let_traced_values_through():
    got = jax.jit(lambda s: S.power_schedule(1.0, s)(10))(jnp.asarray(10.0))
    np.testing.assert_allclose(got, 0.5)


# --------------------------------------------------------------------------------------------
# The lectures' schedules
# --------------------------------------------------------------------------------------------


def test_power_schedule_halves_after_s_steps():
    """The gradients lecture: eta(t) = eta0 / (1 + t/s)^c; with c = 1, eta0/2 after s steps, eta0/3 after 2s..."""
    sched = S.power_schedule(0.01, 20)
    np.testing.assert_allclose(
        [sched(0), sched(20), sched(40), sched(60)], [0.01, 0.005, 0.01 / 3, 0.0025], rtol=1e-15
    )
    sched = S.power_schedule(0.5, 4.0, power=2.0)
    t = np.arange(50.0)
    np.testing.assert_allclose(values(sched, t), 0.5 / (1 + t / 4.0) ** 2, rtol=1e-14)


def test_keras_sgd_decay_is_power_schedule():
    """The gradients-and-activations lecture's `SGD(learning_rate=0.01, decay=1e-4)`: lr_t = 0.01 / (1 + 1e-4 t)."""
    t = np.arange(0.0, 50_000.0, 997.0)
    keras = 0.01 / (1 + 1e-4 * t)
    np.testing.assert_allclose(values(S.power_schedule(0.01, 1 / 1e-4, 1.0), t), keras, rtol=1e-14)
    np.testing.assert_allclose(values(S.inverse_time_decay(0.01, 1.0, 1e-4), t), keras, rtol=1e-14)


def test_inverse_time_decay_by_hand():
    t = np.arange(100)
    np.testing.assert_allclose(
        values(S.inverse_time_decay(0.1, 10, 0.5), t), 0.1 / (1 + 0.5 * t / 10), rtol=1e-14
    )
    np.testing.assert_allclose(
        values(S.inverse_time_decay(0.1, 10, 0.5, staircase=True), t), 0.1 / (1 + 0.5 * (t // 10)), rtol=1e-14
    )


def test_seed_003_exponential_and_piecewise_functions():
    epochs = np.arange(100)
    np.testing.assert_allclose(
        values(S.exponential_decay(0.01, 20, 0.1), epochs), 0.01 * 0.1 ** (epochs / 20), rtol=1e-13
    )

    def piece_fn(epoch):
        if epoch < 5:
            return 0.01
        if epoch < 15:
            return 0.005
        return 0.001

    sched = S.piecewise_constant_schedule(0.01, {5: 0.5, 15: 0.2})
    np.testing.assert_allclose(values(sched, epochs), [piece_fn(e) for e in epochs], rtol=1e-15)


@SETTINGS
@given(init=positive, k=st.floats(0.5, 1.0))
def test_step_decay_is_exponential_decay_with_one_transition_step(init, k):
    np.testing.assert_array_equal(values(S.step_decay(init, k)), values(S.exponential_decay(init, 1, k)))
    np.testing.assert_array_equal(values(S.step_decay(init, k)), values(optax.exponential_decay(init, 1, k)))


@SETTINGS
@given(init=positive, k=st.floats(0.5, 1.0), every=st.integers(1, 12), first=st.booleans())
def test_step_decay_by_hand(init, k, every, first):
    expected = init * k ** (STEPS // every + first)
    np.testing.assert_allclose(values(S.step_decay(init, k, every, decay_first=first)), expected, rtol=1e-12)


def _quartic_grad(x):
    a4, a3, a2, a1 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840
    return 4 * a4 * x**3 + 3 * a3 * x**2 + 2 * a2 * x + a1


def test_step_decay_reproduces_seed_004_gd_with_lr_decay():
    """The quartic lecture's vanilla_gd_lrdecay: alpha *= K before each update, on the quartic."""

    def vanilla_gd_lrdecay(start, alpha=0.1, k=0.99, n_iter=100):
        val = start
        for _ in range(n_iter):
            alpha *= k
            val += -alpha * _quartic_grad(val)
        return val

    opt = optax.sgd(S.step_decay(0.1, 0.99, decay_first=True))

    def step(_, carry):
        x, state = carry
        updates, state = opt.update(_quartic_grad(x), state)
        return optax.apply_updates(x, updates), state

    x = jnp.asarray(5.0)
    x, _ = jax.jit(lambda x: jax.lax.fori_loop(0, 100, step, (x, opt.init(x))))(x)
    np.testing.assert_allclose(float(x), vanilla_gd_lrdecay(5.0), rtol=1e-12)
    # It converges to the global minimum near 3.27 printed in the notes.
    assert abs(float(x) - 3.2727653395584366) < 0.05


# --------------------------------------------------------------------------------------------
# Bad values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, fragment",
    [
        (
            lambda: S.exponential_decay(1.0, 10, -0.5),
            "decay_rate=-0.5 is out of range: valid range is [0.0, inf)",
        ),
        (lambda: S.cosine_decay_schedule(1.0, 0), "decay_steps=0 is out of range: valid range is (0, inf)"),
        (lambda: S.power_schedule(1.0, -2.0), "decay_steps=-2.0 is out of range"),
        (lambda: S.power_schedule(1.0, 2.0, power=-1.0), "power=-1.0 is out of range"),
        (lambda: S.inverse_time_decay(1.0, 10, -1.0), "decay_rate=-1.0 is out of range"),
        (lambda: S.step_decay(1.0, 1.5), "decay_factor=1.5 is out of range: valid range is (0.0, 1.0]"),
        (lambda: S.step_decay(1.0, 0.5, decay_every=0), "decay_every=0 is out of range"),
        (
            lambda: S.piecewise_constant_schedule(1.0, {10: -0.1}),
            "boundaries_and_scales[10]=-0.1 is out of range",
        ),
        (lambda: S.piecewise_interpolate_schedule("linear", 1.0, {3: -2.0}), "boundaries_and_scales[3]=-2.0"),
        (lambda: S.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10), "decay_steps=10 is out of range"),
        (lambda: S.cosine_onecycle_schedule(0, 1.0), "transition_steps=0 is out of range"),
    ],
)
def test_bad_values_name_argument_value_and_range(make, fragment):
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value)


def test_bad_interpolate_type_suggests_the_closest():
    with pytest.raises(
        ValueError, match=r"interpolate_type='cosin' is not a valid choice \(did you mean 'cosine'\?\); "
        r"valid choices: cosine, linear"
    ):
        S.piecewise_interpolate_schedule("cosin", 1.0, {})
