"""Experiments 1, 2, 4, 5 and 9 at tiny size: their files, their reported numbers and their science.

Each experiment runs once per module (fixtures) into a temporary folder; the
tests then check that the figures are real PNGs, that the text states the
numbers of the tables, and one or more findings against an independent
reference (the lecture's printed numbers, plain-numpy loops, closed forms,
brute-force enumeration).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import schedules
from jaxopt_lab.experiments import learning_rate, moons_sgd_vs_adam, quartic, schedule_comparison, search_comparison
from jaxopt_lab.report_page import Section

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_files(section: Section, folder) -> None:
    assert isinstance(section, Section)
    assert section.figures, "an experiment draws at least one figure"
    for fig in section.figures:
        assert fig.parent == folder
        data = fig.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5_000, fig
    for name, rows in section.tables:
        assert isinstance(name, str) and rows and all(isinstance(r, dict) for r in rows)


def _table(section: Section, start: str) -> list[dict]:
    return next(rows for name, rows in section.tables if name.startswith(start))


def _run(module, tmp_path_factory):
    folder = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[-1])
    return module.run(folder, size="tiny"), folder


def test_unknown_size_names_the_choices(tmp_path):
    for module in (moons_sgd_vs_adam, quartic, learning_rate, schedule_comparison, search_comparison):
        with pytest.raises(ValueError, match=r"size='dmeo'.*did you mean 'demo'.*tiny, demo, full"):
            module.run(tmp_path, size="dmeo")


# --------------------------------------------------------------------------- 1. moons, the moons lecture


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    return _run(moons_sgd_vs_adam, tmp_path_factory)


def test_moons_reproduces_the_printed_accuracies_exactly(moons):
    section, folder = moons
    _check_files(section, folder)
    rows = _table(section, "Lecture's printed")
    printed = {"sgd": (0.890, 0.892, 0.898, 0.896, 0.896), "adam": (0.946, 0.950, 0.950, 0.950, 0.95)}
    assert [r["checkpoint"] for r in rows] == ["epoch 100", "epoch 200", "epoch 300", "epoch 400", "final"]
    for name, values in printed.items():
        got = [r[f"{name} reproduced"] for r in rows]
        np.testing.assert_allclose(got, values, atol=1e-12)
    assert "match the printed ones exactly" in section.text


def test_moons_extension_reports_its_spread(moons):
    section, _ = moons
    spread = _table(section, "Over 4 paired")
    by = {r["optimizer"]: r for r in spread}
    for r in spread:
        assert 0.5 <= r["final accuracy min"] <= r["final accuracy median"] <= r["final accuracy max"] <= 1.0
        assert f"median {r['final accuracy median']:.3f}" in section.text
    # Adam (lr 0.05) fits the moons better than SGD (lr 0.3) in 400 full-batch epochs, as in the lecture.
    assert by["Adam (lr 0.05)"]["final loss median"] < by["SGD (lr 0.3)"]["final loss median"]


# --------------------------------------------------------------------------- 2. quartic, the quartic lecture


@pytest.fixture(scope="module")
def quart(tmp_path_factory):
    return _run(quartic, tmp_path_factory)


def test_quartic_printed_results_and_escape(quart):
    section, folder = quart
    _check_files(section, folder)
    rows = _table(section, "Printed vs reproduced")
    by = {(r["method"], r["x0"]): r for r in rows}
    assert len(rows) == 14
    for r in rows:
        if r["printed"]:
            assert float(r["jaxopt_lab (float64)"]) == pytest.approx(float(r["printed"]), abs=1e-12)
        assert r["|difference|"] < 1e-12
    # The lecture's story: GD from -5 is trapped in the local minimum, momentum 0.9 escapes, from 5 GD is fine.
    assert float(by[("GD", -5.0)]["jaxopt_lab (float64)"]) == pytest.approx(-3.254993730859254, abs=1e-12)
    assert by[("GD", -5.0)]["ends in"] == "local minimum"
    assert by[("momentum 0.9", -5.0)]["ends in"] == "global minimum"
    assert float(by[("momentum 0.9", -5.0)]["jaxopt_lab (float64)"]) == pytest.approx(3.267681061691328, abs=1e-12)
    assert by[("GD", 5.0)]["ends in"] == "global minimum"
    assert f"{float(by[('GD', 5.0)]['jaxopt_lab (float64)']):.10f}" in section.text


def test_quartic_helpers_match_the_library_function():
    from jaxopt_lab.nn import testfns

    f = testfns.quartic().f
    xs = np.linspace(-6, 6, 25)
    with jax.enable_x64(True):
        x64 = jnp.asarray(xs, jnp.float64)
        np.testing.assert_allclose(quartic.lecture_f(xs), jax.vmap(f)(x64), rtol=1e-13)
        np.testing.assert_allclose(quartic.lecture_deriv(xs), jax.vmap(jax.grad(f))(x64), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(quartic.second_derivative(xs), jax.vmap(jax.hessian(f))(x64), rtol=1e-12)


def _numpy_heavy_ball(x0: float, lr: float, mu: float, n: int) -> float:
    a4, a3, a2, a1 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840
    x, v = x0, 0.0
    for _ in range(n):
        g = ((4 * a4 * x + 3 * a3) * x + 2 * a2) * x + a1
        v = mu * v + g
        x = x - lr * v
        if not math.isfinite(x) or abs(x) > 1e6:
            return math.inf
    return x


def test_quartic_basin_map_matches_plain_loops():
    starts = np.asarray([-5.5, -5.0, -1.0, 0.5, 5.0])
    momenta = np.asarray([0.0, 0.5, 0.9])
    with jax.enable_x64(True):
        got = quartic.basin_map(starts, momenta, "momentum", 200)
        # Rates below 2/f''(x*) ~ 0.58: larger ones make GD chaotic, where rounding differences grow.
        rates = np.asarray([0.05, 0.3, 0.5])
        got_lr = quartic.basin_map(starts, rates, "learning_rate", 200)
    for i, mu in enumerate(momenta):
        for j, x0 in enumerate(starts):
            ref = _numpy_heavy_ball(float(x0), 0.1, float(mu), 200)
            assert got[i, j] == pytest.approx(ref, abs=1e-9), (mu, x0)
    for i, lr in enumerate(rates):
        for j, x0 in enumerate(starts):
            ref = _numpy_heavy_ball(float(x0), float(lr), 0.0, 200)
            if math.isinf(ref):
                assert quartic._outcome(np.asarray([got_lr[i, j]]))[0] == 3
            else:
                assert got_lr[i, j] == pytest.approx(ref, abs=1e-9), (lr, x0)
    # Without momentum the start's side of the local maximum (near -0.22) decides the minimum.
    out = quartic._outcome(got[0])
    assert list(out) == [1, 1, 1, 0, 0]


def test_quartic_momentum_table_shares_add_up(quart):
    section, _ = quart
    for r in _table(section, "Share of start points"):
        total = r["global min"] + r["local min"] + r["not settled"] + r["diverged"]
        assert total == pytest.approx(1.0)


# --------------------------------------------------------------------------- 4. learning rate


@pytest.fixture(scope="module")
def lr_exp(tmp_path_factory):
    return _run(learning_rate, tmp_path_factory)


def test_learning_rate_regimes(lr_exp):
    section, folder = lr_exp
    _check_files(section, folder)
    rows = _table(section, "Momentum 0")
    rates = [r["learning rate"] for r in rows]
    assert rates == sorted(rates) and len(rates) == len(learning_rate.SIZES["tiny"]["rates"])
    # Too large diverges: every seed at the largest rate.
    n_seeds = learning_rate.SIZES["tiny"]["seeds"]
    assert rows[-1]["diverged"] == f"{n_seeds}/{n_seeds}"
    # Too small is slowest: of the rates up to the best one, the smallest ends highest and reaches the target last.
    finite = [r for r in rows if r["median final train loss"] == r["median final train loss"]]
    best = min(finite, key=lambda r: r["median final train loss"])
    up_to_best = [r for r in finite if r["learning rate"] <= best["learning rate"]]
    assert rows[0]["median final train loss"] == max(r["median final train loss"] for r in up_to_best)
    assert rows[0]["median final train loss"] > 1.5 * best["median final train loss"]
    reach_col = next(k for k in rows[0] if k.startswith("median epochs to loss"))
    assert rows[0][reach_col] > best[reach_col]
    assert f"falls to {best['median final train loss']:.3f}" in section.text


def test_learning_rate_heatmap_rows(lr_exp):
    section, _ = lr_exp
    best_rows = _table(section, "Best learning rate per momentum")
    assert [r["momentum"] for r in best_rows] == sorted(learning_rate.SIZES["tiny"]["momenta"])
    for r in best_rows:
        assert r["effective step lr/(1-mu)"] == pytest.approx(r["best learning rate"] / (1 - r["momentum"]))
        assert 0.0 <= r["mean validation accuracy"] <= 1.0
        assert f"accuracy {r['mean validation accuracy']:.3f}" in section.text


# --------------------------------------------------------------------------- 5. schedules


def test_schedule_families_equal_the_named_schedules():
    """The shared programs' parameterizations are the schedules they stand for, step by step."""
    steps = 120
    t = jnp.arange(steps, dtype=jnp.float64)  # the counts of a run's updates: 0 .. S - 1
    fams = schedule_comparison.families(10, steps)
    (cos_cfg, cos_members), (_, power_members), (_, exp_members) = fams

    def build(name, kw):
        return np.asarray(jax.vmap(getattr(schedules, name)(**kw))(t))

    lr0 = schedule_comparison.LR0
    cos_kw = dict(cos_cfg.optimizer.schedule.kwargs)
    for label, expect in (
        ("constant", np.full(steps, lr0)),
        ("cosine", build("cosine_decay_schedule", {"init_value": lr0, "decay_steps": steps})),
    ):
        kw = {**cos_kw, **{k.rsplit(".", 1)[1]: v for k, v in cos_members[label].items() if "schedule" in k}}
        got = build("warmup_cosine_decay_schedule", {"init_value": 0.0, "peak_value": lr0, **kw})
        np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-15, err_msg=label)
    p = {k.rsplit(".", 1)[1]: v for k, v in power_members["power"].items()}
    np.testing.assert_allclose(
        build("power_schedule", {"init_value": lr0, **p}), lr0 / (1 + np.arange(steps) / (steps / 10)), rtol=1e-12
    )
    e = {k.rsplit(".", 1)[1]: v for k, v in exp_members["exponential"].items()}
    stair = build("exponential_decay", {"init_value": lr0, "staircase": True, **e})
    np.testing.assert_allclose(stair, lr0 * 0.1 ** (np.arange(steps) / (steps / 2)), rtol=1e-9)
    pw = {k.rsplit(".", 1)[1]: v for k, v in exp_members["piecewise"].items()}
    third = int(pw["transition_steps"])
    piece = build(
        "piecewise_constant_schedule", {"init_value": lr0, "boundaries_and_scales": {third: 0.1, 2 * third: 0.1}}
    )
    np.testing.assert_allclose(
        build("exponential_decay", {"init_value": lr0, "staircase": True, **pw}), piece, rtol=1e-12
    )
    assert piece[-1] == pytest.approx(0.01 * lr0)  # two drops, the second before the last update


@pytest.fixture(scope="module")
def sched_exp(tmp_path_factory):
    return _run(schedule_comparison, tmp_path_factory)


def test_schedules_results(sched_exp):
    section, folder = sched_exp
    _check_files(section, folder)
    rows = {r["schedule"]: r for r in _table(section, "Final metrics")}
    assert list(rows) == list(schedule_comparison.ORDER)
    assert rows["constant"]["final lr (median)"] == pytest.approx(schedule_comparison.LR0)
    assert rows["piecewise"]["final lr (median)"] == pytest.approx(0.01 * schedule_comparison.LR0, rel=1e-5)
    assert rows["cosine"]["final lr (median)"] < 1e-3 * schedule_comparison.LR0
    # Performance scheduling only ever halves the rate: its final rate is LR0 * 0.5^j.
    j = math.log(rows["performance"]["final lr (median)"] / schedule_comparison.LR0, 0.5)
    assert j >= 0 and abs(j - round(j)) < 1e-4
    for r in rows.values():
        assert r["diverged"] == 0
        assert math.isfinite(r["final val loss (median)"])
        assert f"{r['schedule']} {r['final val accuracy (mean)']:.3f}" in section.text


# --------------------------------------------------------------------------- 9. search


@pytest.fixture(scope="module")
def search_exp(tmp_path_factory):
    return _run(search_comparison, tmp_path_factory)


def test_grid_values_are_log_cell_centres():
    v = search_comparison.grid_values(1e-4, 1.0, 4)
    np.testing.assert_allclose(np.log10(v), [-3.5, -2.5, -1.5, -0.5])


def test_search_budget_table(search_exp):
    section, folder = search_exp
    _check_files(section, folder)
    rows = _table(section, "Best final validation accuracy")
    assert [r["budget k"] for r in rows] == [n * n for n in search_comparison.SIZES["tiny"]["grids"]]
    prefix = [r["random best (first k trials)"] for r in rows]
    assert prefix == sorted(prefix), "a longer random search keeps its earlier trials"
    for r in rows:
        assert 0.0 <= r["grid best"] <= 1.0
        assert f"k = {r['budget k']}: {r['grid best']:.3f} vs {r['random expected best of k']:.3f}" in section.text
    exp = [r["random expected best of k"] for r in rows]
    assert exp == sorted(exp), "the expected best of k trials never decreases with k"


def test_expected_best_of_k_by_enumeration():
    """`records.expected_max`, used for the random-search curve, equals the mean over every k-tuple of draws."""
    from jaxopt_lab.sweep import records

    scores = np.asarray([0.5, 0.62, 0.62, 0.8, 0.71])
    for k in (1, 2, 3, 4):
        brute = np.mean([max(t) for t in itertools.product(scores, repeat=k)])
        assert records.expected_max(scores, k) == pytest.approx(brute, rel=1e-12)


def test_correlation_ratio():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=400)
    assert search_comparison.correlation_ratio(x, 3 * x, 8) > 0.95  # y a function of x: nearly all explained
    assert search_comparison.correlation_ratio(x, rng.normal(size=400), 8) < 0.06  # independent: about 7/399
