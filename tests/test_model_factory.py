"""`[model] factory = "module:function"` from a config file, through `jaxopt-lab train` and `sweep`."""

import csv
import json
import textwrap

import jax
import numpy as np
import pytest

from jaxopt_lab import config as config_mod
from jaxopt_lab.cli import main
from jaxopt_lab.train import make_train

FACTORIES = '''
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxopt_lab import models


def plain(width=8):
    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (2, width)) * 0.5, "b1": jnp.zeros(width),
                "w2": jax.random.normal(k2, (width, 2)) * 0.5}

    def apply(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]

    return models.from_functions(init, apply)


def equinox_mlp(width=8):
    return models.from_equinox(lambda key: eqx.nn.MLP(2, 2, width, 1, key=key))


def not_a_model(width=0):
    return 42
'''

CONFIG = """
[data]
dataset = "moons"
n_samples = 120
noise = 0.2
val_fraction = 0.25

[model]
factory = "{factory}"

[model.kwargs]
width = 6

[train]
epochs = 5
batch_size = 30

[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.9
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "my_factories.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _config(path, factory, extra=""):
    path.write_text(textwrap.dedent(CONFIG.format(factory=factory)) + extra)
    return path


def test_train_with_a_factory_equals_the_model_given_in_python(project):
    cfg_path = _config(project / "run.toml", "my_factories:plain")
    assert main(["train", str(cfg_path), "--out", str(project / "out")]) == 0
    metrics = json.loads((project / "out" / "metrics.json").read_text())
    import my_factories

    cfg = config_mod.load(cfg_path)
    trainer = make_train(cfg.replace(model=config_mod.ModelConfig()), model=my_factories.plain(width=6))
    expected = jax.jit(trainer)(jax.random.PRNGKey(0), {}).metrics
    assert metrics["final_val_loss"] == pytest.approx(float(expected["final_val_loss"]), rel=1e-6)


def test_sweep_with_an_equinox_factory(project):
    sweep = '\n[sweep]\nseeds = 2\n[sweep.grid.optimizer]\nlearning_rate = [0.05, 0.2]\n'
    cfg_path = _config(project / "sweep.toml", "my_factories:equinox_mlp", sweep)
    out = project / "sweep_out"
    assert main(["sweep", str(cfg_path), "--out", str(out), "--no-report"]) == 0
    with open(out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    losses = [float(r["final_val_loss"]) for r in rows]
    assert all(np.isfinite(losses)) and len(set(losses)) == 4


@pytest.mark.parametrize("factory,needle", [
    ("no_such_module:build", "cannot import 'no_such_module'"),
    ("my_factories:plian", "did you mean 'plain'"),
    ("my_factories:not_a_model", "returned a int, not a model"),
    ("my_factories", "must be 'package.module:function'"),
])
def test_a_wrong_factory_exits_2_naming_the_key(project, capsys, factory, needle):
    cfg_path = _config(project / "bad.toml", factory)
    out = project / "never"
    assert main(["train", str(cfg_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.factory" in err and needle in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists()
