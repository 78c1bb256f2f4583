"""`meta.tune`'s ES estimator, resampled seeds and best point, against ordinary training runs in NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import meta, optim
from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.train import make_train

LR, WD = "optimizer.learning_rate", "train.weight_decay"
WRT = [LR, WD]
H0 = {LR: 0.2, WD: 1e-2}
SIGMA, PAIRS, OUTER_LR = 0.3, 2, 0.5


@pytest.fixture(scope="module")
def trainer():
    return make_train(Config(
        data=DataConfig(dataset="moons", n_samples=80, noise=0.25, random_state=1, val_fraction=0.25),
        model=ModelConfig(hidden=(6,)),
        train=TrainConfig(epochs=4, batch_size=0, precision="float64"),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ))


@pytest.fixture(scope="module")
def keys():
    return jax.random.split(jax.random.PRNGKey(4), 2)


@pytest.fixture(scope="module")
def es_path(trainer, keys):
    return meta.tune(trainer, H0, WRT, steps=1, outer_optimizer=optim.sgd(OUTER_LR), seeds=keys, estimator="es",
                     sigma=SIGMA, pairs=PAIRS, resample=True)


_PROGRAMS = {}


def _ordinary(trainer, keys, points):
    """final_val_loss of the engine's ordinary runs: keys (n, 2), points {key: (n,)}; one vmapped program."""
    if id(trainer) not in _PROGRAMS:
        _PROGRAMS[id(trainer)] = jax.jit(jax.vmap(lambda k, hp: trainer(k, hp).metrics["final_val_loss"]))
    values = _PROGRAMS[id(trainer)](jnp.asarray(keys), {k: jnp.asarray(v) for k, v in points.items()})
    return np.asarray(values)


def _es_by_hand(trainer, keys, h, step):
    """The antithetic-ES estimate and every lane's loss at point `h`, step `step`, from ordinary runs."""
    base = np.log([h[k] for k in WRT])
    lane_keys, points, zs = [], [], []
    for k in keys:
        train_key = jax.random.fold_in(k, step)  # resample: new training seeds every step
        z = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(k, 0x5E5), step), (PAIRS, 2),
                                         jnp.float64))
        zs.append(z)
        for p in [base, *(base + SIGMA * z), *(base - SIGMA * z)]:
            lane_keys.append(train_key)
            points.append(np.exp(p))
    f = _ordinary(trainer, np.stack(lane_keys), {k: np.array([p[i] for p in points]) for i, k in enumerate(WRT)})
    f = f.reshape(len(keys), 2 * PAIRS + 1)
    per_pair = [((fs[1:PAIRS + 1] - fs[PAIRS + 1:]) / (2 * SIGMA))[:, None] * z for fs, z in zip(f, zs, strict=True)]
    return np.concatenate(per_pair).mean(axis=0), f


def test_es_tune_steps_along_the_es_estimate_of_ordinary_runs(trainer, keys, es_path):
    g0, f0 = _es_by_hand(trainer, keys, H0, 0)
    for i, k in enumerate(WRT):
        assert abs(g0[i]) > 1e-6, k  # an estimate that is really there
        np.testing.assert_allclose(float(es_path.hypergrad[k][0]), g0[i], rtol=1e-8, err_msg=k)
        # SGD on log h: h_1 = h_0 exp(-lr g_0).
        np.testing.assert_allclose(np.asarray(es_path.hparams[k]), [H0[k], H0[k] * np.exp(-OUTER_LR * g0[i])],
                                   rtol=1e-10, err_msg=k)
    np.testing.assert_allclose(float(es_path.objective[0]), f0[:, 0].mean(), rtol=1e-10)
    np.testing.assert_allclose(float(es_path.selection[0]), f0.mean(), rtol=1e-10)
    # The next step's runs use new training seeds and new perturbations.
    h1 = {k: float(es_path.hparams[k][1]) for k in WRT}
    g1, f1 = _es_by_hand(trainer, keys, h1, 1)
    np.testing.assert_allclose(float(es_path.selection[1]), f1.mean(), rtol=1e-10)
    np.testing.assert_allclose(float(es_path.hypergrad[LR][1]), g1[0], rtol=1e-8)


def test_es_tune_counts_every_run_and_picks_the_lowest_selection(trainer, es_path):
    assert es_path.epochs == 2 * 2 * (2 * PAIRS + 1) * 4  # (steps + 1) x seeds x lanes x epochs
    scores = np.asarray(es_path.selection)
    assert es_path.best_step == int(np.argmin(scores))
    assert es_path.best() == {k: float(es_path.hparams[k][es_path.best_step]) for k in WRT}


def test_a_diverged_lane_counts_as_its_seeds_worst_finite_run():
    f = jnp.array([[0.3, jnp.nan, 0.9, jnp.inf, 0.1], [jnp.nan, jnp.nan, jnp.nan, jnp.nan, jnp.nan]])
    out = np.asarray(meta._finite_or_worst(f))
    np.testing.assert_array_equal(out[0], [0.3, 0.9, 0.9, 0.9, 0.1])
    assert np.isnan(out[1]).all()  # no finite run: the seed is averaged out, not invented


def test_best_step_ignores_non_finite_scores():
    assert meta._best_step(np.array([0.5, np.nan, 0.2, -np.inf, 0.3])) == 2
    assert meta._best_step(np.array([np.nan, np.nan])) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"estimator": "ess"}, "estimator='ess' is not a valid choice (did you mean 'es'?); valid choices: es, hypergrad"),
    ({"estimator": "es", "sigma": 0.0}, "sigma=0.0 is out of range"),
    ({"estimator": "es", "pairs": 0}, "pairs=0 is out of range"),
])
def test_bad_tune_options_name_the_option(trainer, kwargs, message):
    with pytest.raises(ValueError, match="valid") as e:
        meta.tune(trainer, H0, WRT, steps=1, **kwargs)
    assert message in str(e.value)


def test_hypertune_command_runs_es_and_prints_the_best_point(tmp_path, capsys):
    from jaxopt_lab import cli

    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\ndataset = "moons"\nn_samples = 200\n[model]\nhidden = [8]\n'
                   '[train]\nepochs = 4\nbatch_size = 32\n[optimizer]\nname = "sgd"\nlearning_rate = 0.1\n')
    out = tmp_path / "ht"
    argv = ["hypertune", str(cfg), "--wrt", "optimizer.learning_rate", "--steps", "2", "--seeds", "2",
            "--estimator", "es", "--pairs", "2", "--landscape", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    rows = (out / "hypertune.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header, the start and two steps
    lrs = [float(r.split(",")[1]) for r in rows[1:]]
    assert f"es, {3 * 2 * (2 * 2 + 1) * 4} training epochs" in printed  # (steps + 1) x seeds x lanes x epochs
    assert any(f"optimizer.learning_rate={lr:.4g}" in printed for lr in lrs)
    assert cli.main([*argv[:-2], "--sigma", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "--sigma 0.0 is out of range" in capsys.readouterr().err
