"""Lanes that refill and successive halving: every run equals the run alone (to the rounding
`vmap` introduces), halted runs equal the run alone cut at their rung, and the halving rule
is the one documented."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import cli, sweep_in_two_processes

from jaxopt_lab import sweep
from jaxopt_lab.config import ConfigError, from_dict
from jaxopt_lab.sweep import adaptive, config_sweep
from jaxopt_lab.sweep.runner import execute
from jaxopt_lab.train import HISTORY_KEYS, make_train

BASE = {
    "data": {"dataset": "moons", "n_samples": 160, "noise": 0.25, "random_state": 7, "val_fraction": 0.25},
    "model": {"hidden": [6]},
    "train": {"epochs": 24, "early_stopping_patience": 3, "precision": "float64"},
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
}
# Learning rates from 1e-3 to 1000: some runs early-stop within a few epochs, some diverge,
# some use the whole budget -- the situation refill is for.
RANDOM = {"trials": 7, "seed": 4, "optimizer": {"learning_rate": {"loguniform": [1e-3, 1000.0]}}}


def _cfg(**sweep_extra):
    return from_dict({**BASE, "sweep": {"seeds": 2, "random": RANDOM, **sweep_extra}})


@pytest.fixture(scope="module")
def plain():
    return config_sweep.run_sweep(_cfg(), execution="vmap", progress=False)


@pytest.fixture(scope="module")
def trainer():
    return make_train(from_dict(BASE))


_ALONE = {}


def _alone(trainer, row, until=None):
    """The run alone (jitted once per trainer; `until` is traced), stopped after `until` epochs."""
    if trainer not in _ALONE:
        @jax.jit
        def run(seed, lr, until):
            h = {"optimizer.learning_rate": lr}
            state = trainer.init_state(jax.random.PRNGKey(seed), h)
            state = trainer.run_epochs(state, h, until)
            return trainer.finalize(state, h)

        _ALONE[trainer] = run
    return _ALONE[trainer](row["seed"], row["optimizer.learning_rate"], until or trainer.config.train.epochs)


def _assert_row_equals(row, result, rtol=1e-9):
    for name, value in result.metrics.items():
        got, want = row[name], np.asarray(value).item()
        if isinstance(want, float) and math.isnan(want):
            assert got is None, name
        elif name in ("diverged", "best_epoch", "epochs_run"):
            assert got == want, (name, got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, err_msg=name)


def test_the_sweep_has_early_stops_divergence_and_full_runs(plain):
    epochs = [r["epochs_run"] for r in plain.rows]
    assert any(r["diverged"] for r in plain.rows)
    assert any(e < 24 and not r["diverged"] for e, r in zip(epochs, plain.rows, strict=True))
    assert any(e == 24 for e in epochs)


@pytest.mark.parametrize("lanes", [1, 3, 64])
def test_refill_equals_each_run_alone(plain, trainer, lanes):
    res = config_sweep.run_sweep(_cfg(), execution="refill", lanes=lanes, progress=False)
    assert res.stats.execution == "refill"
    assert res.stats.lanes == min(lanes, 14)
    for row, ref in zip(res.rows, plain.rows, strict=True):
        assert row.keys() == ref.keys()
    for row in res.rows:
        _assert_row_equals(row, _alone(trainer, row))
    for key in HISTORY_KEYS:
        np.testing.assert_allclose(res.histories[key], plain.histories[key], rtol=1e-9, atol=1e-12)


def test_refill_from_the_config_and_chunks(plain):
    res = config_sweep.run_sweep(_cfg(refill=True, lanes=2, chunk_size=5), progress=False)
    assert res.stats.execution == "refill" and res.stats.chunks == 3
    for row, ref in zip(res.rows, plain.rows, strict=True):
        np.testing.assert_allclose(row["final_val_loss"] or np.nan, ref["final_val_loss"] or np.nan, rtol=1e-9)
        assert row["epochs_run"] == ref["epochs_run"]


HALVING = {"min_epochs": 3, "eta": 2}


@pytest.fixture(scope="module")
def halved():
    return config_sweep.run_sweep(_cfg(halving=HALVING), lanes=4, progress=False)


def test_halted_runs_equal_the_run_alone_cut_at_their_rung(halved, trainer):
    rows = halved.rows
    rungs = adaptive.Halving(**HALVING).rungs(24)
    assert rungs == (3, 6, 12)
    assert any(r["halted"] for r in rows) and any(not r["halted"] for r in rows)
    for row in rows:
        if row["halted"]:
            assert row["epochs_run"] == rungs[row["rungs_passed"]]
            _assert_row_equals(row, _alone(trainer, row, until=row["epochs_run"]))
        else:
            _assert_row_equals(row, _alone(trainer, row))
    summary = config_sweep.summary_of(halved)["halving"]
    assert summary["epochs_spent"] == sum(r["epochs_run"] for r in rows) < summary["epochs_without_halving"]
    assert summary["rungs"] == [3, 6, 12]


def test_first_rung_is_synchronous_halving_when_every_run_has_a_lane():
    # 8 runs in 8 lanes, no early stopping, rates too small to diverge: all reach rung 1
    # together, and exactly the best ceil(8/2) by validation loss at epoch 4 go on.
    cfg = from_dict({
        **BASE, "train": {**BASE["train"], "early_stopping_patience": 0},
        "sweep": {"seeds": 1, "random": {"trials": 8, "seed": 5, "optimizer": {
            "learning_rate": {"loguniform": [1e-3, 1.0]}}}, "halving": {"min_epochs": 4, "eta": 2}},
    })
    res = config_sweep.run_sweep(cfg, lanes=8, progress=False)
    val_at_4 = res.histories["val_loss"][:, 3]
    best = set(np.argsort(val_at_4, kind="stable")[:4].tolist())
    passed_first = {r["run"] for r in res.rows if r["rungs_passed"] >= 1}
    assert passed_first == best
    assert all(r["epochs_run"] == 4 for r in res.rows if r["run"] not in best)


def test_python_api_refill_with_a_trainer(trainer):
    space = sweep.grid({"optimizer.learning_rate": [0.01, 0.3, 40.0]}) * sweep.seeds(2)
    res = sweep.run(trainer, space, execution="refill", lanes=2, progress=False)
    ref = sweep.run(trainer, space, execution="map", progress=False)
    np.testing.assert_allclose(res.outputs.metrics["final_train_loss"], ref.outputs.metrics["final_train_loss"],
                               rtol=1e-9)
    np.testing.assert_array_equal(res.outputs.metrics["epochs_run"], ref.outputs.metrics["epochs_run"])
    assert res.lane_info.halted.shape == (6,) and not res.lane_info.halted.any()


def test_python_api_with_a_handwritten_stepper():
    # Gradient descent on f(w) = w^2 / 2, stopped once |w| < 1e-3: the number of steps is
    # known in closed form, log(1e-3) / log(|1 - lr|), rounded up.
    def init(seed, hp):
        return {"w": jnp.asarray(1.0) + 0.0 * seed, "t": jnp.asarray(0, jnp.int32)}

    def step(s, hp):
        return {"w": s["w"] - hp["lr"] * s["w"], "t": s["t"] + 1}

    stepper = adaptive.Stepper(
        init=init, step=step, finished=lambda s, hp: (jnp.abs(s["w"]) < 1e-3) | (s["t"] >= 200),
        epoch=lambda s: s["t"], monitor=lambda s: s["w"] ** 2, finalize=lambda s, hp: {"steps": s["t"], "w": s["w"]},
        max_epochs=200,
    )
    lrs = [0.05, 0.1, 0.5, 0.9, 0.3]
    res = sweep.run(stepper, sweep.grid({"lr": lrs}), execution="refill", lanes=2, progress=False)
    expected = [math.ceil(math.log(1e-3) / math.log(1 - lr)) for lr in lrs]
    assert res.outputs["steps"].tolist() == expected


def test_execute_rejects_groups_without_a_stepper():
    space = sweep.grid({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="adaptive.Stepper"):
        sweep.run(lambda key, hp: {"y": hp["x"]}, space, execution="refill", progress=False)
    with pytest.raises(ValueError, match="valid choices: auto, map, vmap, refill"):
        execute([], 0, execution="batched")


@pytest.mark.parametrize("extra, message", [
    ({"halving": {"min_epochs": 0}}, "halving.min_epochs = 0 is out of range"),
    ({"halving": {"min_epochs": 2, "eta": 1}}, "halving.eta = 1 is out of range"),
    ({"halving": {"min_epochs": 2, "rate": 2}}, "unknown key sweep.halving.rate; valid keys: min_epochs, eta"),
    ({"halving": 3}, "sweep.halving must be a table"),
    ({"lanes": 0}, "sweep.lanes = 0 must be a positive integer"),
    ({"refill": "yes"}, "sweep.refill = 'yes' must be true or false"),
])
def test_bad_adaptive_options_are_named(extra, message):
    with pytest.raises(ConfigError, match=message):
        config_sweep.plan(_cfg(**extra))


def test_halving_needs_refill_execution():
    with pytest.raises(ConfigError, match="sweep.halving needs lanes"):
        config_sweep.run_sweep(_cfg(halving=HALVING), execution="map", progress=False)


_cli = cli


def _assert_runs_csv_close(a: list[str], b: list[str], exact: tuple[str, ...]) -> None:
    """Two runs.csv texts (as lines): the same header, flags and empty cells; numbers to 1e-9."""
    header = a[0].split(",")
    assert header == b[0].split(",")
    for x_row, y_row in zip(a[1:], b[1:], strict=True):
        for col, x, y in zip(header, x_row.split(","), y_row.split(","), strict=True):
            if x and y and col not in exact:
                np.testing.assert_allclose(float(x), float(y), rtol=1e-9, err_msg=col)
            else:
                assert x == y, col


def test_refill_and_halving_results_do_not_depend_on_the_device_count(tmp_path):
    cfg = tmp_path / "halving.toml"
    cfg.write_text(
        '[data]\ndataset = "moons"\nn_samples = 160\nval_fraction = 0.25\n[model]\nhidden = [6]\n'
        '[train]\nepochs = 12\nearly_stopping_patience = 3\nprecision = "float64"\n'
        '[optimizer]\nname = "sgd"\nlearning_rate = 0.1\n'
        '[sweep]\nseeds = 2\nlanes = 6\n[sweep.halving]\nmin_epochs = 2\neta = 2\n'
        '[sweep.random]\ntrials = 8\nseed = 1\n'
        '[sweep.random.optimizer]\nlearning_rate = { loguniform = [1e-3, 30.0] }\n'
    )
    outs = {}
    for n in (1, 3):
        r = _cli("sweep", cfg, "--out", tmp_path / f"d{n}", "--devices", n, "--no-report")
        assert r.returncode == 0, r.stderr
        outs[n] = (tmp_path / f"d{n}" / "runs.csv").read_text().splitlines()
        summary = json.loads((tmp_path / f"d{n}" / "summary.json").read_text())
        assert summary["devices"] == n and summary["execution"] == "refill" and summary["lanes"] == 6
    header = outs[1][0].split(",")
    assert "halted" in header and "rungs_passed" in header
    _assert_runs_csv_close(outs[1], outs[3], exact=("diverged", "halted"))
    # Without rungs each device works through its own share of the queue: same results again.
    plain = tmp_path / "refill.toml"
    plain.write_text(cfg.read_text().replace("[sweep.halving]\nmin_epochs = 2\neta = 2\n", "")
                     .replace("lanes = 6\n", "lanes = 6\nrefill = true\n"))
    csvs = []
    for n in (1, 3):
        r = _cli("sweep", plain, "--out", tmp_path / f"r{n}", "--devices", n, "--no-report")
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / f"r{n}" / "summary.json").read_text())["execution"] == "refill"
        csvs.append((tmp_path / f"r{n}" / "runs.csv").read_text().splitlines())
    assert "halted" not in csvs[0][0].split(",")
    _assert_runs_csv_close(csvs[0], csvs[1], exact=("diverged",))
    r = _cli("sweep", cfg, "--out", tmp_path / "bad", "--lanes", "0")
    assert r.returncode == 2 and "--lanes 0 is out of range" in r.stderr
    assert not (tmp_path / "bad").exists()


def test_halving_results_folder_reports_promotions(halved, tmp_path):
    out = config_sweep.write_results(tmp_path / "res", halved, report=True)
    summary = json.loads((out / "summary.json").read_text())
    h = summary["halving"]
    assert h["rungs"] == [3, 6, 12] and summary["lanes"] == 4
    finalists = [r["run"] for r in halved.rows if r["rungs_passed"] == 3 and not r["diverged"]]
    assert h["promoted_to_last_rung"] == finalists
    for rung in h["per_rung"]:
        assert rung["passed"] == sum(r["rungs_passed"] > rung["rung"] for r in halved.rows)
        assert rung["passed"] <= rung["reached"]
    assert not next(r for r in halved.rows if r["run"] == summary["best"]["run"])["halted"]
    html = (out / "index.html").read_text()
    assert "Successive halving" in html and "Promoted through every rung" in html
    header = (out / "runs.csv").read_text().splitlines()[0].split(",")
    assert header[-2:] == ["halted", "rungs_passed"]


HALVING_TOML = (
    '[data]\ndataset = "moons"\nn_samples = 160\nval_fraction = 0.25\n[model]\nhidden = [6]\n'
    '[train]\nepochs = 12\nearly_stopping_patience = 3\nprecision = "float64"\n'
    '[optimizer]\nname = "sgd"\nlearning_rate = 0.1\n'
    '[sweep]\nseeds = 2\nlanes = 4\n[sweep.halving]\nmin_epochs = 2\neta = 2\n'
    '[sweep.random]\ntrials = 6\nseed = 1\n'
    '[sweep.random.optimizer]\nlearning_rate = { loguniform = [1e-3, 30.0] }\n'
)


def test_halving_across_two_processes_equals_one_process(tmp_path):
    """The rung records are shared through a collective: across 2 processes (jax.distributed,
    CPU collectives) the decisions and results equal those of one process."""
    cfg = tmp_path / "halving.toml"
    cfg.write_text(HALVING_TOML)
    sweep_in_two_processes(cfg, tmp_path / "p")
    single = _cli("sweep", cfg, "--out", tmp_path / "single", "--no-report", "--devices", "1")
    assert single.returncode == 0, single.stderr
    assert json.loads((tmp_path / "p0" / "summary.json").read_text())["devices"] == 2
    a = (tmp_path / "p0" / "runs.csv").read_text().splitlines()
    b = (tmp_path / "single" / "runs.csv").read_text().splitlines()
    assert "rungs_passed" in a[0].split(",")
    _assert_runs_csv_close(a, b, exact=("diverged", "halted"))


def test_refill_sweep_resumes_and_refuses_other_halving_settings(tmp_path):
    cfg = _cfg(halving=HALVING, chunk_size=6)
    whole = config_sweep.run_sweep(cfg, lanes=4, progress=False)
    ckpt = tmp_path / "ckpt"
    config_sweep.run_sweep(cfg, lanes=4, progress=False, checkpoint_dir=ckpt)
    chunks = sorted(ckpt.glob("group*_chunk*.ckpt"))
    assert len(chunks) == 3
    chunks[-1].unlink()  # as if killed during the last chunk
    resumed = config_sweep.run_sweep(cfg, lanes=4, progress=False, checkpoint_dir=ckpt, resume=True)
    assert resumed.stats.chunks_resumed == 2 and resumed.stats.chunks == 1
    assert resumed.rows == whole.rows
    other = _cfg(halving={"min_epochs": 3, "eta": 3}, chunk_size=6)
    with pytest.raises(ValueError, match="different sweep"):
        config_sweep.run_sweep(other, lanes=4, progress=False, checkpoint_dir=ckpt, resume=True)
