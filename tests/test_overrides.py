"""`--set section.key=value` on `train` and `sweep`: the same config as the edited file, the same checks."""

import json

import pytest

from jaxopt_lab import cli, config

BASE = """
[data]
dataset = "moons"
n_samples = 60
val_fraction = 0.25

[model]
hidden = [4]

[train]
epochs = 5

[optimizer]
name = "sgd"
learning_rate = 0.1
"""


@pytest.fixture
def cfg_file(tmp_path):
    p = tmp_path / "base.toml"
    p.write_text(BASE)
    return p


def test_same_config_as_the_edited_file(cfg_file, tmp_path):
    sets = ["optimizer.learning_rate=0.3", "train.epochs=50", "model.hidden=[32, 16]", "optimizer.name=adam",
            "optimizer.b1=0.8", "data.dataset='circles'", "sweep.seeds=4", "sweep.grid.optimizer.eps=[1e-8, 1e-6]"]
    edited = tmp_path / "edited.toml"
    edited.write_text(BASE.replace("learning_rate = 0.1", "learning_rate = 0.3\nb1 = 0.8")
                      .replace('name = "sgd"', 'name = "adam"').replace("epochs = 5", "epochs = 50")
                      .replace("hidden = [4]", "hidden = [32, 16]").replace('"moons"', '"circles"')
                      + "\n[sweep]\nseeds = 4\n[sweep.grid.optimizer]\neps = [1e-8, 1e-6]\n")
    got = config.load(cfg_file, cli.parse_set(sets))
    assert got == config.load(edited)
    assert got.train.epochs == 50 and isinstance(got.train.epochs, int) and got.model.hidden == (32, 16)


@pytest.mark.parametrize("item, message", [
    ("train.epoch=3", "unknown key train.epoch (did you mean 'epochs'?)"),
    ("trian.epochs=3", "unknown section [trian] (did you mean 'train'?)"),
    ("optimizer.momentun=0.9", "optimizer.momentun is not a keyword of sgd (did you mean 'momentum'?)"),
    ("train.epochs=many", "train.epochs = 'many' must be an integer"),
    ("train.epochs=1.5", "train.epochs = 1.5 must be an integer"),
    ("optimizer.learning_rate=-1", "learning_rate=-1 is out of range"),
    ("epochs=3", "'epochs' is not a section.key name"),
    ("train.epochs", "must be section.key=value"),
    ("optimizer.learning_rate.x=1", "optimizer.learning_rate is a value, not a table"),
    ("sweep.grid.optimizer.momentun=[0.5]", "momentun"),
])
def test_bad_overrides_exit_2_naming_the_key(cfg_file, tmp_path, capsys, item, message):
    out = tmp_path / "out"
    assert cli.main(["sweep", str(cfg_file), "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_train_runs_with_overrides(cfg_file, tmp_path):
    out = tmp_path / "one"
    assert cli.main(["train", str(cfg_file), "--out", str(out), "--set", "train.epochs=3",
                     "--set", "optimizer.name=adam"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3
