"""Search spaces: grid/random/seeds algebra, the `[sweep]` config table, and grouping for the runner."""

import itertools
import math
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.sweep import space as S

# A [sweep] table whose grid and random search cover the same keys (docs/guide.md, `[sweep]`).
EXAMPLE_SWEEP_TOML = """
[sweep]
seeds = 32               # 0..31, or an explicit list such as [0, 5]
chunk_size = 256         # optional: runs per compiled chunk

[sweep.grid.optimizer]   # a grid over any numeric or categorical key of any section
learning_rate = [0.001, 0.01, 0.1]
momentum = [0.0, 0.9]

[sweep.random]           # or random search
trials = 64
seed = 0
[sweep.random.optimizer]
learning_rate = { loguniform = [1e-4, 1.0] }
momentum = { uniform = [0.0, 0.99] }
"""


def numpy_random_reference(trials, seed, specs):
    """Direct numpy computation of the documented scheme: raw PCG64 words, trial-major, key order."""
    bits = np.random.PCG64(seed)

    def unit():
        return float(np.ldexp(np.float64(bits.random_raw() >> np.uint64(11)), -53))

    def below(m):
        while True:
            w = int(bits.random_raw())
            if w < 2**64 - 2**64 % m:
                return w % m

    out = []
    for _ in range(trials):
        point = {}
        for key, (name, args) in specs.items():
            if name == "uniform":
                point[key] = args[0] + (args[1] - args[0]) * unit()
            elif name == "loguniform":
                lo, hi = math.log(args[0]), math.log(args[1])
                point[key] = math.exp(lo + (hi - lo) * unit())
            elif name == "choice":
                point[key] = args[below(len(args))]
            elif name == "randint":
                point[key] = args[0] + below(args[1] - args[0] + 1)
            else:
                raise AssertionError(name)
        out.append(point)
    return out


RANDOM_DISTRIBUTIONS = {
    "optimizer.learning_rate": ("loguniform", (1e-4, 1.0)),
    "optimizer.momentum": ("uniform", (0.0, 0.99)),
    "model.activation": ("choice", ("relu", "tanh", "gelu")),
    "train.batch_size": ("randint", (16, 128)),
}
DISTS = {
    "optimizer.learning_rate": S.loguniform(1e-4, 1.0),
    "optimizer.momentum": S.uniform(0.0, 0.99),
    "model.activation": S.choice(["relu", "tanh", "gelu"]),
    "train.batch_size": S.randint(16, 128),
}


# ----------------------------------------------------------------------------- Space basics


def test_grid_is_nested_loops_last_key_fastest():
    axes = {
        "optimizer.learning_rate": [0.001, 0.01, 0.1],
        "optimizer.momentum": [0.0, 0.9],
        "model.activation": ["relu", "tanh"],
    }
    expected = []
    for lr in axes["optimizer.learning_rate"]:
        for mom in axes["optimizer.momentum"]:
            for act in axes["model.activation"]:
                expected.append(
                    {"optimizer.learning_rate": lr, "optimizer.momentum": mom, "model.activation": act}
                )
    sp = S.grid(axes)
    assert sp.points() == expected
    assert list(sp) == expected
    assert len(sp) == 12
    assert sp.keys == tuple(axes)
    assert sp[5] == expected[5]
    assert sp[2:4].points() == expected[2:4]


def test_points_are_copies_and_values_are_python_scalars():
    sp = S.grid({"a": np.array([1, 2]), "b": [np.float32(0.5)], "c": [np.str_("x")], "d": [np.bool_(True)]})
    pts = sp.points()
    pts[0]["a"] = 99
    assert sp[0]["a"] == 1
    assert [type(sp[0][k]) for k in "abcd"] == [int, float, str, bool]
    assert sp.values("a") == [1, 2]
    with pytest.raises(KeyError, match="did you mean 'a'"):
        sp.values("aa")


def test_empty_single_seeds():
    assert len(S.Space.empty()) == 1 and S.Space.empty().points() == [{}]
    assert S.grid({}) == S.Space.empty()
    assert S.single({}) == S.Space.empty()
    assert S.single({"model.hidden": [20, 20], "seed": 3}).points() == [{"model.hidden": (20, 20), "seed": 3}]
    assert S.seeds(4).points() == [{"seed": s} for s in range(4)]
    assert S.seeds([0, 5]).points() == [{"seed": 0}, {"seed": 5}]


def test_product_order_and_operator():
    a = S.grid({"x": [1, 2]})
    b = S.grid({"y": ["p", "q", "r"]})
    c = S.seeds(2)
    expected = [{"x": x, "y": y, "seed": s} for x, y, s in itertools.product([1, 2], "pqr", [0, 1])]
    assert S.product(a, b, c).points() == expected
    assert (a * b * c).points() == expected
    assert S.product() == S.Space.empty()
    assert a * S.Space.empty() == a


def test_concat_and_operator():
    a = S.grid({"x": [1, 2], "y": [0.5]})
    b = S.Space([{"y": 0.25, "x": 7}])
    sp = a + b
    assert sp.keys == ("x", "y")
    assert sp.points() == [{"x": 1, "y": 0.5}, {"x": 2, "y": 0.5}, {"x": 7, "y": 0.25}]
    assert S.concat(a, b) == sp
    with pytest.raises(ValueError, match="missing: \\['y'\\]"):
        S.concat(a, S.grid({"x": [3]}))
    with pytest.raises(ValueError, match="at least one space"):
        S.concat()


def test_space_from_points_needs_same_keys():
    with pytest.raises(ValueError, match="point 1 has different keys"):
        S.Space([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="at least one point"):
        S.Space([])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: S.grid({"optimizer.learning_rate": []}),
            "optimizer.learning_rate: a grid axis must have at least one",
        ),
        (
            lambda: S.grid({"optimizer.learning_rate": 0.1}),
            "optimizer.learning_rate: a grid axis must be a list",
        ),
        (lambda: S.grid({"model.activation": "relu"}), "model.activation: a grid axis must be a list"),
        (lambda: S.grid({"optimizer.momentum": [0.9, 0.9]}), "optimizer.momentum: value 0.9 appears twice"),
        (lambda: S.grid({"optimizer.momentum": [{"a": 1}]}), "optimizer.momentum=.* is not a scalar"),
        (lambda: S.grid({"model.hidden": [[1, [2]]]}), "model.hidden=.* is not a scalar or a flat list"),
        (lambda: S.grid({"optimizer.momentum": [None]}), "optimizer.momentum=None is not a scalar"),
        (lambda: S.grid({"optimizer.momentum": [math.nan]}), "optimizer.momentum: NaN"),
        (lambda: S.grid({"": [1]}), "not a valid key"),
        (lambda: S.uniform(1.0, 0.5), "uniform low=1.0 > high=0.5"),
        (lambda: S.uniform(0.0, math.inf), "uniform high=inf must be a finite number"),
        (lambda: S.loguniform(0.0, 1.0), "loguniform low=0.0 is out of range: valid range is \\(0, inf\\)"),
        (lambda: S.loguniform(-1.0, 1.0), "loguniform low=-1.0 is out of range"),
        (lambda: S.loguniform(1.0, 0.1), "loguniform low=1.0 > high=0.1"),
        (lambda: S.randint(5, 2), "randint low=5 > high=2"),
        (lambda: S.randint(1.5, 2), "randint low=1.5 must be an integer"),
        (lambda: S.int_loguniform(0, 8), "int_loguniform low=0 is out of range"),
        (lambda: S.choice([]), "choice values=\\[\\] must be a non-empty list"),
        (lambda: S.choice("abc"), "must be a non-empty list"),
        (lambda: S.random(0, 0, DISTS), "trials=0 is out of range: valid range is \\[1, inf\\)"),
        (lambda: S.random(3, -1, DISTS), "seed=-1 is out of range"),
        (lambda: S.random(3, 0, {}), "at least one distribution"),
        (
            lambda: S.random(3, 0, {"optimizer.learning_rate": 0.1}),
            "optimizer.learning_rate=0.1 is not a Distribution",
        ),
        (lambda: S.seeds(0), "seeds=0 is out of range: valid range is \\[1, inf\\)"),
        (lambda: S.seeds([]), "list of seeds is empty"),
        (lambda: S.seeds([0, -3]), "seed -3 is out of range"),
        (lambda: S.seeds([1, 1]), "seed 1 appears twice"),
        (lambda: S.seeds(True), "must be a positive integer or a list"),
        (lambda: S.grid({"x": [1]}) * S.grid({"x": [2]}), "key 'x' is in two spaces of a product"),
    ],
)
def test_bad_input_names_the_key(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------- random search


def test_random_matches_direct_numpy_computation():
    for seed in (0, 1, 12345):
        sp = S.random(50, seed, DISTS)
        assert sp.points() == numpy_random_reference(50, seed, RANDOM_DISTRIBUTIONS)
        assert sp.keys == tuple(DISTS)


def test_random_prefix_property_and_seed_dependence():
    big = S.random(40, 3, DISTS)
    assert S.random(10, 3, DISTS).points() == big.points()[:10]
    assert S.random(10, 4, DISTS).points() != big.points()[:10]


def test_random_is_identical_in_another_process():
    code = (
        "from jaxopt_lab.sweep import space as S\n"
        "sp = S.random(20, 7, {'a': S.loguniform(1e-5, 1.0), 'b': S.choice(['x', 'y']), 'c': S.randint(0, 9),"
        " 'd': S.int_loguniform(1, 512)})\n"
        "print(repr(sp.points()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    here = S.random(
        20,
        7,
        {
            "a": S.loguniform(1e-5, 1.0),
            "b": S.choice(["x", "y"]),
            "c": S.randint(0, 9),
            "d": S.int_loguniform(1, 512),
        },
    )
    assert out.strip() == repr(here.points())


@settings(max_examples=20, deadline=None)
@given(
    low=st.floats(-1e3, 1e3),
    width=st.floats(0, 1e3),
    llow=st.floats(1e-8, 1e2),
    lratio=st.floats(1.0, 1e6),
    ilow=st.integers(-50, 50),
    iwidth=st.integers(0, 20),
    seed=st.integers(0, 2**32),
)
def test_random_draws_stay_in_their_ranges(low, width, llow, lratio, ilow, iwidth, seed):
    high, lhigh, ihigh = low + width, llow * lratio, ilow + iwidth
    sp = S.random(
        30,
        seed,
        {
            "u": S.uniform(low, high),
            "l": S.loguniform(llow, lhigh),
            "i": S.randint(ilow, ihigh),
            "g": S.int_loguniform(1 + abs(ilow), 1 + abs(ilow) + iwidth),
        },
    )
    for p in sp:
        assert low <= p["u"] <= high
        assert llow * (1 - 1e-12) <= p["l"] <= lhigh * (1 + 1e-12)
        assert ilow <= p["i"] <= ihigh and isinstance(p["i"], int)
        assert 1 + abs(ilow) <= p["g"] <= 1 + abs(ilow) + iwidth and isinstance(p["g"], int)


def test_randint_includes_both_ends_and_choice_covers_values():
    sp = S.random(400, 0, {"i": S.randint(2, 4), "c": S.choice(["a", "b", "c"])})
    assert set(sp.values("i")) == {2, 3, 4}
    assert set(sp.values("c")) == {"a", "b", "c"}


def test_int_loguniform_frequencies_match_the_documented_law():
    low, high, n = 1, 8, 20000
    draws = np.asarray(S.random(n, 11, {"k": S.int_loguniform(low, high)}).values("k"))
    # P(k) = log((k+1)/k) / log((high+1)/low), from floor(exp(U(log low, log(high+1)))).
    for k in range(low, high + 1):
        p = math.log((k + 1) / k) / math.log((high + 1) / low)
        freq = np.mean(draws == k)
        assert abs(freq - p) < 4 * math.sqrt(p * (1 - p) / n), (k, freq, p)


def test_loguniform_is_uniform_in_log_space():
    draws = np.log10(S.random(4000, 5, {"lr": S.loguniform(1e-4, 1.0)}).values("lr"))
    counts, _ = np.histogram(draws, bins=4, range=(-4, 0))
    # Each decade gets a quarter of the draws (binomial sd ~ 27).
    assert np.all(np.abs(counts - 1000) < 130), counts


# ----------------------------------------------------------------------------- from_config


def nested_loop_points(lrs, moms, n_seeds):
    pts = []
    for lr in lrs:
        for mom in moms:
            for s in range(n_seeds):
                pts.append({"optimizer.learning_rate": lr, "optimizer.momentum": mom, "seed": s})
    return pts


def test_from_config_spec_example_grid_part():
    sweep = tomllib.loads(EXAMPLE_SWEEP_TOML)["sweep"]
    del sweep["random"]
    sp = S.from_config(sweep)
    assert len(sp) == 3 * 2 * 32
    assert sp.keys == ("optimizer.learning_rate", "optimizer.momentum", "seed")
    assert sp.points() == nested_loop_points([0.001, 0.01, 0.1], [0.0, 0.9], 32)


def test_from_config_spec_example_random_part():
    sweep = tomllib.loads(EXAMPLE_SWEEP_TOML)["sweep"]
    del sweep["grid"]
    sp = S.from_config(sweep)
    assert len(sp) == 64 * 32
    ref = numpy_random_reference(
        64,
        0,
        {
            "optimizer.learning_rate": ("loguniform", (1e-4, 1.0)),
            "optimizer.momentum": ("uniform", (0.0, 0.99)),
        },
    )
    expected = [{**p, "seed": s} for p in ref for s in range(32)]
    assert sp.points() == expected


def test_from_config_spec_example_whole_is_grid_then_random():
    sweep = tomllib.loads(EXAMPLE_SWEEP_TOML)["sweep"]
    sp = S.from_config(sweep)
    parts = S.config_parts(sweep)
    assert {k: len(v) for k, v in parts.items()} == {"grid": 6, "random": 64, "seeds": 32}
    assert len(sp) == (6 + 64) * 32
    grid_only = {k: v for k, v in sweep.items() if k != "random"}
    random_only = {k: v for k, v in sweep.items() if k != "grid"}
    assert sp.points() == S.from_config(grid_only).points() + S.from_config(random_only).points()


def test_from_config_disjoint_grid_and_random_is_a_product():
    sweep = {
        "grid": {"optimizer": {"name": ["sgd", "adam"]}},
        "random": {"trials": 3, "seed": 2, "optimizer": {"learning_rate": {"loguniform": [1e-3, 1.0]}}},
        "seeds": [0, 5],
    }
    sp = S.from_config(sweep)
    ref = numpy_random_reference(3, 2, {"optimizer.learning_rate": ("loguniform", (1e-3, 1.0))})
    expected = [
        {"optimizer.name": n, "optimizer.learning_rate": r["optimizer.learning_rate"], "seed": s}
        for n in ["sgd", "adam"]
        for r in ref
        for s in [0, 5]
    ]
    assert sp.points() == expected


def test_from_config_defaults_and_every_distribution():
    assert S.from_config({}).points() == [{"seed": 0}]
    assert S.from_config({"chunk_size": 8}).points() == [{"seed": 0}]
    sweep = {
        "random": {
            "trials": 5,
            "model": {"activation": {"choice": ["relu", "tanh"]}, "hidden": {"choice": [[8], [16, 16]]}},
            "train": {"batch_size": {"int": [8, 64]}, "epochs": {"randint": [1, 3]}},
            "optimizer": {
                "schedule": {"decay_rate": {"uniform": [0.5, 0.9]}},
                "eps": {"int_loguniform": [1, 100]},
            },
        }
    }
    sp = S.from_config(sweep)
    assert sp.keys == (
        "model.activation",
        "model.hidden",
        "train.batch_size",
        "train.epochs",
        "optimizer.schedule.decay_rate",
        "optimizer.eps",
        "seed",
    )
    direct = S.random(
        5,
        0,
        {
            "model.activation": S.choice(["relu", "tanh"]),
            "model.hidden": S.choice([[8], [16, 16]]),
            "train.batch_size": S.randint(8, 64),
            "train.epochs": S.randint(1, 3),
            "optimizer.schedule.decay_rate": S.uniform(0.5, 0.9),
            "optimizer.eps": S.int_loguniform(1, 100),
        },
    ) * S.seeds(1)
    assert sp == direct
    assert all(isinstance(p["model.hidden"], tuple) for p in sp)


def test_from_config_grid_over_hidden_sizes_and_seed_list():
    sp = S.from_config({"grid": {"model": {"hidden": [[20], [20, 20]]}}, "seeds": [3, 1]})
    assert sp.points() == [
        {"model.hidden": (20,), "seed": 3},
        {"model.hidden": (20,), "seed": 1},
        {"model.hidden": (20, 20), "seed": 3},
        {"model.hidden": (20, 20), "seed": 1},
    ]


@pytest.mark.parametrize(
    "sweep, match",
    [
        (
            {"grid": {"optimizer": {"learning_rate": []}}},
            "sweep.grid.optimizer.learning_rate: a grid axis must have",
        ),
        (
            {"grid": {"optimizer": {"learning_rate": 0.1}}},
            "sweep.grid.optimizer.learning_rate = 0.1: a grid axis",
        ),
        ({"grid": [1, 2]}, "sweep.grid must be a table"),
        (
            {"random": {"trials": 0, "optimizer": {"lr": {"uniform": [0, 1]}}}},
            "sweep.random.trials=0 is out of range",
        ),
        ({"random": {"trials": 2.5, "optimizer": {"lr": {"uniform": [0, 1]}}}}, "sweep.random.trials=2.5"),
        ({"random": {"optimizer": {"lr": {"uniform": [0, 1]}}}}, "sweep.random.trials is required"),
        (
            {"random": {"trials": 2, "seed": -1, "optimizer": {"lr": {"uniform": [0, 1]}}}},
            "sweep.random.seed=-1",
        ),
        ({"random": {"trials": 2}}, "sweep.random has no distributions"),
        ({"random": {"trials": 2, "lr": 0.1}}, "sweep.random.lr = 0.1: distributions go in section tables"),
        (
            {"random": {"trials": 2, "optimizer": {"learning_rate": {"loguniform": [0.0, 1.0]}}}},
            "sweep.random.optimizer.learning_rate: loguniform low=0.0 is out of range",
        ),
        (
            {"random": {"trials": 2, "optimizer": {"momentum": {"uniform": [0.9, 0.1]}}}},
            "sweep.random.optimizer.momentum: uniform low=0.9 > high=0.1",
        ),
        (
            {"random": {"trials": 2, "optimizer": {"learning_rate": {"logunifrom": [1e-3, 1.0]}}}},
            "sweep.random.optimizer.learning_rate: unknown distribution 'logunifrom' "
            "\\(did you mean 'loguniform'\\?\\); "
            "valid distributions: uniform, loguniform, choice, randint, int, int_loguniform",
        ),
        (
            {"random": {"trials": 2, "optimizer": {"learning_rate": {"uniform": [0.1, 0.2], "choice": [1]}}}},
            "sweep.random.optimizer.learning_rate = .*: a distribution is one entry",
        ),
        (
            {"random": {"trials": 2, "optimizer": {"learning_rate": {"uniform": [0.1]}}}},
            "sweep.random.optimizer.learning_rate: uniform takes \\[low, high\\]",
        ),
        (
            {"random": {"trials": 2, "optimizer": {"learning_rate": [0.1, 0.2]}}},
            "sweep.random.optimizer.learning_rate = \\[0.1, 0.2\\]: write a distribution as a table",
        ),
        (
            {"random": {"trials": 2, "train": {"batch_size": {"int": [8.5, 64]}}}},
            "sweep.random.train.batch_size: randint low=8.5 must be an integer",
        ),
        ({"seeds": 0}, "sweep.seeds=0 is out of range"),
        ({"seeds": [0, -1]}, "sweep.seeds: seed -1 is out of range"),
        ({"seeds": "32"}, "sweep.seeds='32' must be a positive integer or a list"),
        (
            {
                "grid": {"optimizer": {"learning_rate": [0.1], "momentum": [0.9]}},
                "random": {"trials": 2, "optimizer": {"learning_rate": {"uniform": [0.1, 0.2]}}},
            },
            "sweep.grid and sweep.random both sweep \\['optimizer.learning_rate'\\] but not the same keys",
        ),
        ({"grid": {"seed": [1, 2]}, "seeds": 2}, "sweep: key 'seed' is in two spaces"),
    ],
)
def test_from_config_errors_name_the_key(sweep, match):
    with pytest.raises(ValueError, match=match):
        S.from_config(sweep)


def test_from_config_other_keys_check():
    assert len(S.from_config({"seeds": 2, "chunk_size": 4}, other_keys=["chunk_size"])) == 2
    with pytest.raises(ValueError, match="unknown key sweep.seed \\(did you mean 'seeds'\\?\\)"):
        S.from_config({"seed": 2}, other_keys=["chunk_size"])
    # A grid over the seed key replaces the default seed.
    assert S.from_config({"grid": {"seed": [4, 2]}}).points() == [{"seed": 4}, {"seed": 2}]


def test_one_minus_loguniform_draws_betas_by_their_horizon():
    d = S.one_minus_loguniform(1e-3, 1.0)
    pts = S.random(4000, 0, {"b1": d}).points()
    xs = np.array([1.0 - p["b1"] for p in pts])
    assert xs.min() >= 1e-3 and xs.max() <= 1.0
    # each decade of 1 - beta equally likely (1/3 each), within 5 standard errors
    for lo in (1e-3, 1e-2, 1e-1):
        frac = np.mean((xs >= lo) & (xs < 10 * lo))
        assert abs(frac - 1 / 3) < 5 * np.sqrt(1 / 3 * 2 / 3 / 4000)
    # the formula: 1 - exp(uniform(log low, log high)) from the same words as loguniform
    same = S.random(5, 7, {"x": S.loguniform(1e-3, 1.0)}).points()
    mine = S.random(5, 7, {"x": d}).points()
    np.testing.assert_allclose([1 - p["x"] for p in same], [p["x"] for p in mine], rtol=1e-15)
    spec = S.from_config({"random": {"trials": 3, "optimizer": {"b1": {"one_minus_loguniform": [1e-2, 0.5]}}}})
    assert all(0.5 <= p["optimizer.b1"] <= 0.99 for p in spec.points())
    with pytest.raises(ValueError, match="valid range is 0 < low <= high <= 1"):
        S.one_minus_loguniform(1e-3, 2.0)
