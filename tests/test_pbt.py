"""Population-based training: the in-program schedule equals single runs replayed with the same
hyperparameter schedule and copied states; truncation selection; TOML, CLI and bad input."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab.cli import main
from jaxopt_lab.config import ConfigError, load
from jaxopt_lab.sweep import pbt
from jaxopt_lab.sweep import space as S
from jaxopt_lab.train import make_train

TOML = """
[data]
dataset = "moons"
n_samples = 60
noise = 0.25
random_state = 7
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
[sweep.pbt]
population = 4
interval = 2
quantile = 0.5
perturb = [0.5, 2.0]
resample_probability = 0.5
seed = 3
[sweep.pbt.optimizer]
learning_rate = { loguniform = [1e-3, 10.0] }
momentum = { one_minus_loguniform = [1e-2, 1.0] }
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    jax.config.update("jax_enable_x64", True)
    path = tmp_path_factory.mktemp("pbt") / "pbt.toml"
    path.write_text(TOML)
    return load(path)


@pytest.fixture(scope="module")
def ran(config):
    return pbt.run_config_pbt(config)


def test_members_equal_single_runs_fed_the_same_schedule(config, ran):
    result, res = ran
    assert res.compilations == 4 and res.epochs == [2, 4]  # start, train, exploit (each serving both steps), finish
    assert (np.asarray(res.record["source"]) != np.arange(4)).any()  # members were replaced
    trainer = make_train(config)
    _, dists, plan = pbt.check_config(config)
    (g,) = plan.groups
    fixed = {k: v[0] for k, v in g.hparams.items() if k not in dists}

    def hp_of(values, i):
        return {**fixed, **{k: values[k][i] for k in dists}}

    run_until = jax.jit(lambda s, h, until: trainer.run_epochs(s, h, until))
    states = [trainer.init_state(jax.random.PRNGKey(i), hp_of(res.initial, i)) for i in range(4)]
    schedule = res.initial
    for step, epoch in enumerate(res.epochs):
        states = [run_until(states[i], hp_of(schedule, i), epoch) for i in range(4)]
        # The host-side exploit: copy whole states as recorded, then the recorded new hyperparameters.
        states = [states[int(res.record["source"][step][i])] for i in range(4)]
        schedule = {k: np.asarray(res.record["hp"][k][step]) for k in dists}
    finals = [trainer.finalize(run_until(states[i], hp_of(schedule, i), 5), hp_of(schedule, i)) for i in range(4)]
    for i, row in enumerate(result.rows):
        for name in ("final_train_loss", "final_val_loss", "best_val_loss", "final_val_accuracy"):
            np.testing.assert_allclose(row[name], float(finals[i].metrics[name]), rtol=1e-10, err_msg=(i, name))
        np.testing.assert_allclose(result.histories["val_loss"][i], np.asarray(finals[i].history["val_loss"]),
                                   rtol=1e-10)
        for k in dists:
            assert row[f"final_{k}"] == schedule[k][i]


def test_resume_after_an_interruption_equals_the_uninterrupted_run(config, ran, tmp_path):
    import shutil

    full_result, full = pbt.run_config_pbt(config, checkpoint_dir=tmp_path / "full")
    assert full.compilations == 0  # the programs of the first run, reused
    assert full_result.rows == ran[0].rows
    # Killed after exploit step 0: only that step's save is on disk (saves are atomic).
    (tmp_path / "cut").mkdir()
    shutil.copy(tmp_path / "full" / "pbt_step_00000.ckpt", tmp_path / "cut" / "pbt_step_00000.ckpt")
    with pytest.raises(ValueError, match="earlier PBT run"):
        pbt.run_config_pbt(config, checkpoint_dir=tmp_path / "cut")
    result, res = pbt.run_config_pbt(config, checkpoint_dir=tmp_path / "cut", resume=True)
    assert res.steps_resumed == 1
    assert result.rows == full_result.rows
    for name in ("source", "score"):
        np.testing.assert_array_equal(res.record[name], full.record[name])
    np.testing.assert_array_equal(result.histories["val_loss"], full_result.histories["val_loss"])


def test_truncation_selection_and_exploration():
    opts = pbt.PBTOptions(population=6, quantile=0.33, perturb=(0.5, 2.0), resample_probability=0.0)
    dists = {"lr": S.loguniform(1e-3, 1.0), "beta": S.one_minus_loguniform(1e-2, 1.0)}
    score = jnp.asarray([0.5, jnp.nan, 0.1, 0.9, 0.2, 0.3])  # best: 2, 4; worst: 1 (NaN), 3
    hp = {"lr": jnp.asarray([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]), "beta": jnp.asarray([0.9] * 6),
          "fixed": jnp.arange(6.0)}
    step = jax.jit(lambda s, h, k: pbt.exploit_explore(opts, dists, ["lr", "beta"], s, h, k))
    source, new = step(score, hp, jax.random.PRNGKey(0))
    source, new = np.asarray(source), {k: np.asarray(v) for k, v in new.items()}
    assert opts.n_replaced == 2
    for i in range(6):
        if i in (1, 3):
            assert source[i] in (2, 4)
            ratio = new["lr"][i] / hp["lr"][source[i]]
            assert np.isclose(ratio, 0.5) or np.isclose(ratio, 2.0)
            assert np.isclose((1 - new["beta"][i]) / 0.1, 0.5) or np.isclose((1 - new["beta"][i]) / 0.1, 2.0)
        else:
            assert source[i] == i and new["lr"][i] == hp["lr"][i] and new["beta"][i] == 0.9
        assert new["fixed"][i] == source[i]  # every hyperparameter travels with the copied state
    # Always resampling: values come from the distributions' ranges.
    opts = pbt.PBTOptions(population=6, quantile=0.5, resample_probability=1.0)
    resample = jax.jit(lambda s, h, k: pbt.exploit_explore(opts, dists, ["lr"], s, h, k))
    _, new = resample(score, hp, jax.random.PRNGKey(1))
    assert all(1e-3 <= v <= 1.0 for v in np.asarray(new["lr"]))


def test_cli_writes_members_lineage_and_schedules(tmp_path, monkeypatch, ran):
    monkeypatch.setenv("JAXOPT_LAB_CACHE_DIR", "")
    cfg = tmp_path / "p.toml"
    cfg.write_text(TOML)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out), "--no-report", "--devices", "1"]) == 0
    with open(out / "runs.csv") as f:
        runs = list(csv.DictReader(f))
    with open(out / "pbt.csv") as f:
        steps = list(csv.DictReader(f))
    assert len(runs) == 4 and len(steps) == 2 * 4 and (out / "pbt_schedules.png").stat().st_size > 0
    assert not (out / "checkpoints").exists()
    result, res = ran  # the same config in this process: the same numbers
    for row, mine in zip(runs, result.rows, strict=True):
        assert float(row["best_val_loss"]) == mine["best_val_loss"]
        assert int(row["origin"]) == mine["origin"]
    for s in steps:
        assert int(s["source"]) == int(res.record["source"][int(s["step"])][int(s["member"])])
        assert (s["replaced"] == "true") == (s["source"] != s["member"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pbt"]["exploit_epochs"] == [2, 4] and summary["pbt"]["replaced_per_step"] == 2


@pytest.mark.parametrize("edit, message", [
    (("quantile = 0.5", "quantile = 0.6"), r"sweep.pbt.quantile = 0.6 is out of range: valid range is \(0, 0.5\]"),
    (("population = 4", "population = 1"), r"sweep.pbt.population = 1 is out of range"),
    (("perturb = [0.5, 2.0]", "perturb = [0.0]"), r"sweep.pbt.perturb"),
    (("[sweep.pbt.optimizer]", "[sweep.pbt.train]\nepochs = { uniform = [2, 4] }\n[sweep.pbt.optimizer]"),
     r"sweep.pbt.train.epochs: PBT evolves traced numeric hyperparameters only"),
    (("seed = 3", "seed = 3\nkeys = [\"optimizer.eps\"]"), r"sweep.pbt.keys: 'optimizer.eps' has no distribution"),
    (("momentum = { one_minus", "nesterov = { one_minus"), r"nesterov"),
    (("learning_rate = { loguniform = [1e-3, 10.0] }", "learning_rate = { choice = [0.1, 1.0] }"),
     r"sweep.pbt.optimizer.learning_rate: PBT perturbs continuous hyperparameters"),
])
def test_bad_input_names_the_key(tmp_path, config, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.replace(*edit))
    with pytest.raises(ConfigError, match=message):
        pbt.check_config(load(path))


def test_cli_bad_input_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.replace("quantile = 0.5", "quantile = 0.6"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "sweep.pbt.quantile" in err and len(err.splitlines()) == 1 and not (tmp_path / "o").exists()


_SPLIT = """
import json, pathlib, re, sys
import jax
from jaxopt_lab.config import load
from jaxopt_lab.sweep import pbt, runner
compiled = []  # every program PBT compiles, in order: init, train, final, exploit
compile_lowered = runner.compile_lowered
runner.compile_lowered = lambda lowered: compiled.append(compile_lowered(lowered)) or compiled[-1]
text = pathlib.Path(sys.argv[1]).read_text()
out = {"jax_devices": len(jax.devices())}
for precision in ("float64", "float32"):
    jax.config.update("jax_enable_x64", precision == "float64")
    path = pathlib.Path(sys.argv[1]).with_name(precision + ".toml")
    if precision == "float32":  # mini-batches in lanes of 2 (population 8): a width that changed with the
        # device count would change this run's numbers (vmapping each device's whole shard does)
        text = (text.replace('precision = "float64"', 'precision = "float32"')
                .replace("n_samples = 60", "n_samples = 400").replace("hidden = [4]", "hidden = [16]")
                .replace("population = 4", "population = 8")
                .replace("[train]", "[train]\\nbatch_size = 32"))
    path.write_text(text)
    for n in (1, 2, 3):
        compiled.clear()
        saves = path.with_name(f"saves_{precision}_{n}")
        result, res = pbt.run_config_pbt(load(path), devices=jax.devices()[:n], checkpoint_dir=saves)
        # The second argument of init, train and final: the members' seeds or states, split over the devices.
        shardings = [jax.tree.leaves(p.input_shardings[0][1])[0] for p in compiled[:3]]
        out[f"{precision}/{n}"] = {
            "rows": result.rows, "source": res.record["source"].tolist(), "compilations": res.compilations,
            "hp": {k: v.tolist() for k, v in res.record["hp"].items()},
            "dtype": str(res.final["optimizer.momentum"].dtype),
            "layout": [res.layout.devices, res.layout.lanes, res.layout.width],
            "member_devices": [len(s.device_set) for s in shardings], "specs": [str(s.spec) for s in shardings],
            "collectives": sorted({c for p in compiled for c in re.findall(
                r"all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter", p.as_text())}),
        }
    # A run saved on 2 devices, killed after its first exploit step, resumed on 3.
    cut = path.with_name(f"cut_{precision}")
    cut.mkdir()
    step0 = path.with_name(f"saves_{precision}_2") / "pbt_step_00000.ckpt"
    (cut / step0.name).write_bytes(step0.read_bytes())
    result, res = pbt.run_config_pbt(load(path), devices=jax.devices()[:3], checkpoint_dir=cut, resume=True)
    out[f"{precision}/resumed"] = {"rows": result.rows, "steps_resumed": res.steps_resumed}
print(json.dumps(out))
"""


def test_population_split_over_devices_gives_the_same_results(tmp_path, ran):
    """In a process with 3 CPU devices (a child process: the device count is fixed when JAX starts), the
    population split over 1, 2 and 3 of them gives the same numbers, bit for bit, in float64 (also equal to
    this process's run, 1 device) and in float32 (mini-batches, lanes of 2). The split is real: the members
    of the sharded programs are split over every device of the mesh, two devices or more hold real members,
    and no program has a collective. A run saved on 2 devices resumes on 3 to the same results."""
    import os
    import subprocess
    import sys

    path = tmp_path / "p.toml"
    path.write_text(TOML)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=3", JAXOPT_LAB_CACHE_DIR="")
    proc = subprocess.run([sys.executable, "-c", _SPLIT, str(path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    result, res = ran
    assert got["jax_devices"] == 3 and len(jax.devices()) == 1
    for precision in ("float64", "float32"):
        one = got[f"{precision}/1"]
        assert one["dtype"] == precision and one["layout"][:2] == [1, 4]
        for n in (1, 2, 3):
            run = got[f"{precision}/{n}"]
            assert run["compilations"] == 4 and run["collectives"] == []
            assert run["member_devices"] == [n] * 3 and run["specs"] == ["P('runs',)"] * 3
            devices, lanes, width = run["layout"]
            assert width == (1 if precision == "float64" else 2)  # full batch: one at a time, as the runner
            assert devices == n and (n == 1 or lanes * width < len(run["rows"]))  # real members on 2 devices or more
            assert run["rows"] == one["rows"], (precision, n)
            assert run["source"] == one["source"] and run["hp"] == one["hp"]
        assert got[f"{precision}/resumed"] == {"rows": one["rows"], "steps_resumed": 1}
    assert got["float64/1"]["rows"] == json.loads(json.dumps(result.rows))
    assert got["float64/1"]["source"] == res.record["source"].tolist()
    assert got["float64/1"]["hp"] == {k: v.tolist() for k, v in res.record["hp"].items()}
