"""Quasi-random search: inverse CDFs, fixed points for a seed, low discrepancy, the TOML table and the CLI."""

import csv
import math

import numpy as np
import pytest
import scipy.stats
from scipy.stats import qmc

from jaxopt_lab.cli import main
from jaxopt_lab.sweep import space as S

# Computed once (scipy 1.17, numpy 2.4) and frozen: a change of these numbers means the same
# seed no longer gives the same search, on this machine or another.
HALTON_SEED7 = [
    [0.6702257183656992, 0.6382549418647646, 0.8215926631350692],
    [0.17022571836569922, 0.304921608531431, 0.22159266313506953],
    [0.4202257183656992, 0.7493660529758757, 0.021592663135069134],
    [0.9202257183656991, 0.4160327196425421, 0.6215926631350692],
]
SOBOL_SEED7 = [
    [0.4482860384288636, 0.9704040447724744, 0.6918075899161542],
    [0.9449653127941696, 0.3034404786778375, 0.21581366700456983],
    [0.2620655210468379, 0.6814754596454784, 0.9481562082223738],
    [0.7587486138346997, 0.09264449314305034, 0.4555603484191144],
]
MIXED_DISTS = {
    "a": S.loguniform(1e-4, 1.0), "c": S.one_minus_loguniform(1e-3, 1.0), "d": S.choice(["x", "y", "z"]),
    "e": S.randint(1, 10), "f": S.int_loguniform(1, 1000),
}
MIXED_SEED7 = [
    {"a": 0.047962617202901625, "c": 0.9178202481382318, "d": "z", "e": 7, "f": 59},
    {"a": 0.0004796261720290165, "c": 0.9917820248138232, "d": "x", "e": 3, "f": 4},
    {"a": 0.004796261720290161, "c": 0.8229490917707942, "d": "x", "e": 5, "f": 16},
]


@pytest.mark.parametrize("sequence, expected", [("halton", HALTON_SEED7), ("sobol", SOBOL_SEED7)])
def test_points_are_fixed_for_a_seed(sequence, expected):
    np.testing.assert_allclose(S.unit_points(4, 3, 7, sequence), expected, rtol=0, atol=1e-15)


def test_mapped_points_are_fixed_for_a_seed():
    got = S.quasirandom(3, 7, MIXED_DISTS).points()
    for g, e in zip(got, MIXED_SEED7, strict=True):
        assert {k: v for k, v in g.items() if isinstance(v, (str, int))} == \
            {k: v for k, v in e.items() if isinstance(v, (str, int))}
        for k in ("a", "c"):
            assert g[k] == pytest.approx(e[k], rel=1e-13)


def test_same_seed_same_points_other_seed_other_points_and_prefixes():
    a, b = S.quasirandom(20, 3, MIXED_DISTS), S.quasirandom(20, 3, MIXED_DISTS)
    assert a == b
    assert a != S.quasirandom(20, 4, MIXED_DISTS)
    # The first t trials of a larger search are the t-trial search.
    assert S.quasirandom(7, 3, MIXED_DISTS) == a[:7]


def test_from_unit_is_the_inverse_cdf():
    u = np.random.default_rng(0).random(200)
    cases = [
        (S.uniform(-2.0, 3.0), scipy.stats.uniform(-2.0, 5.0).ppf),
        (S.loguniform(1e-4, 10.0), scipy.stats.loguniform(1e-4, 10.0).ppf),
        (S.one_minus_loguniform(1e-3, 1.0), lambda x: 1.0 - scipy.stats.loguniform(1e-3, 1.0).ppf(x)),
        (S.randint(3, 9), scipy.stats.randint(3, 10).ppf),
        (S.int_loguniform(2, 500), lambda x: np.floor(scipy.stats.loguniform(2, 501).ppf(x))),
        (S.choice(["p", "q", "r", "s"]), lambda x: ["p", "q", "r", "s"][int(scipy.stats.randint(0, 4).ppf(x))]),
    ]
    for dist, ppf in cases:
        for x in u:
            want = ppf(x)
            got = dist.from_unit(x)
            if isinstance(got, str):
                assert got == want, dist
            else:
                assert got == pytest.approx(float(want), rel=1e-12, abs=1e-15), (dist, x)
    with pytest.raises(ValueError, match="u must lie in"):
        S.uniform(0, 1).from_unit(1.0)


@pytest.mark.parametrize("sequence", S.QUASIRANDOM_SEQUENCES)
def test_discrepancy_below_random_search(sequence):
    # Through the public search: uniform(0, 1) marginals give the unit-cube points themselves.
    dists = {f"k{j}": S.uniform(0.0, 1.0) for j in range(3)}
    n = 64
    quasi = [qmc.discrepancy(np.array([list(p.values()) for p in S.quasirandom(n, s, dists, sequence=sequence)]))
             for s in range(5)]
    rand = [qmc.discrepancy(np.array([list(p.values()) for p in S.random(n, s, dists)])) for s in range(5)]
    assert max(quasi) < min(rand), (quasi, rand)
    # Unscrambled, unshifted reference: the same order of magnitude as scipy's own sequence.
    plain = qmc.discrepancy(qmc.Halton(3, scramble=False).random(n + 1)[1:])
    assert np.mean(quasi) < 3 * plain


def test_marginals_are_the_distributions():
    # A loguniform marginal: log10 of 128 quasi-random values is spread evenly over the decades.
    vals = S.quasirandom(128, 0, {"lr": S.loguniform(1e-4, 1.0)}).values("lr")
    res = scipy.stats.kstest(np.log10(vals), scipy.stats.uniform(-4, 4).cdf)
    assert res.statistic < 0.02  # random draws would give about 0.08 at this size


def test_bad_input():
    with pytest.raises(ValueError, match="sequence='halten'.*did you mean 'halton'"):
        S.quasirandom(4, 0, MIXED_DISTS, sequence="halten")
    with pytest.raises(ValueError, match="trials=0"):
        S.quasirandom(0, 0, MIXED_DISTS)
    with pytest.raises(ValueError, match="seed=-1"):
        S.quasirandom(4, -1, MIXED_DISTS)
    with pytest.raises(ValueError, match="at least one distribution"):
        S.quasirandom(4, 0, {})


# ----------------------------------------------------------------------------- [sweep.quasirandom]


def test_config_table_and_combination_with_grid():
    table = {"quasirandom": {"trials": 5, "seed": 3, "sequence": "sobol",
                             "optimizer": {"learning_rate": {"loguniform": [1e-4, 1.0]}}},
             "grid": {"optimizer": {"name": ["sgd", "adam"]}}, "seeds": 2}
    sp = S.from_config(table)
    want = S.quasirandom(5, 3, {"optimizer.learning_rate": S.loguniform(1e-4, 1.0)}, sequence="sobol")
    assert len(sp) == 2 * 5 * 2
    assert sp.values("optimizer.learning_rate")[:10:2] == want.values("optimizer.learning_rate")
    # The same keys as a random search: the random trials, then the quasi-random ones.
    both = S.from_config({"random": {"trials": 2, "optimizer": {"learning_rate": {"uniform": [0.0, 1.0]}}},
                          "quasirandom": {"trials": 3, "optimizer": {"learning_rate": {"uniform": [0.0, 1.0]}}}})
    assert len(both) == 5
    assert both.values("optimizer.learning_rate")[2:] == S.quasirandom(
        3, 0, {"optimizer.learning_rate": S.uniform(0.0, 1.0)}).values("optimizer.learning_rate")


@pytest.mark.parametrize("table, message", [
    ({"seed": 1, "optimizer": {"learning_rate": {"uniform": [0, 1]}}}, "sweep.quasirandom.trials is required"),
    ({"trials": 0, "optimizer": {"learning_rate": {"uniform": [0, 1]}}}, "sweep.quasirandom.trials=0"),
    ({"trials": 3, "sequence": "sobel", "optimizer": {"learning_rate": {"uniform": [0, 1]}}},
     "sweep.quasirandom.sequence = 'sobel'.*did you mean 'sobol'"),
    ({"trials": 3}, "sweep.quasirandom has no distributions"),
    ({"trials": 3, "optimizer": {"learning_rate": {"lognormal": [0, 1]}}},
     "sweep.quasirandom.optimizer.learning_rate: unknown distribution 'lognormal'"),
    ({"trials": 3, "lr": 0.1}, r"sweep.quasirandom.lr = 0.1: distributions go in section tables"),
])
def test_config_bad_input_names_the_key(table, message):
    with pytest.raises(ValueError, match=message):
        S.from_config({"quasirandom": table})


TOML = """
[data]
dataset = "moons"
n_samples = 60
val_fraction = 0.25
[model]
hidden = [4]
[train]
epochs = 3
[optimizer]
name = "sgd"
learning_rate = 0.1
[sweep]
seeds = 1
[sweep.quasirandom]
trials = 4
seed = 5
[sweep.quasirandom.optimizer]
learning_rate = { loguniform = [1e-3, 1.0] }
"""


def test_cli_sweep_runs_the_quasirandom_points(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    cfg = tmp_path / "q.toml"
    cfg.write_text(TOML)
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out"), "--no-report", "--devices", "1"]) == 0
    with open(tmp_path / "out" / "runs.csv") as f:
        lrs = [float(row["optimizer.learning_rate"]) for row in csv.DictReader(f)]
    want = S.quasirandom(4, 5, {"optimizer.learning_rate": S.loguniform(1e-3, 1.0)}).values("optimizer.learning_rate")
    assert lrs == pytest.approx(want, rel=1e-12)
    assert all(math.isfinite(x) for x in lrs)
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace("trials = 4", "trials = 0"))
    capsys.readouterr()
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad_out"), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "sweep.quasirandom.trials=0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad_out").exists()
