"""Adaptive batched search: Optuna's ask-and-tell driving rounds of one compiled chunk each."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optuna
import pytest

from jaxopt_lab.cli import main
from jaxopt_lab.config import ConfigError, load
from jaxopt_lab.sweep import search
from jaxopt_lab.sweep import space as S

DISTS = {"x": S.loguniform(1e-4, 1.0), "y": S.uniform(0.0, 1.0)}
DIVERGE_ABOVE = 0.3


def objective_np(x, y, seed):
    """The synthetic objective in float32, as the train function computes it (noise by seed)."""
    x, y = np.float32(x), np.float32(y)
    return float(np.float32((np.log10(x) + 2.0) ** 2 + (y - 0.3) ** 2) + np.float32(0.01 * seed))


def make_fn():
    """A fresh train function (a new object: the runner compiles it anew)."""

    def train_fn(key, hp):
        seed = jax.random.key_data(key)[-1].astype(jnp.float32)
        loss = (jnp.log10(hp["x"]) + 2.0) ** 2 + (hp["y"] - 0.3) ** 2 + 0.01 * seed
        return {"loss": loss, "diverged": hp["x"] > DIVERGE_ABOVE}

    return train_fn


def reference_study(rounds, batch, seeds):
    """The same search written directly against Optuna: ask a round, tell each trial's mean over seeds
    (FAIL where a run diverged)."""
    sampler = optuna.samplers.TPESampler(seed=0, constant_liar=True, n_startup_trials=batch)
    study = optuna.create_study(sampler=sampler)
    dists = {"x": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
             "y": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for _ in range(rounds):
        trials = [study.ask(dists) for _ in range(batch)]
        for t in trials:
            x, y = t.params["x"], t.params["y"]
            if np.float32(x) > DIVERGE_ABOVE:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, float(np.mean([objective_np(x, y, s) for s in seeds])))
    return study


def test_tpe_matches_optunas_own_loop_and_compiles_once():
    res = search.optimize(make_fn(), DISTS, sampler="tpe", rounds=3, batch=5, objective="loss", seeds=[0, 1])
    ref = reference_study(3, 5, [0, 1])
    assert [t.params for t in res.study.trials] == [t.params for t in ref.trials]
    assert [t.state for t in res.study.trials] == [t.state for t in ref.trials]
    for ours, theirs in zip(res.study.trials, ref.trials, strict=True):
        if theirs.value is not None:
            assert ours.value == pytest.approx(theirs.value, rel=1e-6)
    assert any(t.state == optuna.trial.TrialState.FAIL for t in ref.trials)  # the test exercises failures
    assert res.compilations == 1  # three rounds, one program
    # Rows: every trial x seed, with round and trial; a trial's value is the mean of its rows.
    assert len(res.rows) == 3 * 5 * 2
    for t in res.trials:
        rows = [r for r in res.rows if r["trial"] == t.number]
        assert [r["seed"] for r in rows] == [0, 1] and {r["round"] for r in rows} == {t.round}
        if t.value is not None:
            assert t.value == pytest.approx(np.mean([r["loss"] for r in rows]), rel=1e-12)
        else:
            assert any(r["diverged"] for r in rows)
    assert res.best.value == min(t.value for t in res.trials if t.value is not None)


def test_samplers_are_optunas_with_the_documented_options():
    def make(**kw):
        return search.make_sampler(search.SearchOptions(**kw), n_dims=2)

    tpe = make(sampler="tpe", batch=6, seed=3)
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._constant_liar and tpe._n_startup_trials == 6
    assert make(sampler="cmaes", batch=10)._popsize == 10
    assert make(sampler="cmaes", batch=2)._popsize == 4 + int(3 * np.log(2))  # CMA-ES's default floor
    assert isinstance(make(sampler="random"), optuna.samplers.RandomSampler)


@pytest.mark.parametrize("sampler", ["tpe", "random", pytest.param("gp", marks=pytest.mark.slow),
                                     pytest.param("cmaes", marks=pytest.mark.slow)])
def test_maximize_with_each_sampler(sampler):
    # The GP's proposals are slow (an L-BFGS search per trial, PyTorch to import): one model-based
    # proposal is enough here.
    startup = 5 if sampler == "gp" else 2
    res = search.optimize(make_fn(), DISTS, sampler=sampler, rounds=2, batch=3, objective="loss",
                          direction="maximize", startup_trials=startup)
    assert len(res.trials) == 6 and res.study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert res.compilations == 1
    if sampler == "gp":
        assert isinstance(res.study.sampler, optuna.samplers.GPSampler)
    done = [t.value for t in res.trials if t.value is not None]
    assert res.best.value == max(done)


def test_resume_continues_with_the_same_proposals(tmp_path):
    fn = make_fn()
    full = search.optimize(fn, DISTS, rounds=3, batch=4, objective="loss", out=tmp_path / "full")
    # An interruption after round 0: only its record is on disk.
    (tmp_path / "cut" / "rounds").mkdir(parents=True)
    for f in (tmp_path / "full" / "rounds").glob("round_00000.*"):
        shutil.copy(f, tmp_path / "cut" / "rounds" / f.name)
    with pytest.raises(ValueError, match="resume=True"):
        search.optimize(fn, DISTS, rounds=3, batch=4, objective="loss", out=tmp_path / "cut")
    resumed = search.optimize(fn, DISTS, rounds=3, batch=4, objective="loss", out=tmp_path / "cut", resume=True)
    assert [(t.round, t.number, t.params, t.value, t.state) for t in resumed.trials] == \
        [(t.round, t.number, t.params, t.value, t.state) for t in full.trials]
    assert resumed.rows == full.rows
    assert (tmp_path / "cut" / "trials.csv").read_text() == (tmp_path / "full" / "trials.csv").read_text()


def test_one_minus_loguniform_is_searched_on_one_minus_x():
    def fn(key, hp):
        return {"loss": (jnp.log10(1.0 - hp["beta"]) + 2.0) ** 2}

    res = search.optimize(fn, {"beta": S.one_minus_loguniform(1e-4, 1e-1)}, sampler="random", rounds=1, batch=6,
                          objective="loss")
    for t, ot in zip(res.trials, res.study.trials, strict=True):
        assert t.params["beta"] == pytest.approx(1.0 - ot.params["beta"], rel=1e-15)
        assert 1e-4 <= ot.params["beta"] <= 1e-1


@pytest.mark.parametrize("kwargs, message", [
    ({"sampler": "bayes"}, "sweep.adaptive.sampler = 'bayes' is not a valid choice"),
    ({"batch": 0}, r"sweep.adaptive.batch = 0 is out of range"),
    ({"rounds": 0}, r"sweep.adaptive.rounds = 0 is out of range"),
    ({"direction": "min"}, r"sweep.adaptive.direction = 'min' is not a valid choice.*minimize, maximize"),
])
def test_python_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        search.optimize(make_fn(), DISTS, objective="loss", **kwargs)


def test_python_categorical_choice_and_unknown_objective():
    with pytest.raises(ValueError, match="numeric values only"):
        search.optimize(make_fn(), {"act": S.choice(["relu", "tanh"])}, objective="loss")
    with pytest.raises(ValueError, match="objective = 'los' is not an output.*did you mean 'loss'"):
        search.optimize(make_fn(), DISTS, objective="los", rounds=1, batch=2)


# ----------------------------------------------------------------------------- config files and the CLI

TOML = """
[data]
dataset = "moons"
n_samples = 60
val_fraction = 0.25
[model]
hidden = [4]
[train]
epochs = 3
precision = "float64"
[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.5
[sweep]
seeds = 2
[sweep.adaptive]
sampler = "tpe"
rounds = 2
batch = 3
objective = "best_val_loss"
[sweep.adaptive.optimizer]
learning_rate = { loguniform = [1e-3, 1e3] }
momentum = { uniform = [0.0, 0.99] }
"""


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cli_adaptive_search_writes_its_records(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    cfg = tmp_path / "a.toml"
    cfg.write_text(TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-report", "--devices", "1"]) == 0
    runs, trials = _csv(out / "runs.csv"), _csv(out / "trials.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(runs) == 2 * 3 * 2 and len(trials) == 6
    assert summary["compilations"] == 1  # two rounds, one compiled program
    assert summary["search"]["sampler"] == "tpe" and summary["search"]["trials"] == 6
    assert not (out / "checkpoints").exists()
    for t in trials:
        mine = [r for r in runs if r["trial"] == t["trial"]]
        assert len(mine) == 2 and all(r["optimizer.learning_rate"] == t["optimizer.learning_rate"] for r in mine)
        if t["state"] == "COMPLETE":
            assert float(t["value"]) == pytest.approx(np.mean([float(r["best_val_loss"]) for r in mine]), rel=1e-12)
        else:  # learning rates up to 1e3 blow up: such trials are told as failed, not as a number
            assert t["value"] == "" and any(r["diverged"] == "true" for r in mine)
    assert any(t["state"] == "FAIL" for t in trials)
    best = summary["search"]["best_trial"]
    assert best["value"] == min(float(t["value"]) for t in trials if t["state"] == "COMPLETE")


@pytest.mark.parametrize("edit, message", [
    (('sampler = "tpe"', 'sampler = "tpe2"'), r"sweep.adaptive.sampler = 'tpe2'.*did you mean 'tpe'"),
    (("batch = 3", "batch = 0"), r"sweep.adaptive.batch = 0 is out of range"),
    (("rounds = 2", "rounds = 0"), r"sweep.adaptive.rounds = 0 is out of range"),
    (('objective = "best_val_loss"', 'objective = "val_loss"'),
     r"sweep.adaptive.objective = 'val_loss' is not a runs.csv column.*did you mean"),
    (('objective = "best_val_loss"', 'objective = "best_val_loss"\ndirection = "max"'),
     r"sweep.adaptive.direction = 'max' is not a valid choice"),
    (("momentum = { uniform", "nesterov = { uniform"), r"nesterov"),
    (("[sweep.adaptive.optimizer]", "[sweep.adaptive.train]\nepochs = { randint = [2, 4] }\n"
      "[sweep.adaptive.optimizer]"), r"sweep.adaptive.train.epochs: adaptive search proposes traced"),
    (("seeds = 2", "seeds = 2\n[sweep.grid.optimizer]\nlearning_rate = [0.1]"), "sweep.grid cannot go with"),
])
def test_config_bad_input_names_the_key(tmp_path, edit, message):
    cfg = tmp_path / "a.toml"
    cfg.write_text(TOML.replace(*edit))
    with pytest.raises(ConfigError, match=message):
        search.check_config(load(cfg))


def test_cli_bad_input_and_missing_optuna_exit_2(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "a.toml"
    cfg.write_text(TOML.replace("batch = 3", "batch = 0"))
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o1"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.adaptive.batch" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o1").exists()
    cfg.write_text(TOML)
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if Optuna were not installed
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o2"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'jaxopt-lab[search]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """A real SIGKILL between rounds; `--resume` ends with the same runs.csv and trials.csv."""
    cfg = tmp_path / "a.toml"
    cfg.write_text(TOML.replace("rounds = 2", "rounds = 4"))
    env = dict(os.environ, JAXOPT_LAB_CACHE_DIR="")
    cmd = [sys.executable, "-m", "jaxopt_lab", "sweep", str(cfg), "--no-report", "--devices", "1", "--out"]
    subprocess.run([*cmd, str(tmp_path / "full")], env=env, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([*cmd, str(tmp_path / "cut")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    record = tmp_path / "cut" / "checkpoints" / "search" / "round_00001.json"
    deadline = time.time() + 600
    while not record.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert record.exists() and not (tmp_path / "cut" / "runs.csv").exists()
    r = subprocess.run([*cmd, str(tmp_path / "cut"), "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for name in ("runs.csv", "trials.csv"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text(), name
