"""The results table: runs.csv round trip, summary.json, aggregation, expected max, steps to target."""

import csv
import itertools
import json
import math
import os
import statistics
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxopt_lab.sweep import records as R


def bits(x):
    return struct.pack("<d", x)


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return bits(a) == bits(b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def metric_row(run, **kw):
    row = {
        "run": run,
        "seed": 0,
        "final_train_loss": 0.5,
        "final_train_accuracy": 0.75,
        "final_val_loss": 0.6,
        "final_val_accuracy": 0.7,
        "best_val_loss": 0.55,
        "best_epoch": 3,
        "epochs_run": 10,
        "diverged": False,
    }
    row.update(kw)
    return row


# ----------------------------------------------------------------------------- runs.csv


def test_columns_order_matches_spec(tmp_path):
    rows = [
        {**metric_row(0), "optimizer.learning_rate": 0.1, "optimizer.momentum": 0.9, "steps_to_target": 4},
        {**metric_row(1), "optimizer.learning_rate": 0.2, "optimizer.momentum": 0.0, "extra2": "x"},
    ]
    header = R.write_runs_csv(
        tmp_path / "runs.csv", rows, ["optimizer.learning_rate", "seed", "optimizer.momentum"]
    )
    expected = [
        "run",
        "optimizer.learning_rate",
        "optimizer.momentum",
        "seed",
        "final_train_loss",
        "final_train_accuracy",
        "final_val_loss",
        "final_val_accuracy",
        "best_val_loss",
        "best_epoch",
        "epochs_run",
        "diverged",
        "steps_to_target",
        "extra2",
    ]
    assert header == expected
    with open(tmp_path / "runs.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == expected
    assert table[1][-3:] == ["false", "4", ""]
    assert table[2][-2:] == ["", "x"]
    assert len(table) == 3


def test_round_trip_is_bit_exact(tmp_path):
    tricky = [0.1 + 0.2, 1e-300, -0.0, 5e-324, 1.7976931348623157e308, math.nan, math.inf, -math.inf, 1 / 3]
    rows = []
    for i, x in enumerate(tricky):
        rows.append(
            metric_row(
                i,
                seed=i * 7,
                final_train_loss=x,
                final_val_loss=None,
                final_val_accuracy=None,
                best_val_loss=None,
                best_epoch=None,
                diverged=bool(i % 2),
                **{
                    "model.activation": "relu",
                    "model.hidden": (20, 20),
                    "optimizer.nesterov": True,
                    "optimizer.learning_rate": float(np.float32(0.1)),
                    "train.batch_size": 32,
                },
            )
        )
    swept = [
        "model.activation",
        "model.hidden",
        "optimizer.nesterov",
        "optimizer.learning_rate",
        "train.batch_size",
    ]
    R.write_runs_csv(tmp_path / "runs.csv", rows, swept)
    back = R.read_runs_csv(tmp_path / "runs.csv")
    assert len(back) == len(rows)
    for orig, got in zip(rows, back, strict=True):
        assert set(got) == set(orig)
        for k, v in orig.items():
            assert same_value(v, got[k]), (k, v, got[k])


def test_cells_for_missing_metrics_and_numpy_values(tmp_path):
    rows = [
        {
            "run": np.int64(0),
            "x": np.float32(0.1),
            "seed": np.uint32(3),
            "final_train_loss": np.float64(0.25),
            "best_epoch": np.float32(4.0),
            "diverged": np.bool_(True),
        },
    ]
    R.write_runs_csv(tmp_path / "runs.csv", rows, ["x"])
    with open(tmp_path / "runs.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["x"] == repr(float(np.float32(0.1)))
    assert row["seed"] == "3" and row["best_epoch"] == "4" and row["diverged"] == "true"
    assert row["final_val_accuracy"] == "" and row["epochs_run"] == ""
    back = R.read_runs_csv(tmp_path / "runs.csv")[0]
    assert back["x"] == float(np.float32(0.1)) and back["final_val_loss"] is None and back["diverged"] is True


@settings(max_examples=25, deadline=None)
@given(
    xs=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=5),
    ints=st.integers(-(2**63), 2**63),
)
def test_round_trip_any_float(tmp_path_factory, xs, ints):
    path = tmp_path_factory.mktemp("rt") / "runs.csv"
    rows = [metric_row(i, final_train_loss=x, **{"h": ints}) for i, x in enumerate(xs)]
    R.write_runs_csv(path, rows, ["h"])
    back = R.read_runs_csv(path)
    for r, b in zip(rows, back, strict=True):
        assert same_value(r["final_train_loss"], b["final_train_loss"])
        assert b["h"] == ints


@pytest.mark.parametrize(
    "rows, swept, match",
    [
        ([{"run": 0}], ["optimizer.lr"], "row 0 has no value for swept key 'optimizer.lr'"),
        ([{"a": "1.5"}], ["a"], "column 'a': '1.5' would read back as 1.5"),
        ([{"a": "true"}], ["a"], "column 'a': 'true' would read back as True"),
        ([{"a": ""}], ["a"], "would read back as None"),
        ([{"a": 1, "history": np.zeros(3)}], ["a"], "column 'history': an array of shape \\(3,\\)"),
        ([{"a": 1, "history": {"x": 1}}], ["a"], "column 'history': .* is not a scalar"),
        ([{"diverged": 1}], ["diverged"], "swept key 'diverged' clashes"),
        ([{"a": 1}], ["a", "a"], "swept key 'a' is listed twice"),
    ],
)
def test_write_runs_csv_errors(tmp_path, rows, swept, match):
    with pytest.raises(ValueError, match=match):
        R.write_runs_csv(tmp_path / "runs.csv", rows, swept)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "out" / "runs.csv"
    R.write_runs_csv(path, [metric_row(0, a=1)], ["a"])
    before = path.read_bytes()
    with pytest.raises(ValueError):
        R.write_runs_csv(path, [metric_row(0, a=object())], ["a"])
    assert path.read_bytes() == before
    R.write_runs_csv(path, [metric_row(0, a=2), metric_row(1, a=3)], ["a"])
    assert [r["a"] for r in R.read_runs_csv(path)] == [2, 3]
    assert os.listdir(path.parent) == ["runs.csv"]


# ----------------------------------------------------------------------------- aggregation


def sweep_rows():
    rng = np.random.default_rng(0)
    rows = []
    run = 0
    for lr, act in itertools.product([0.1, 0.01], ["relu", "tanh"]):
        for seed in range(5):
            diverged = lr == 0.1 and act == "tanh" and seed in (1, 3)
            rows.append(
                metric_row(
                    run,
                    seed=seed,
                    final_train_loss=math.nan if diverged else float(rng.uniform()),
                    final_val_accuracy=float(rng.uniform()),
                    best_epoch=int(rng.integers(1, 10)),
                    diverged=diverged,
                    **{"optimizer.learning_rate": lr, "model.activation": act},
                )
            )
            run += 1
    return rows


def test_aggregate_matches_statistics_module():
    rows = sweep_rows()
    rows[0]["final_val_accuracy"] = None  # a missing value is skipped
    by = ["optimizer.learning_rate", "model.activation"]
    metrics = ["final_train_loss", "final_val_accuracy", "best_epoch"]
    agg = R.aggregate(rows, by, metrics)
    assert [(a["optimizer.learning_rate"], a["model.activation"]) for a in agg] == list(
        itertools.product([0.1, 0.01], ["relu", "tanh"])
    )
    for a in agg:
        members = [r for r in rows if all(r[k] == a[k] for k in by)]
        assert a["n"] == len(members) == 5
        assert a["n_diverged"] == sum(r["diverged"] for r in members)
        for m in metrics:
            vals = [r[m] for r in members if not r["diverged"] and r[m] is not None]
            assert a[f"{m}_n"] == len(vals)
            assert a[f"{m}_mean"] == pytest.approx(statistics.fmean(vals), rel=1e-12)
            assert a[f"{m}_std"] == pytest.approx(statistics.stdev(vals), rel=1e-12)
            assert a[f"{m}_median"] == pytest.approx(statistics.median(vals), rel=1e-12)
            assert a[f"{m}_min"] == min(vals) and a[f"{m}_max"] == max(vals)
    assert agg[1]["n_diverged"] == 2 and agg[1]["final_train_loss_n"] == 3


def test_aggregate_include_diverged_and_empty_groups():
    rows = [
        metric_row(0, g=1, final_val_accuracy=0.5),
        metric_row(1, g=1, final_val_accuracy=0.9, diverged=True),
        metric_row(2, g=2, final_val_accuracy=None),
    ]
    agg = R.aggregate(rows, ["g"], ["final_val_accuracy"])
    assert agg[0]["final_val_accuracy_mean"] == 0.5 and math.isnan(agg[0]["final_val_accuracy_std"])
    assert agg[1]["final_val_accuracy_n"] == 0 and math.isnan(agg[1]["final_val_accuracy_mean"])
    incl = R.aggregate(rows, ["g"], ["final_val_accuracy"], include_diverged=True)
    assert incl[0]["final_val_accuracy_mean"] == pytest.approx(0.7)
    assert incl[0]["final_val_accuracy_std"] == pytest.approx(statistics.stdev([0.5, 0.9]))
    with pytest.raises(ValueError, match="row 0 has no key 'h' to group by"):
        R.aggregate(rows, ["h"], ["final_val_accuracy"])


def test_best_run_and_best_config():
    rows = sweep_rows()
    ok = [r for r in rows if not r["diverged"]]
    assert R.best_run(rows, "final_train_loss") is min(ok, key=lambda r: r["final_train_loss"])
    assert R.best_run(rows, "final_val_accuracy", "max") is max(ok, key=lambda r: r["final_val_accuracy"])
    tie = [metric_row(0, final_val_loss=0.1), metric_row(1, final_val_loss=0.1)]
    assert R.best_run(tie, "final_val_loss")["run"] == 0
    assert R.best_run([metric_row(0, final_val_loss=None)], "final_val_loss") is None

    by = ["optimizer.learning_rate", "model.activation"]
    agg = R.aggregate(rows, by, ["final_val_accuracy"])
    clean = [a for a in agg if a["n_diverged"] == 0]
    best = R.best_config(agg, "final_val_accuracy", "max")
    assert best is max(clean, key=lambda a: a["final_val_accuracy_mean"])
    assert R.best_config(agg, "final_val_accuracy_mean", "max") is best
    best_any = R.best_config(agg, "final_val_accuracy", "max", allow_diverged=True)
    assert best_any is max(agg, key=lambda a: a["final_val_accuracy_mean"])
    with pytest.raises(ValueError, match="mode='best' is not a valid choice; valid choices: min, max"):
        R.best_run(rows, "final_val_loss", "best")
    with pytest.raises(ValueError, match="'final_val_loss_mean' is not a column"):
        R.best_config(agg, "final_val_loss")


# ------------------------------------------------------------------ expected max (Dodge et al. 2019)


def enumerate_expected_max(values, k):
    """Exact E[max] by enumerating all n^k equally likely draws with replacement."""
    n = len(values)
    return sum(max(values[j] for j in idx) for idx in itertools.product(range(n), repeat=k)) / n**k


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_expected_max_equals_exhaustive_enumeration(k):
    values = [0.71, 0.5, 0.93, 0.5, 0.62]
    assert R.expected_max(values, k) == pytest.approx(enumerate_expected_max(values, k), rel=1e-12)
    neg_min = -enumerate_expected_max([-v for v in values], k)
    assert R.expected_min(values, k) == pytest.approx(neg_min, rel=1e-12)


def test_expected_max_closed_form_n2_and_limits():
    a, b = 0.3, 0.8
    for k in range(1, 8):
        assert R.expected_max([b, a], k) == pytest.approx(a * 0.5**k + b * (1 - 0.5**k), rel=1e-14)
        assert R.expected_min([b, a], k) == pytest.approx(b * 0.5**k + a * (1 - 0.5**k), rel=1e-14)
    values = np.random.default_rng(1).normal(size=17)
    assert R.expected_max(values, 1) == pytest.approx(values.mean(), rel=1e-12)
    assert R.expected_max(values, 10_000) == pytest.approx(values.max(), rel=1e-12)
    curve = R.expected_max(values, np.arange(1, 30))
    assert curve.shape == (29,) and np.all(np.diff(curve) >= -1e-15)


def test_expected_max_agrees_with_monte_carlo():
    rng = np.random.default_rng(2)
    values = rng.uniform(0.6, 0.95, size=40)
    ks = [1, 5, 20]
    draws = rng.choice(values, size=(100_000, max(ks)), replace=True)
    for k, exact in zip(ks, R.expected_max(values, ks), strict=True):
        mc = draws[:, :k].max(axis=1)
        assert abs(mc.mean() - exact) < 5 * mc.std() / math.sqrt(len(mc))


def test_expected_max_input_checks():
    assert R.expected_max([1.0, math.inf], 3) == math.inf
    assert R.expected_max([-math.inf, 1.0], 2000) == 1.0  # weight of -inf underflows; the limit is 1
    with pytest.raises(ValueError, match="values contain NaN"):
        R.expected_max([0.1, math.nan], 2)
    with pytest.raises(ValueError, match="values is empty"):
        R.expected_max([], 2)
    with pytest.raises(ValueError, match="k=0 must be integers >= 1"):
        R.expected_max([0.1], 0)
    with pytest.raises(ValueError, match="must be integers"):
        R.expected_max([0.1], 1.5)


# ----------------------------------------------------------------------------- steps / time to target


def loop_steps(history, target, mode):
    for i, v in enumerate(history):
        if (v >= target) if mode == "max" else (v <= target):
            return i + 1
    return math.inf


def test_steps_to_target_matches_a_loop():
    rng = np.random.default_rng(3)
    hist = np.cumsum(rng.uniform(0, 0.1, size=(6, 12)), axis=1)
    hist[2, 4] = math.nan
    for mode, target in (("max", 0.5), ("min", 0.2)):
        h = hist if mode == "max" else 1.0 - hist
        got = R.steps_to_target(h, target, mode)
        assert got.shape == (6,) and got.dtype == np.float64
        assert got.tolist() == [loop_steps(row, target, mode) for row in h]
        for row in h:
            single = R.steps_to_target(row, target, mode)
            assert single == loop_steps(row, target, mode)
            assert isinstance(single, int) or single == math.inf
    assert R.steps_to_target([0.1, 0.2], 0.9) == math.inf
    assert R.steps_to_target([0.95, 0.2], 0.9) == 1
    assert R.steps_to_target(np.zeros((2, 3, 0)), 0.5).tolist() == [[math.inf] * 3] * 2
    with pytest.raises(ValueError, match="epoch axis"):
        R.steps_to_target(0.5, 0.5)


def test_time_to_target():
    hist = np.array([[0.1, 0.5, 0.9, 0.95], [0.2, 0.3, 0.4, 0.45]])
    assert R.time_to_target(hist, 0.9, 2.0).tolist() == [6.0, math.inf]
    secs = np.array([1.0, 0.5, 0.25, 4.0])
    assert R.time_to_target(hist, 0.9, secs).tolist() == [1.75, math.inf]
    assert R.time_to_target(hist[0], 0.5, secs) == 1.5
    assert R.time_to_target(hist[1], 0.3, 1.0, mode="min") == 1.0
    with pytest.raises(ValueError, match="epoch_seconds"):
        R.time_to_target(hist, 0.9, -1.0)


# ----------------------------------------------------------------------------- summary.json


def test_summary_json_encodes_non_finite_as_null(tmp_path):
    summary = {
        "runs": np.int64(4),
        "wall_seconds": np.float32(1.5),
        "runs_per_second": math.inf,
        "best": {
            "config": {"optimizer.learning_rate": 0.1, "model.hidden": (20, 20)},
            "final_val_loss": math.nan,
        },
        "curve": np.array([0.5, np.nan, -np.inf]),
        "ok": np.bool_(True),
        "devices": ["cpu:0"],
    }
    path = tmp_path / "summary.json"
    R.write_summary_json(path, summary)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text)
    assert back == R.read_summary_json(path)
    assert back == {
        "runs": 4,
        "wall_seconds": 1.5,
        "runs_per_second": None,
        "best": {
            "config": {"optimizer.learning_rate": 0.1, "model.hidden": [20, 20]},
            "final_val_loss": None,
        },
        "curve": [0.5, None, None],
        "ok": True,
        "devices": ["cpu:0"],
    }
    with pytest.raises(ValueError, match="summary.best: .*cannot be written as JSON"):
        R.write_summary_json(path, {"best": object()})
    assert json.loads(path.read_text()) == back
    assert os.listdir(tmp_path) == ["summary.json"]
