"""`jaxopt_lab.results.load`: every results folder the project writes, read back as pandas/xarray.

The reference is the files themselves, parsed here with the csv module and numpy alone.
"""

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxopt_lab import protocols, results
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.sweep import config_sweep

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=60, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(4,)),
    train=TrainConfig(epochs=6, precision="float64"),
    optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1}),
)


def _write(cfg, out, report=False, **kw):
    res = config_sweep.run_sweep(cfg, progress=False, **kw)
    config_sweep.write_results(out, res, report=report)
    return res


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    # A diverging learning rate (NaN losses) next to calm ones, two seeds, a categorical key.
    out = tmp_path_factory.mktemp("plain")
    cfg = BASE.replace(sweep={"seeds": 2, "grid": {"optimizer": {"learning_rate": [0.1, 1e30]},
                                                   "model": {"activation": ["relu", "tanh"]}}})
    _write(cfg, out, report=True)
    return out


@pytest.fixture(scope="module")
def no_val(tmp_path_factory):
    # Without a validation split the validation metrics do not apply: empty cells.
    out = tmp_path_factory.mktemp("noval")
    cfg = BASE.replace(data=DataConfig(dataset="moons", n_samples=40, val_fraction=0.0),
                       sweep={"seeds": [3, 5]})
    _write(cfg, out)
    return out


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
    out = tmp_path_factory.mktemp("halving")
    cfg = BASE.replace(train=TrainConfig(epochs=9, precision="float64"),
                       sweep={"lanes": 4, "halving": {"min_epochs": 1, "eta": 3},
                              "random": {"trials": 9, "seed": 0,
                                         "optimizer": {"learning_rate": {"loguniform": [1e-3, 1.0]}}}})
    _write(cfg, out, report=True)
    return out


def _csv_cells(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def _assert_equals_csv(df, path, offset=0):
    """Every cell of runs.csv, parsed here independently, equals the DataFrame's value (bit for bit)."""
    header, cells = _csv_cells(path)
    assert list(df.columns)[offset:] == header
    assert len(df) == len(cells)
    for i, row in enumerate(cells):
        for col, cell in zip(header, row, strict=True):
            v = df[col].iloc[i]
            if cell == "":
                assert v is pd.NA, (col, i, v)
            elif cell in ("true", "false"):
                assert df[col].dtype == "boolean" and bool(v) is (cell == "true")
            elif re.fullmatch(r"-?\d+", cell):
                assert df[col].dtype == "Int64" and int(v) == int(cell), (col, cell, v)
            elif cell.startswith("["):
                assert tuple(v) == tuple(eval(cell))  # noqa: S307 - a JSON list of numbers
            else:
                try:
                    ref = float(cell)
                except ValueError:
                    assert df[col].dtype == "string" and v == cell
                    continue
                assert df[col].dtype == "Float64", (col, df[col].dtype)
                got = float(v)
                assert (math.isnan(ref) and math.isnan(got)) or np.float64(got).tobytes() == np.float64(ref).tobytes()


def _assert_histories(ds, path, n_runs):
    with np.load(path) as npz:
        assert np.array_equal(ds["run"].values, npz["run"])
        for k in npz.files:
            if k == "run":
                continue
            assert ds[k].dims == ("run", "epoch")
            np.testing.assert_array_equal(ds[k].values, npz[k])
    assert ds.sizes["run"] == n_runs
    assert ds["epoch"].values[0] == 1


def test_plain_sweep_round_trips(plain):
    res = results.load(plain)
    _assert_equals_csv(res.runs, plain / "runs.csv")
    _assert_histories(res.histories, plain / "histories.npz", 8)
    diverged = res.runs["diverged"].to_numpy(dtype=bool)
    assert diverged.tolist() == [False] * 4 + [True] * 4
    assert res.runs["model.activation"].dtype == "string"
    assert res.swept_keys == ["optimizer.learning_rate", "model.activation"]
    assert res.summary["runs"] == 8
    assert res.config["optimizer"]["name"] == "sgd" and res.config["sweep"]["seeds"] == 2
    # Swept keys are coordinates of the histories: select by them.
    relu = res.histories.where(res.histories["model.activation"] == "relu", drop=True)
    assert relu.sizes["run"] == 4
    assert "learning_rate" in res.histories


def test_missing_metrics_are_na_not_nan(no_val):
    res = results.load(no_val)
    _assert_equals_csv(res.runs, no_val / "runs.csv")
    assert res.runs["final_val_loss"].isna().all()
    assert res.runs["seed"].tolist() == [3, 5]
    assert res.runs["seed"].dtype == "Int64"


def test_nan_and_missing_stay_distinct(tmp_path):
    from jaxopt_lab.sweep.records import write_runs_csv

    rows = [{"run": 0, "x": 0.5, "seed": 0, "final_train_loss": math.nan, "best_epoch": None, "diverged": True},
            {"run": 1, "x": 1.0, "seed": 1, "final_train_loss": None, "best_epoch": 3, "diverged": False},
            {"run": 2, "x": 2.0, "seed": 2, "final_train_loss": -math.inf, "best_epoch": 4, "diverged": False}]
    write_runs_csv(tmp_path / "runs.csv", rows, ["x", "seed"])
    res = results.load(tmp_path)
    _assert_equals_csv(res.runs, tmp_path / "runs.csv")
    loss = res.runs["final_train_loss"]
    assert loss.isna().tolist() == [False, True, False]
    assert np.isnan(float(loss.iloc[0])) and float(loss.iloc[2]) == -math.inf
    assert res.runs["best_epoch"].isna().tolist() == [True, False, False]
    assert res.runs["final_val_loss"].isna().all()
    assert res.histories.sizes.get("run", 0) == 3 and not res.histories.data_vars


@pytest.mark.slow
def test_halving_sweep_round_trips(halving):
    res = results.load(halving)
    _assert_equals_csv(res.runs, halving / "runs.csv")
    _assert_histories(res.histories, halving / "histories.npz", 9)
    assert res.runs["halted"].dtype == "boolean" and res.runs["rungs_passed"].dtype == "Int64"
    assert res.summary["halving"]["rungs"]


@pytest.mark.slow
def test_protocol_folder(tmp_path):
    out = tmp_path / "proto"
    cfg = BASE.replace(sweep={"protocol": "choi", "protocol_options": {
        "optimizers": ["sgd", "momentum"], "trials": 2, "rerun_seeds": 2}})
    protocols.run_protocol(cfg, out, progress=False)
    res = results.load(out)
    assert res.sweeps and res.summary["protocol"] == "choi"
    n = 0
    for name, sub in res.sweeps.items():
        part = res.runs[res.runs["sweep"] == name]
        assert len(part) == len(sub.runs)
        _assert_equals_csv(sub.runs, sub.path / "runs.csv")
        for col in sub.runs.columns:
            assert part[col].reset_index(drop=True).equals(sub.runs[col].astype(part[col].dtype)), col
        n += len(sub.runs)
    assert len(res.runs) == n == res.histories.sizes["run"]
    assert set(res.histories["sweep"].values) == set(res.sweeps)


@pytest.mark.slow
def test_single_train_folder(tmp_path):
    from jaxopt_lab import single_run

    row = single_run.train_and_write(single_run.build(BASE), tmp_path / "one", seed=2)
    res = results.load(tmp_path / "one")
    assert res.runs["seed"].tolist() == [2]
    assert float(res.runs["final_train_loss"].iloc[0]) == row["final_train_loss"]
    with open(tmp_path / "one" / "history.csv", newline="") as f:
        ref = [float(r["train_loss"]) for r in csv.DictReader(f)]
    np.testing.assert_array_equal(res.histories["train_loss"].values[0], ref)


def test_to_pandas_matches_table():
    import jax.numpy as jnp

    from jaxopt_lab import sweep

    def train_fn(key, hp):
        return {"loss": hp["lr"] * 2.0, "steps": jnp.int32(3), "ok": hp["lr"] < 0.05}

    res = sweep.run(train_fn, sweep.grid({"lr": [0.01, 0.1]}) * sweep.seeds(2), progress=False)
    df = res.to_pandas()
    assert df.to_dict("records") == res.table()
    assert str(df["loss"].dtype) == "Float64" and str(df["steps"].dtype) == "Int64"
    assert str(df["ok"].dtype) == "boolean"


def test_not_a_results_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no results"):
        results.load(tmp_path)


def test_missing_extra_names_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "xarray", None)  # what an uninstalled module looks like to import
    with pytest.raises(ImportError, match=re.escape("pip install 'jaxopt-lab[analysis]'")):
        results.load(".")


def test_docs_example_runs_as_written(tmp_path, monkeypatch):
    """The notebook-style example in docs/analysis.md, executed as written."""
    text = (Path(__file__).parents[1] / "docs" / "analysis.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/analysis.md", "exec"), namespace)  # noqa: S102


def _report_rerenders_identically(folder, tmp_path):
    import shutil

    from jaxopt_lab import cli

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    for p in [*copy.glob("*.png"), copy / "index.html"]:
        p.unlink()
    assert cli.main(["report", str(copy)]) == 0
    # Figures are embedded in index.html: the same page means the same figures and tables.
    assert (copy / "index.html").read_text() == (folder / "index.html").read_text()
    assert sorted(p.name for p in copy.glob("*.png")) == sorted(p.name for p in folder.glob("*.png"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_report_rerenders_from_files(plain, tmp_path, capsys):
    _report_rerenders_identically(plain, tmp_path)
    from jaxopt_lab import cli

    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_report_rerenders_halving(halving, tmp_path):
    _report_rerenders_identically(halving, tmp_path)
