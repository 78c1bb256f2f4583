"""Hypergradients through whole training runs (`jaxopt_lab.meta`), checked against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import meta
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.train import make_train

MOONS = DataConfig(dataset="moons", n_samples=120, noise=0.25, random_state=3, val_fraction=0.25)
WRT = ["optimizer.learning_rate", "optimizer.momentum", "train.weight_decay", "model.init_scale"]
HP = {"train.weight_decay": 1e-3}
KEY = jax.random.PRNGKey(0)


def _trainer(epochs=16, batch_size=0, **train):
    return make_train(Config(
        data=MOONS,
        model=ModelConfig(hidden=(8,)),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, precision="float64", **train),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ))


@pytest.fixture(scope="module")
def trainer():
    # Full batch, 16 epochs: a short horizon where the loss is smooth (and the compile is quick).
    return _trainer()


def _central_differences(trainer, key, hp, wrt, rel_step=1e-5):
    """d f / d log h by central differences of whole ordinary (while_loop) runs, all in one vmapped program."""
    base = {**{k: trainer.defaults[k] for k in wrt}, **hp}
    points = []
    for k in wrt:
        for sign in (1, -1):
            points.append({**base, k: base[k] * np.exp(sign * rel_step)})
    stacked = {k: jnp.array([p[k] for p in points]) for k in base}
    values = jax.jit(jax.vmap(lambda h: trainer(key, h).metrics["final_val_loss"]))(stacked)
    values = np.asarray(values).reshape(len(wrt), 2)
    return {k: (values[i, 0] - values[i, 1]) / (2 * rel_step) for i, k in enumerate(wrt)}


@pytest.fixture(scope="module")
def reverse(trainer):
    return meta.hypergrad(trainer, KEY, HP, WRT)


def test_reverse_mode_matches_central_differences_of_whole_runs(trainer, reverse):
    value, grads = reverse
    ordinary = jax.jit(trainer)(KEY, HP).metrics["final_val_loss"]
    np.testing.assert_allclose(value, ordinary, rtol=1e-12)
    fd = _central_differences(trainer, KEY, HP, WRT)
    for k in WRT:
        assert abs(float(grads[k])) > 1e-5, k  # a derivative that is really there
        np.testing.assert_allclose(float(grads[k]), fd[k], rtol=1e-6, err_msg=k)


def test_reverse_equals_forward_and_log_space_is_h_times_linear(trainer, reverse):
    value, grads = reverse
    f_value, f_grads = meta.hypergrad(trainer, KEY, HP, WRT, mode="forward", log_space=False)
    np.testing.assert_allclose(f_value, value, rtol=1e-12)
    h = {**trainer.defaults, **HP}
    for k in WRT:
        np.testing.assert_allclose(float(f_grads[k]) * h[k], float(grads[k]), rtol=1e-10, err_msg=k)


def test_vmap_over_seeds_equals_per_seed(trainer, reverse):
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    keys = jnp.concatenate([KEY[None], keys])
    values, grads = jax.jit(jax.vmap(lambda k: meta.hypergrad(trainer, k, HP, WRT)))(keys)
    assert len(set(np.round(np.asarray(values), 8))) == 4  # the seeds really differ
    for i in (0, 2):
        v, g = reverse if i == 0 else meta.hypergrad(trainer, keys[i], HP, WRT)
        np.testing.assert_allclose(values[i], v, rtol=1e-12)
        for k in WRT:
            np.testing.assert_allclose(grads[k][i], g[k], rtol=1e-10, err_msg=k)


@pytest.mark.slow
def test_early_stopping_run_is_masked_and_its_stop_epoch_fixed():
    # Patience 2 with min_delta large enough to stop this run early: after the stop the
    # scan's epochs are masked, so the value equals the while_loop run, and the derivative
    # is that of the run with the same stop epoch (finite differences keep it too).
    trainer = _trainer(epochs=16, early_stopping_patience=2, min_delta=0.02)
    wrt = ["optimizer.learning_rate"]
    result = jax.jit(trainer)(KEY, HP)
    assert int(result.metrics["epochs_run"]) < 16
    value, grads = meta.hypergrad(trainer, KEY, HP, wrt, mode="forward")
    np.testing.assert_allclose(value, result.metrics["final_val_loss"], rtol=1e-12)
    fd = _central_differences(trainer, KEY, HP, wrt)
    np.testing.assert_allclose(float(grads[wrt[0]]), fd[wrt[0]], rtol=1e-6)


@pytest.mark.slow
def test_run_scan_history_equals_the_ordinary_run(trainer):
    state = trainer.init_state(KEY, HP)
    scanned, ordinary = jax.jit(lambda s: (meta.run_scan(trainer, s, HP, 16), trainer.run_epochs(s, HP)))(state)
    np.testing.assert_allclose(scanned.history, ordinary.history, rtol=1e-12)
    assert int(scanned.epoch) == int(ordinary.epoch) == 16


@pytest.mark.slow
def test_truncated_hypergrad_differentiates_only_the_last_epochs():
    trainer = _trainer(batch_size=30)  # mini-batches: shuffled by the key, the order fixed
    # From the state after 10 epochs, differentiate 6 more: compare with central
    # differences of those 6 epochs run from the same (constant) state.
    state = meta.run_state(trainer, KEY, HP, 10)
    wrt = ["optimizer.learning_rate", "train.weight_decay"]
    value, grads = meta.truncated_hypergrad(trainer, state, HP, wrt, 6, mode="forward")
    h0 = {**trainer.defaults, **HP}
    eps = 1e-5
    points = [{**HP, k: h0[k] * np.exp(s * eps)} for k in wrt for s in (1, -1)] + [HP]
    stacked = {k: jnp.array([p.get(k, h0[k]) for p in points]) for k in HP.keys() | set(wrt)}

    def tail(h):
        return trainer.finalize(trainer.run_epochs(state, h), h).metrics["final_val_loss"]

    values = np.asarray(jax.jit(jax.vmap(tail))(stacked))
    np.testing.assert_allclose(value, values[-1], rtol=1e-12)
    for i, k in enumerate(wrt):
        fd = (values[2 * i] - values[2 * i + 1]) / (2 * eps)
        np.testing.assert_allclose(float(grads[k]), fd, rtol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match="horizon"):
        meta.truncated_hypergrad(trainer, state, HP, wrt, 17)


def test_bad_wrt_mode_and_objective_name_the_valid_choices(trainer):
    with pytest.raises(ValueError, match="optimizer.learning_rate.*valid keys: .*model.init_scale"):
        meta.hypergrad(trainer, KEY, HP, ["optimizer.learning_rat"])
    with pytest.raises(ValueError, match="valid choices: forward, reverse"):
        meta.hypergrad(trainer, KEY, HP, WRT, mode="backward")
    with pytest.raises(ValueError, match="final_val_loss"):
        meta.hypergrad(trainer, KEY, HP, ["optimizer.learning_rate"], objective="val_los", mode="forward")


@pytest.mark.parametrize("method", ["es", pytest.param("pes", marks=pytest.mark.slow)])
def test_es_estimates_agree_with_the_exact_hypergradient(trainer, reverse, method):
    # Smooth horizon, small sigma (log units): the smoothed objective's gradient is the exact
    # one up to O(sigma^2), so the estimate must be within 3 standard errors of it. The
    # standard error must also be small enough for that to mean something.
    value, exact = reverse
    wrt = ["optimizer.learning_rate", "optimizer.momentum"]
    est = meta.es_hypergrad(trainer, KEY, HP, wrt, sigma=0.01, pairs=128, method=method, truncation=4)
    np.testing.assert_allclose(est.value, value, rtol=1e-12)
    norm = np.hypot(*(float(exact[k]) for k in wrt))
    for k in wrt:
        se = float(est.stderr[k])
        assert 0 < se < 0.25 * norm, (k, se)
        assert abs(float(est.grads[k]) - float(exact[k])) < 3 * se, (k, est.grads[k], exact[k], se)
        np.testing.assert_allclose(float(est.variance[k]), 128 * se**2, rtol=1e-12)


@pytest.mark.slow
def test_tune_steps_the_log_hyperparameters_along_the_seed_mean_hypergradient(trainer):
    from jaxopt_lab import optim

    wrt = ["optimizer.learning_rate", "optimizer.momentum"]
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    res = meta.tune(trainer, HP, wrt, steps=1, outer_optimizer=optim.sgd(0.5), seeds=keys)
    per_seed = [meta.hypergrad(trainer, k, HP, wrt) for k in keys]
    np.testing.assert_allclose(res.objective[0], np.mean([v for v, _ in per_seed]), rtol=1e-12)
    for k in wrt:
        g0 = np.mean([float(g[k]) for _, g in per_seed])
        np.testing.assert_allclose(res.hypergrad[k][0], g0, rtol=1e-10)
        h0 = {**trainer.defaults, **HP}[k]
        # SGD on log h: h_1 = h_0 exp(-0.5 g_0).
        np.testing.assert_allclose(res.hparams[k], [h0, h0 * np.exp(-0.5 * g0)], rtol=1e-10)
    assert res.epochs == 2 * 2 * 16


def test_hypertune_cli_bad_wrt_exits_2_naming_the_valid_keys(tmp_path):
    from cli_helpers import cli

    cfg = tmp_path / "moons.toml"
    cfg.write_text(
        '[data]\ndataset = "moons"\nn_samples = 120\n[model]\nhidden = [8]\n[train]\nepochs = 4\n'
        '[optimizer]\nname = "sgd"\nlearning_rate = 0.1\nmomentum = 0.5\n'
    )
    r = cli("hypertune", cfg, "--wrt", "optimizer.learning_rat", "--out", tmp_path / "out")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "did you mean 'optimizer.learning_rate'" in r.stderr
    assert "valid keys:" in r.stderr and "optimizer.momentum" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_hypertune_cli_writes_the_trace_and_figure(tmp_path):
    import csv

    from cli_helpers import cli

    cfg = tmp_path / "moons.toml"
    cfg.write_text(
        '[data]\ndataset = "moons"\nn_samples = 120\nval_fraction = 0.25\n[model]\nhidden = [8]\n'
        '[train]\nepochs = 8\nprecision = "float64"\n[optimizer]\nname = "sgd"\nlearning_rate = 0.1\nmomentum = 0.5\n'
    )
    out = tmp_path / "out"
    r = cli("hypertune", cfg, "--wrt", "optimizer.learning_rate", "--wrt", "optimizer.momentum", "--steps", "3",
            "--seeds", "2", "--landscape", "8", "--out", out)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(out / "hypertune.csv")))
    assert [int(row["step"]) for row in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"step", "optimizer.learning_rate", "optimizer.momentum", "objective",
                            "hypergrad.optimizer.learning_rate", "hypergrad.optimizer.momentum"}
    assert float(rows[0]["optimizer.learning_rate"]) == pytest.approx(0.1)
    assert (out / "hypertune.png").stat().st_size > 10_000


@pytest.mark.slow
def test_demo_section_renders(tmp_path):
    from jaxopt_lab.experiments import hypergradients

    section = hypergradients.run(tmp_path, size="tiny")
    assert [p.name for p in section.figures] == ["hypergradient_tangents.png", "hypergradient_horizon.png",
                                                 "hypergradient_hypertune.png"]
    assert all(p.stat().st_size > 10_000 for p in section.figures)
    rows = section.tables[0][1]
    assert rows[0]["relative gap"] < 1e-6  # the first epochs are smooth: exact = finite differences
    path = section.tables[1][1]
    short = hypergradients.SIZES["tiny"]["short"]
    trainer = make_train(hypergradients.config("tiny", epochs=short))
    for row in (path[0], path[-1]):  # the path's losses are those of ordinary runs at its rates
        ordinary = trainer(jax.random.PRNGKey(0), {"optimizer.learning_rate": row["learning rate"]})
        np.testing.assert_allclose(row["validation loss"], ordinary.metrics["final_val_loss"], rtol=1e-10)
    assert min(r["validation loss"] for r in path) < path[0]["validation loss"] - 0.01  # it went down the curve


@pytest.mark.slow
def test_vmap_over_64_seeds_is_one_program_equal_to_per_seed(trainer):
    keys = jax.random.split(jax.random.PRNGKey(11), 64)
    batched = jax.jit(jax.vmap(lambda k: meta.hypergrad(trainer, k, HP, WRT)))
    assert batched.lower(keys).compile() is not None  # one compiled program for all 64
    values, grads = batched(keys)
    for i in range(64):
        v, g = meta.hypergrad(trainer, keys[i], HP, WRT)
        np.testing.assert_allclose(values[i], v, rtol=1e-12)
        for k in WRT:
            np.testing.assert_allclose(grads[k][i], g[k], rtol=1e-10, err_msg=k)


@pytest.mark.slow
def test_vmap_over_starting_points_equals_per_point(trainer):
    rates = jnp.array([0.05, 0.1, 0.2])
    values, grads = jax.jit(jax.vmap(
        lambda lr: meta.hypergrad(trainer, KEY, {**HP, "optimizer.learning_rate": lr}, WRT)
    ))(rates)
    for i, lr in enumerate([0.05, 0.1, 0.2]):
        v, g = meta.hypergrad(trainer, KEY, {**HP, "optimizer.learning_rate": lr}, WRT)
        np.testing.assert_allclose(values[i], v, rtol=1e-12)
        for k in WRT:
            np.testing.assert_allclose(grads[k][i], g[k], rtol=1e-10, err_msg=k)
