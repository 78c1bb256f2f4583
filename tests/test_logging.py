"""`[sweep.log]`: TensorBoard and MLflow logs, read back with their own libraries, equal the sweep's files."""

import sys

import numpy as np
import pytest

from jaxopt_lab import cli
from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.sweep import config_sweep, tracking
from jaxopt_lab.sweep.records import read_runs_csv

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=60, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(4,)),
    train=TrainConfig(epochs=5, precision="float64"),
    optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.5}),
)


CONFIG = """
[data]
dataset = "moons"
n_samples = 60
noise = 0.2
random_state = 1
val_fraction = 0.25
[model]
hidden = [4]
[train]
epochs = 5
precision = "float64"
[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.5
[sweep]
seeds = 2
chunk_size = 2
[sweep.grid.optimizer]
learning_rate = [0.05, 0.3]
[sweep.log]
experiment = "test-sweep"
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    # Through the command line: [sweep.log] from the file, the locations from --tensorboard/--mlflow.
    root = tmp_path_factory.mktemp("logged")
    (root / "sweep.toml").write_text(CONFIG)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert cli.main(["sweep", str(root / "sweep.toml"), "--out", str(root / "out"), "--no-report",
                     "--tensorboard", str(root / "tb"), "--mlflow", uri]) == 0
    with np.load(root / "out" / "histories.npz") as npz:
        hist = {k: npz[k] for k in npz.files}
    return root, uri, read_runs_csv(root / "out" / "runs.csv"), hist


def test_tensorboard_log_matches_files(logged):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    root, _, rows, hist = logged
    assert "learning_rate" in hist
    for row in rows:
        acc = ea.EventAccumulator(str(root / "tb" / f"run_{row['run']:05d}"), size_guidance={ea.TENSORS: 0})
        acc.Reload()
        n = row["epochs_run"]
        for key in hist:
            if key == "run":
                continue
            events = acc.Tensors(key)
            assert [e.step for e in events] == list(range(1, n + 1))
            got = np.array([tensor_util.make_ndarray(e.tensor_proto) for e in events])
            np.testing.assert_array_equal(got, hist[key][row["run"], :n])
        for key in ("final_train_loss", "best_val_loss", "final_val_accuracy", "best_epoch"):
            (event,) = acc.Tensors(f"final/{key}")
            assert float(tensor_util.make_ndarray(event.tensor_proto)) == row[key] and event.step == n
        meta = acc.SummaryMetadata("_hparams_/session_start_info")
        hp = plugin_data_pb2.HParamsPluginData.FromString(meta.plugin_data.content).session_start_info.hparams
        assert hp["optimizer.learning_rate"].number_value == row["optimizer.learning_rate"]
        assert hp["seed"].number_value == row["seed"]
        assert hp["optimizer.momentum"].number_value == 0.5
        assert hp["optimizer.name"].string_value == "sgd"


def test_mlflow_log_matches_files(logged):
    import mlflow
    from mlflow.tracking import MlflowClient

    root, uri, rows, hist = logged
    mlflow.set_tracking_uri(uri)
    df = mlflow.search_runs(experiment_names=["test-sweep"])
    assert len(df) == len(rows)
    client = MlflowClient(tracking_uri=uri)
    by_name = {r["tags.mlflow.runName"]: r for _, r in df.iterrows()}
    for row in rows:
        got = by_name[f"run_{row['run']:05d}"]
        assert float(got["params.optimizer.learning_rate"]) == row["optimizer.learning_rate"]
        assert int(got["params.seed"]) == row["seed"]
        assert got["params.optimizer.name"] == "sgd"
        for key in ("final_train_loss", "best_val_loss", "final_val_accuracy", "epochs_run"):
            assert got[f"metrics.{key}"] == row[key]
        n = row["epochs_run"]
        for key in hist:
            if key == "run":
                continue
            history = sorted(client.get_metric_history(got["run_id"], key), key=lambda m: m.step)
            assert [m.step for m in history] == list(range(1, n + 1))
            np.testing.assert_array_equal([m.value for m in history], hist[key][row["run"], :n])


def test_sweep_without_log_needs_neither_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlflow", None)
    res = config_sweep.run_sweep(BASE.replace(sweep={"seeds": 1}), progress=False)
    assert len(res.rows) == 1


@pytest.mark.parametrize("library, flag", [("mlflow", "--mlflow"), ("tensorboard", "--tensorboard")])
def test_missing_library_exits_2_naming_the_extra(monkeypatch, tmp_path, capsys, library, flag):
    monkeypatch.setitem(sys.modules, library, None)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\nepochs = 2\n[sweep]\nseeds = 1\n')
    out = tmp_path / "out"
    assert cli.main(["sweep", str(cfg), "--out", str(out), flag, str(tmp_path / "logs")]) == 2
    err = capsys.readouterr().err
    assert f"sweep.log.{library} needs the {library} package" in err and "pip install 'jaxopt-lab[log]'" in err
    assert not out.exists() and not (tmp_path / "logs").exists()


def test_bad_log_keys():
    with pytest.raises(ConfigError, match=r"unknown key sweep.log.tensorbord \(did you mean 'tensorboard'\?\)"):
        tracking.options({"log": {"tensorbord": "x"}})
    with pytest.raises(ConfigError, match="sweep.log.mlflow = 3 must be a non-empty string"):
        tracking.options({"log": {"mlflow": 3}})
